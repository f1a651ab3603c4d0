//! The filter's proxy metrics. Envoy shows them as `wasmcustom.<name>`; every VM defines
//! the same names, so each is one stat for the whole proxy.

use super::abi;
use crate::gate::Kind;
use log::warn;

/// Metric ids. A metric the proxy refused to define is skipped (`None`).
#[derive(Default)]
pub(super) struct Metrics {
    allowed: Option<u32>,
    unauthenticated: Option<u32>,
    forbidden: Option<u32>,
    not_found: Option<u32>,
    /// Refused with 500: misrouted, or a header rewrite the proxy did not apply.
    internal_errors: Option<u32>,
    pub not_configured: Option<u32>,
    pub cache_hits: Option<u32>,
    pub cache_misses: Option<u32>,
    /// Requests paused until a key set they need arrived.
    pub waited_for_keys: Option<u32>,
    /// Requests answered 503 because no usable key set arrived.
    pub unavailable: Option<u32>,
    /// Key set fetches started (by this proxy's lease holders), and how many failed; every
    /// authenticator's remote set counts here.
    pub jwks_fetches: Option<u32>,
    pub jwks_fetch_failures: Option<u32>,
    /// Fetches started because a token named an unknown key.
    pub jwks_refetches: Option<u32>,
    /// Fetches that brought a key set different from the one published before.
    pub jwks_updates: Option<u32>,
    /// Gauges over the sets in use (one per authenticator with remote keys): seconds
    /// since the oldest was last confirmed, and the remote keys they add in all.
    pub jwks_age_seconds: Option<u32>,
    pub jwks_keys: Option<u32>,
}

impl Metrics {
    pub(super) fn define() -> Metrics {
        let define = |kind: u32, name: &str| match abi::define_metric(kind, name) {
            Ok(id) => Some(id),
            Err(status) => {
                warn!("kubegate: metric {name} not defined: {status:?}");
                None
            }
        };
        // proxy-wasm metric types: 0 counter, 1 gauge.
        let counter = |name: &str| define(0, name);
        let gauge = |name: &str| define(1, name);
        Metrics {
            allowed: counter("kubegate.requests.allowed"),
            unauthenticated: counter("kubegate.requests.unauthenticated"),
            forbidden: counter("kubegate.requests.forbidden"),
            not_found: counter("kubegate.requests.not_found"),
            internal_errors: counter("kubegate.requests.internal_errors"),
            not_configured: counter("kubegate.requests.not_configured"),
            cache_hits: counter("kubegate.jwt.cache_hits"),
            cache_misses: counter("kubegate.jwt.cache_misses"),
            waited_for_keys: counter("kubegate.requests.waited_for_keys"),
            unavailable: counter("kubegate.requests.unavailable"),
            jwks_fetches: counter("kubegate.jwks.fetches"),
            jwks_fetch_failures: counter("kubegate.jwks.fetch_failures"),
            jwks_refetches: counter("kubegate.jwks.refetches"),
            jwks_updates: counter("kubegate.jwks.updates"),
            jwks_age_seconds: gauge("kubegate.jwks.age_seconds"),
            jwks_keys: gauge("kubegate.jwks.keys"),
        }
    }

    pub(super) fn count(&self, kind: Kind) {
        let id = match kind {
            Kind::Allowed => self.allowed,
            Kind::Unauthenticated => self.unauthenticated,
            Kind::Forbidden => self.forbidden,
            Kind::NotFound => self.not_found,
            Kind::Internal => self.internal_errors,
        };
        increment(id);
    }
}

pub(super) fn increment(id: Option<u32>) {
    if let Some(id) = id {
        // A metrics failure must not fail the request.
        let _ = abi::increment_metric(id, 1);
    }
}

pub(super) fn record(id: Option<u32>, value: u64) {
    if let Some(id) = id {
        let _ = abi::record_metric(id, value);
    }
}
