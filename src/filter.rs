//! The proxy-wasm glue: the only code that talks to the proxy. It reads the request
//! headers, asks `gate::decide`, and applies the answer; for remote keys (remote_keys.rs)
//! it moves bytes between the proxy and `crate::jwks`. Kept thin on purpose: everything
//! it calls is tested natively and under wasm-bindgen-test.
//!
//! A request whose token names a key its authenticator's keys lack may wait
//! (Action::Pause) for a fetch of that authenticator's remote set; the root context then decides it again in that request's context
//! (set_effective_context: the hostcalls act on the effective context) and resumes it or
//! answers it.

mod abi;
mod decision_state;
mod metrics;
mod remote_keys;

use crate::audit::Reported;
use crate::config::Config;
use crate::gate::{self, Decision, DecisionLog, Kind, Outcome, Upstream};
use crate::jwks::{Waiter, WaitingList};
use crate::jwt::KeySet;
use crate::status::Refusal;
use crate::token_cache::VerifiedTokenCache;
use crate::upstream::{HeaderPlan, Write};
use log::{error, info, warn};
use metrics::{increment, Metrics};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use remote_keys::{Fetcher, MissingKey, RemoteView};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::UNIX_EPOCH;

proxy_wasm::main! {{
    // Not proxy_wasm::set_log_level: its logger and panic hook unwrap proxy_log (abi.rs).
    abi::init_logging();
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        Box::new(Root::new(context_id))
    });
}}

/// What the root context shares with its http contexts for the life of the VM.
#[derive(Default)]
struct Vm {
    metrics: Metrics,
    /// Requests paused until a key set arrives; each removes itself when deleted.
    waiting: RefCell<WaitingList>,
    /// This VM's own shared queue: enqueueing wakes its root context (remote_keys.rs).
    wake_queue: Cell<Option<u32>>,
}

/// One accepted configuration and the state that belongs to it (a new configuration
/// starts with an empty cache: its keys or rules may differ).
struct Configured {
    /// An authenticator's `keys` are swapped when its remote key set changes
    /// (remote_keys.rs).
    config: RefCell<Config>,
    /// Each authenticator's configured keys alone (same index as
    /// `Config::authenticators`): its remote set is added to these.
    inline_keys: Vec<KeySet>,
    cache: RefCell<VerifiedTokenCache>,
    /// One per authenticator with remote keys.
    remotes: Vec<RemoteView>,
}

impl Configured {
    fn new(config: Config) -> Configured {
        let remotes = config
            .authenticators
            .iter()
            .enumerate()
            .filter_map(|(index, authenticator)| {
                let settings = authenticator.remote.clone()?;
                Some(RemoteView::new(
                    index,
                    authenticator.issuer.clone(),
                    settings,
                ))
            })
            .collect();
        Configured {
            inline_keys: config
                .authenticators
                .iter()
                .map(|authenticator| authenticator.keys.clone())
                .collect(),
            cache: RefCell::new(VerifiedTokenCache::new(config.cache_entries)),
            remotes,
            config: RefCell::new(config),
        }
    }

    /// The remote key set of the authenticator at `index`, if it has one.
    fn remote_for(&self, index: usize) -> Option<&RemoteView> {
        self.remotes
            .iter()
            .find(|remote| remote.authenticator == index)
    }

    /// Judges a request the proxy routes to `upstream` and counts the cache outcome.
    fn decide(
        &self,
        metrics: &Metrics,
        headers: &[(String, String)],
        upstream: Upstream<'_>,
        now_ms: u64,
    ) -> Decision {
        let now = now_ms / 1000;
        // Borrows cannot fail in a single-threaded VM with no re-entry; if one ever did,
        // the request is refused rather than judged without keys.
        let Ok(config) = self.config.try_borrow() else {
            return internal_refusal();
        };
        let source_ip = source_ip();
        let decision = match self.cache.try_borrow_mut() {
            Ok(mut cache) => {
                gate::decide_at(&config, &mut cache, headers, source_ip, upstream, now)
            }
            Err(_) => gate::decide_at(
                &config,
                &mut VerifiedTokenCache::new(0),
                headers,
                source_ip,
                upstream,
                now,
            ),
        };
        match decision.cache_hit {
            Some(true) => increment(metrics.cache_hits),
            Some(false) => increment(metrics.cache_misses),
            None => {}
        }
        decision
    }
}

fn internal_refusal() -> Decision {
    let refusal = Refusal::unavailable("kubegate: internal state unavailable".into());
    Decision {
        log: DecisionLog {
            kind: Kind::Unauthenticated,
            user: None,
            groups: Vec::new(),
            method: String::new(),
            path: String::new(),
            route: None,
            reason: refusal.message.clone(),
        },
        outcome: Outcome::Refuse(refusal),
        cache_hit: None,
        missing_key: None,
    }
}

