//! The proxy-wasm glue: the only code that talks to the proxy. It reads the request
//! headers, asks `gate::decide`, and applies the answer. Kept thin on purpose: everything
//! it calls is tested natively and under wasm-bindgen-test.

use crate::config::Config;
use crate::gate::{self, Kind, Outcome};
use crate::status::Refusal;
use crate::token_cache::VerifiedTokenCache;
use log::{error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::UNIX_EPOCH;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::<Root>::default() });
}}

/// Counter ids, one per decision class. A metric the proxy refused to define is skipped.
#[derive(Default)]
struct Metrics {
    allowed: Option<u32>,
    unauthenticated: Option<u32>,
    forbidden: Option<u32>,
    not_found: Option<u32>,
    not_configured: Option<u32>,
    cache_hits: Option<u32>,
    cache_misses: Option<u32>,
}

impl Metrics {
    fn define() -> Metrics {
        let counter = |name: &str| match hostcalls::define_metric(MetricType::Counter, name) {
            Ok(id) => Some(id),
            Err(status) => {
                warn!("kubegate: metric {name} not defined: {status:?}");
                None
            }
        };
        Metrics {
            allowed: counter("kubegate.requests.allowed"),
            unauthenticated: counter("kubegate.requests.unauthenticated"),
            forbidden: counter("kubegate.requests.forbidden"),
            not_found: counter("kubegate.requests.not_found"),
            not_configured: counter("kubegate.requests.not_configured"),
            cache_hits: counter("kubegate.jwt.cache_hits"),
            cache_misses: counter("kubegate.jwt.cache_misses"),
        }
    }

    fn count(&self, kind: Kind) {
        let id = match kind {
            Kind::Allowed => self.allowed,
            Kind::Unauthenticated => self.unauthenticated,
            Kind::Forbidden => self.forbidden,
            Kind::NotFound => self.not_found,
        };
        increment(id);
    }
}

fn increment(id: Option<u32>) {
    if let Some(id) = id {
        // A metrics failure must not fail the request.
        let _ = hostcalls::increment_metric(id, 1);
    }
}

/// The configuration and the verified-token cache that belongs to it (a new
/// configuration starts with an empty cache: its keys or rules may differ).
struct Configured {
    config: Config,
    cache: RefCell<VerifiedTokenCache>,
}

#[derive(Default)]
struct Root {
    configured: Option<Rc<Configured>>,
    metrics: Rc<Metrics>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        self.metrics = Rc::new(Metrics::define());
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = self.get_plugin_configuration().unwrap_or_default();
        // The service-account token may come from the VM's environment (WASI environ),
        // which Envoy fills from vm_config.environment_variables and Istio from vmConfig.env.
        let env = |name: &str| std::env::var(name).ok();
        match Config::parse(&bytes, &env) {
            Ok(config) => {
                info!(
                    "kubegate: configured: {} route(s), {} verification key(s)",
                    config.routes.len(),
                    config.keys.len()
                );
                let cache = RefCell::new(VerifiedTokenCache::new(config.cache_entries));
                self.configured = Some(Rc::new(Configured { config, cache }));
                true
            }
            Err(e) => {
                // A false return makes Envoy/Istio refuse the plugin rather than run open.
                error!("kubegate: configuration refused: {e}");
                false
            }
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request {
            configured: self.configured.clone(),
            metrics: Rc::clone(&self.metrics),
        }))
    }
}

struct Request {
    configured: Option<Rc<Configured>>,
    metrics: Rc<Metrics>,
}

impl Context for Request {}

impl Request {
    fn refuse(&self, refusal: &Refusal) {
        let headers = refusal.headers();
        let body = refusal.body();
        self.send_http_response(
            u32::from(refusal.code),
            headers.iter().map(|(n, v)| (*n, v.as_str())).collect(),
            Some(body.as_bytes()),
        );
    }

    fn now_unix_seconds(&self) -> u64 {
        self.get_current_time()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(configured) = self.configured.clone() else {
            increment(self.metrics.not_configured);
            self.refuse(&Refusal::unavailable(
                "kubegate: the gateway has no valid configuration".into(),
            ));
            return Action::Pause;
        };
        // All pairs, not the first value of each: duplicates must be seen (reference.md).
        // Header values need not be UTF-8; a lossy copy can only fail verification.
        let headers: Vec<(String, String)> = self
            .get_http_request_headers_bytes()
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect();

        let now = self.now_unix_seconds();
        let decision = match configured.cache.try_borrow_mut() {
            Ok(mut cache) => gate::decide(&configured.config, &mut cache, &headers, now),
            // Unreachable in a single-threaded VM; a fresh cache keeps it from trapping.
            Err(_) => gate::decide(
                &configured.config,
                &mut VerifiedTokenCache::new(0),
                &headers,
                now,
            ),
        };
        self.metrics.count(decision.log.kind);
        match decision.cache_hit {
            Some(true) => increment(self.metrics.cache_hits),
            Some(false) => increment(self.metrics.cache_misses),
            None => {}
        }
        info!("kubegate: {}", decision.log);
        match decision.outcome {
            Outcome::Allow(plan) => {
                for name in &plan.remove {
                    self.remove_http_request_header(name);
                }
                for (name, value) in &plan.add {
                    self.add_http_request_header(name, value);
                }
                Action::Continue
            }
            Outcome::Refuse(refusal) => {
                self.refuse(&refusal);
                Action::Pause
            }
        }
    }
}
