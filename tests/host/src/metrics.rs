//! Metrics the filter defines (`proxy_define_metric`). As in Envoy, a name is one
//! stat shared by every VM of the plugin; ids are per VM and carry the type in
//! their low bits. (Envoy would show them under the `wasmcustom.` prefix.)

use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

impl MetricKind {
    pub(crate) fn from_raw(raw: i32) -> Option<MetricKind> {
        match raw {
            0 => Some(MetricKind::Counter),
            1 => Some(MetricKind::Gauge),
            2 => Some(MetricKind::Histogram),
            _ => None,
        }
    }
}

/// One metric's state as the host API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricValue {
    pub name: String,
    pub kind: MetricKind,
    /// Counter or gauge value; for a histogram the number of recorded values.
    pub value: u64,
    /// Recorded histogram values (empty for counters and gauges).
    pub samples: Vec<u64>,
}

#[derive(Default)]
pub(crate) struct MetricRegistry {
    metrics: Mutex<HashMap<String, MetricValue>>,
}

/// Outcome of an update, mapped to ABI statuses by the hostcalls.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum MetricError {
    NotFound,
    BadArgument,
}

const MAX_SAMPLES: usize = 10_000;

impl MetricRegistry {
    pub(crate) fn define(&self, name: &str, kind: MetricKind) {
        let mut metrics = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        metrics
            .entry(name.to_string())
            .or_insert_with(|| MetricValue {
                name: name.to_string(),
                kind,
                value: 0,
                samples: Vec::new(),
            });
    }

    /// `proxy_increment_metric`: counters only go up (Envoy: BadArgument for
    /// offset <= 0); gauges go both ways; histograms refuse.
    pub(crate) fn increment(&self, name: &str, offset: i64) -> Result<(), MetricError> {
        let mut metrics = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        let metric = metrics.get_mut(name).ok_or(MetricError::NotFound)?;
        match metric.kind {
            MetricKind::Counter if offset > 0 => {
                metric.value = metric.value.saturating_add(offset as u64)
            }
            MetricKind::Counter => return Err(MetricError::BadArgument),
            MetricKind::Gauge if offset >= 0 => {
                metric.value = metric.value.saturating_add(offset as u64)
            }
            MetricKind::Gauge => metric.value = metric.value.saturating_sub(offset.unsigned_abs()),
            MetricKind::Histogram => return Err(MetricError::BadArgument),
        }
        Ok(())
    }

    /// `proxy_record_metric`: adds to a counter, sets a gauge, records a sample.
    pub(crate) fn record(&self, name: &str, value: u64) -> Result<(), MetricError> {
        let mut metrics = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        let metric = metrics.get_mut(name).ok_or(MetricError::NotFound)?;
        match metric.kind {
            MetricKind::Counter => metric.value = metric.value.saturating_add(value),
            MetricKind::Gauge => metric.value = value,
            MetricKind::Histogram => {
                metric.value += 1;
                if metric.samples.len() < MAX_SAMPLES {
                    metric.samples.push(value);
                }
            }
        }
        Ok(())
    }

    /// `proxy_get_metric`: histograms cannot be read (BadArgument, as Envoy).
    pub(crate) fn read(&self, name: &str) -> Result<u64, MetricError> {
        let metrics = self.metrics.lock().unwrap_or_else(|e| e.into_inner());
        let metric = metrics.get(name).ok_or(MetricError::NotFound)?;
        match metric.kind {
            MetricKind::Histogram => Err(MetricError::BadArgument),
            _ => Ok(metric.value),
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<MetricValue> {
        self.metrics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    pub(crate) fn all(&self) -> Vec<MetricValue> {
        let mut all: Vec<MetricValue> = self
            .metrics
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_gauges_histograms_follow_envoy() {
        let registry = MetricRegistry::default();
        registry.define("c", MetricKind::Counter);
        registry.define("g", MetricKind::Gauge);
        registry.define("h", MetricKind::Histogram);
        assert_eq!(registry.increment("c", 2), Ok(()));
        assert_eq!(registry.increment("c", 0), Err(MetricError::BadArgument));
        assert_eq!(registry.increment("c", -1), Err(MetricError::BadArgument));
        assert_eq!(registry.read("c"), Ok(2));
        registry.increment("g", 5).unwrap();
        registry.increment("g", -2).unwrap();
        assert_eq!(registry.read("g"), Ok(3));
        registry.record("g", 9).unwrap();
        assert_eq!(registry.read("g"), Ok(9));
        registry.record("h", 7).unwrap();
        assert_eq!(registry.read("h"), Err(MetricError::BadArgument));
        assert_eq!(registry.get("h").unwrap().samples, vec![7]);
        assert_eq!(registry.read("missing"), Err(MetricError::NotFound));
    }
}