/// The load-time summary: routes, and each authenticator's issuer and key sources.
fn describe(config: &Config) -> String {
    let authenticators: Vec<String> = config
        .authenticators
        .iter()
        .map(|authenticator| {
            let remote = match &authenticator.remote {
                Some(remote) => format!(
                    ", remote keys from cluster {:?} ({}), refreshed every {} s",
                    remote.cluster, remote.authority, remote.refresh_seconds
                ),
                None => String::new(),
            };
            format!(
                "issuer {:?}: {} inline verification key(s){remote}",
                authenticator.issuer,
                authenticator.keys.len()
            )
        })
        .collect();
    format!(
        "{} route(s), {} authenticator(s): {}",
        config.routes.len(),
        config.authenticators.len(),
        authenticators.join("; ")
    )
}

/// The request headers of the current (or effective) context, every pair: duplicates
/// must be seen (Envoy's "get one header" returns only the first). Values need not be
/// UTF-8; a lossy copy can only fail verification. A failed read is an error: judging an
/// empty request instead could only refuse, but the refusal would be the wrong one.
fn request_headers() -> Result<Vec<(String, String)>, abi::HostError> {
    Ok(abi::header_pairs(abi::REQUEST_HEADERS)?
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect())
}

/// The client's address (Envoy's `source.address`, `ip:port`) for `source_ip` criteria;
/// `None` when the proxy does not say, which makes those criteria false.
fn source_ip() -> Option<std::net::IpAddr> {
    let address = abi::property(&["source", "address"]).ok()??;
    crate::policy::source_ip_from_address(std::str::from_utf8(&address).ok()?)
}

/// The Envoy cluster the router chose for the current request (`xds.cluster_name`; the
/// route is resolved before the filter chain runs). Anything but a UTF-8 name is unknown.
fn upstream_cluster() -> Option<String> {
    let name = abi::property(&["xds", "cluster_name"]).ok()??;
    String::from_utf8(name).ok()
}

