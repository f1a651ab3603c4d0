//! A plain timing loop: warm-up rounds, then one timed call per sample, reported as the
//! median. Criterion would add minutes of build and run time and a statistics engine for
//! a table whose rows differ by 10x to 1000x; a median of a few hundred samples is stable
//! to a few percent here, robust to the odd preempted sample, and keeps `make bench` short.

use std::future::Future;
use std::time::{Duration, Instant};

/// Rounds run before timing starts: lazy statics, allocator growth, branch predictors.
pub const WARM_UP: usize = 20;

/// The median of `samples` timings of `call(i)` (after `WARM_UP` untimed rounds; `i`
/// counts all rounds, so a call can take the i-th fresh token). Each call's own check
/// result is returned if any fails.
pub fn median_of<F>(samples: usize, mut call: F) -> anyhow::Result<Duration>
where
    F: FnMut(usize) -> anyhow::Result<()>,
{
    let mut timings = Vec::with_capacity(samples);
    for round in 0..WARM_UP + samples {
        let started = Instant::now();
        call(round)?;
        if round >= WARM_UP {
            timings.push(started.elapsed());
        }
    }
    Ok(median(&mut timings))
}

/// [`median_of`] for a call that awaits (a request through the host's VM thread).
pub async fn median_of_async<F, Fut>(samples: usize, mut call: F) -> anyhow::Result<Duration>
where
    F: FnMut(usize) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let mut timings = Vec::with_capacity(samples);
    for round in 0..WARM_UP + samples {
        let started = Instant::now();
        call(round).await?;
        if round >= WARM_UP {
            timings.push(started.elapsed());
        }
    }
    Ok(median(&mut timings))
}

/// The middle value (the upper middle for an even count); zero for no samples.
pub fn median(timings: &mut [Duration]) -> Duration {
    percentile(timings, 50.0)
}

/// The nearest-rank percentile: the smallest value with at least `p`% of the values at
/// or below it. Sorts `values` in place.
pub fn percentile(values: &mut [Duration], p: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    values.sort_unstable();
    let rank = ((p / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(values: &[u64]) -> Vec<Duration> {
        values.iter().map(|&v| Duration::from_millis(v)).collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut values = ms(&[5, 1, 4, 2, 3]);
        assert_eq!(median(&mut values), Duration::from_millis(3));
        let mut hundred: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        hundred.reverse();
        assert_eq!(percentile(&mut hundred, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&mut hundred, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&mut hundred, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&mut [], 50.0), Duration::ZERO);
    }

    #[test]
    fn warm_up_rounds_are_run_but_not_timed() {
        let mut rounds = Vec::new();
        let result = median_of(3, |round| {
            rounds.push(round);
            Ok(())
        });
        assert!(result.is_ok());
        assert_eq!(rounds, (0..WARM_UP + 3).collect::<Vec<_>>());
    }

    #[test]
    fn a_failed_check_stops_the_measurement() {
        let result = median_of(3, |round| {
            anyhow::ensure!(round < 5, "round {round} answered wrongly");
            Ok(())
        });
        assert_eq!(result.unwrap_err().to_string(), "round 5 answered wrongly");
    }
}