fn now_ms() -> u64 {
    abi::current_time()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Answers the request locally. If the proxy refuses the answer, the stream is reset
/// instead; either way the caller stops the request (Action::Pause), so it is never
/// forwarded.
fn send_refusal(refusal: &Refusal) {
    let headers = refusal.headers();
    let body = refusal.body();
    let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    if let Err(e) = abi::send_local_response(u32::from(refusal.code), &pairs, body.as_bytes()) {
        error!(
            "kubegate: the proxy refused the local reply ({} {}): status {}; resetting the stream",
            refusal.code,
            refusal.reason(),
            e.0
        );
        if let Err(e) = abi::reset_http_request() {
            error!(
                "kubegate: the stream could not be reset either: status {}; it stays stopped",
                e.0
            );
        }
    }
}

/// A request that cannot be forwarded safely: logged as `decision=internal_error`, counted,
/// answered 500.
fn refuse_internal(configured: &Configured, vm: &Vm, mut log: DecisionLog, reason: String) {
    log.kind = Kind::Internal;
    log.reason = reason;
    vm.metrics.count(Kind::Internal);
    decision_state::report(&configured.config, Reported::of(&log));
    send_refusal(&Refusal::internal(
        "kubegate: the gateway could not prepare this request for the API server, so it is not forwarded; the gateway's log says why"
            .to_string(),
    ));
}

/// Applies the plan to the request headers, every write checked, then reads the headers
/// back once and checks they are exactly what the plan says. Any failure is an error: the
/// caller refuses the request (a write that failed or that the proxy silently dropped must
/// not forward the client's credentials, or a request without the identity).
fn apply(plan: &HeaderPlan) -> Result<(), String> {
    for write in plan.writes() {
        let (what, name, result) = match write {
            Write::Remove(name) => (
                "remove",
                name,
                abi::remove_header(abi::REQUEST_HEADERS, name),
            ),
            Write::Replace(name, value) => (
                "replace",
                name,
                abi::replace_header(abi::REQUEST_HEADERS, name, value),
            ),
            Write::Add(name, value) => (
                "add",
                name,
                abi::add_header(abi::REQUEST_HEADERS, name, value),
            ),
        };
        if let Err(e) = result {
            return Err(format!("the proxy failed to {what} {name}: status {}", e.0));
        }
    }
    let after = request_headers().map_err(|e| {
        format!(
            "the rewritten headers could not be read back: status {}",
            e.0
        )
    })?;
    plan.check(&after)
        .map_err(|e| format!("the rewritten headers are not what kubegate set: {e}"))
}

/// Applies a final decision to the current (or effective) http context: the header plan,
/// or a refusal. Returns whether the request may go on. A token whose key is missing
/// while its authenticator's remote set is not usable is a 503 (the keys are
/// unavailable), never a 401 that would send kubectl to log in again.
fn answer(configured: &Configured, vm: &Vm, decision: Decision) -> bool {
    let unavailable = decision
        .missing_key
        .and_then(|index| configured.remote_for(index))
        .is_some_and(|remote| !remote.in_use());
    if unavailable {
        increment(vm.metrics.unavailable);
        let refusal = Refusal::unavailable(
            "kubegate: the identity provider's signing keys are not available; try again shortly"
                .into(),
        );
        decision_state::report(
            &configured.config,
            Reported {
                log: &decision.log,
                decision: "unavailable",
                reason: "no usable remote key set",
            },
        );
        send_refusal(&refusal);
        return false;
    }
    match decision.outcome {
        Outcome::Allow(plan) => match apply(&plan) {
            Ok(()) => {
                vm.metrics.count(decision.log.kind);
                decision_state::report(&configured.config, Reported::of(&decision.log));
                true
            }
            Err(reason) => {
                refuse_internal(configured, vm, decision.log, reason);
                false
            }
        },
        Outcome::Refuse(refusal) => {
            vm.metrics.count(decision.log.kind);
            decision_state::report(&configured.config, Reported::of(&decision.log));
            send_refusal(&refusal);
            false
        }
    }
}

/// The log of a request whose headers could not be read.
fn unread_log() -> DecisionLog {
    DecisionLog {
        kind: Kind::Internal,
        user: None,
        groups: Vec::new(),
        method: String::new(),
        path: String::new(),
        route: None,
        reason: String::new(),
    }
}

/// Reads and judges the current (effective) request again and applies the answer;
/// whether it may go on.
fn judge(configured: &Configured, vm: &Vm, now: u64) -> bool {
    let headers = match request_headers() {
        Ok(headers) => headers,
        Err(e) => {
            refuse_internal(
                configured,
                vm,
                unread_log(),
                format!("the request headers could not be read: status {}", e.0),
            );
            return false;
        }
    };
    let cluster = upstream_cluster();
    let upstream = cluster
        .as_deref()
        .map_or(Upstream::Unknown, Upstream::Cluster);
    let decision = configured.decide(&vm.metrics, &headers, upstream, now);
    answer(configured, vm, decision)
}

struct Root {
    context_id: u32,
    vm: Rc<Vm>,
    configured: Option<Rc<Configured>>,
    fetcher: Fetcher,
}

impl Root {
    fn new(context_id: u32) -> Root {
        Root {
            context_id,
            vm: Rc::new(Vm::default()),
            configured: None,
            fetcher: Fetcher::new(context_id),
        }
    }

    /// Looks at the shared key state (adopt, refresh, time out) and answers the
    /// requests that stopped waiting.
    fn poll(&mut self, may_fetch: bool) {
        let Some(configured) = self.configured.clone() else {
            return;
        };
        let now = now_ms();
        let ready = self.fetcher.poll(&configured, &self.vm, now, may_fetch);
        self.resume(&configured, ready, now);
    }

    /// Decides each request again, in its own context, and resumes or answers it.
    fn resume(&self, configured: &Configured, ready: Vec<u32>, now: u64) {
        if ready.is_empty() {
            return;
        }
        for context_id in ready {
            // Fails when the request is gone (it also leaves the list when deleted).
            if abi::set_effective_context(context_id).is_err() {
                continue;
            }
            if judge(configured, &self.vm, now) {
                if let Err(e) = abi::resume_http_request() {
                    error!("kubegate: a request could not be resumed: status {}", e.0);
                }
            }
        }
        // Back to the root, so later hostcalls (dispatch above all) act on it.
        let _ = abi::set_effective_context(self.context_id);
    }
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        let now = now_ms();
        self.fetcher
            .on_response(&self.vm, token_id, num_headers, body_size, now);
        self.poll(false);
    }
}

impl RootContext for Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        self.vm = Rc::new(Vm {
            metrics: Metrics::define(),
            ..Vm::default()
        });
        true
    }

    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let bytes = match abi::buffer(abi::PLUGIN_CONFIGURATION, 0, usize::MAX) {
            Ok(bytes) => bytes,
            Err(e) => {
                error!(
                    "kubegate: configuration refused: the proxy did not hand over the plugin configuration (status {})",
                    e.0
                );
                return false;
            }
        };
        // The service-account token may come from the VM's environment (WASI environ),
        // which Envoy fills from vm_config.environment_variables and Istio from vmConfig.env.
        let env = |name: &str| std::env::var(name).ok();
        let config = match Config::parse(&bytes, &env) {
            Ok(config) => config,
            Err(e) => {
                // A false return makes Envoy/Istio refuse the plugin rather than run open.
                error!("kubegate: configuration refused: {e}");
                return false;
            }
        };
        info!("kubegate: configured: {}", describe(&config));
        for note in &config.notes {
            info!("kubegate: note: {note}");
        }
        for warning in &config.warnings {
            warn!("kubegate: warning: {warning}");
        }
        let configured = Rc::new(Configured::new(config));
        self.configured = Some(Rc::clone(&configured));
        // Requests that waited for a set this configuration does not fetch are decided
        // now; those waiting for a set it still fetches keep waiting for it.
        let sets: Vec<u64> = configured.remotes.iter().map(|r| r.source_id).collect();
        let orphans = self
            .vm
            .waiting
            .try_borrow_mut()
            .map(|mut w| w.take_other_sets(&sets))
            .unwrap_or_default();
        if configured.remotes.is_empty() {
            self.fetcher.stop();
        } else {
            self.fetcher.configure(&self.vm);
            self.poll(false);
        }
        self.resume(&configured, orphans, now_ms());
        true
    }

    fn on_tick(&mut self) {
        self.fetcher.on_tick();
        self.poll(true);
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        remote_keys::drain(queue_id);
        self.poll(true);
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request {
            context_id,
            configured: self.configured.clone(),
            vm: Rc::clone(&self.vm),
        }))
    }
}

struct Request {
    context_id: u32,
    configured: Option<Rc<Configured>>,
    vm: Rc<Vm>,
}

impl Context for Request {}

impl Request {
    /// Pauses the request until a key-set fetch ends, if one is running or may start;
    /// false when it is to be answered now (a refetch ran too recently, or the list is full).
    fn wait_for_keys(
        &self,
        remote: &RemoteView,
        decision: &Decision,
        attempts_seen: u64,
        now: u64,
    ) -> bool {
        let waiter = Waiter {
            context_id: self.context_id,
            set: remote.source_id,
            deadline_ms: now.saturating_add(remote.settings.wait_ms()),
            attempts_seen,
        };
        let queued = self
            .vm
            .waiting
            .try_borrow_mut()
            .is_ok_and(|mut waiting| waiting.push(waiter).is_ok());
        if !queued {
            return false;
        }
        remote_keys::wake(&self.vm);
        increment(self.vm.metrics.waited_for_keys);
        info!(
            "kubegate: waiting for signing keys of issuer {:?}: method={:?} path={:?} route={:?} reason={:?}",
            remote.issuer,
            decision.log.method,
            decision.log.path,
            decision.log.route.as_deref().unwrap_or("-"),
            decision.log.reason
        );
        true
    }
}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(configured) = self.configured.clone() else {
            increment(self.vm.metrics.not_configured);
            send_refusal(&Refusal::unavailable(
                "kubegate: the gateway has no valid configuration".into(),
            ));
            return Action::Pause;
        };
        let headers = match request_headers() {
            Ok(headers) => headers,
            Err(e) => {
                refuse_internal(
                    &configured,
                    &self.vm,
                    unread_log(),
                    format!("the request headers could not be read: status {}", e.0),
                );
                return Action::Pause;
            }
        };
        let cluster = upstream_cluster();
        let upstream = cluster
            .as_deref()
            .map_or(Upstream::Unknown, Upstream::Cluster);
        let now = now_ms();
        let mut decision = configured.decide(&self.vm.metrics, &headers, upstream, now);
        // Twice at most: after adopting a set another VM published, the key may still be
        // missing, and then a fetch may still be worth waiting for. Only the set of the
        // token's own authenticator is looked at, fetched or waited for.
        for _ in 0..2 {
            let Some(remote) = decision
                .missing_key
                .and_then(|index| configured.remote_for(index))
            else {
                break;
            };
            match remote.on_missing_key(&configured, now) {
                MissingKey::DecideAgain => {
                    decision = configured.decide(&self.vm.metrics, &headers, upstream, now);
                }
                MissingKey::Wait { attempts_seen } => {
                    if self.wait_for_keys(remote, &decision, attempts_seen, now) {
                        return Action::Pause;
                    }
                    break;
                }
                MissingKey::AnswerNow => break,
            }
        }
        if answer(&configured, &self.vm, decision) {
            Action::Continue
        } else {
            Action::Pause
        }
    }
}

impl Drop for Request {
    /// The proxy deletes the context when the stream ends, the client's going away
    /// included: a paused request must not stay on the list.
    fn drop(&mut self) {
        if let Ok(mut waiting) = self.vm.waiting.try_borrow_mut() {
            waiting.remove(self.context_id);
        }
    }
}
