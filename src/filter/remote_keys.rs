//! The proxy-wasm side of remote keys: shared data, dispatch_http_call, the tick and the
//! wake queue. Every decision is made by `crate::jwks` (coordination.rs above all); this
//! file reads and writes what those functions need and logs and counts what happened.
//!
//! Every authenticator with `keys.remote` has its own set (a `RemoteView`), and its
//! fetched keys go into that authenticator's `keys` only, so a key of one identity
//! provider never verifies a token of another. Two authenticators with the same source
//! (cluster, authority, path or issuer) share its shared-data record, so one fetch serves
//! both, yet each adds the set to its own inline keys.
//!
//! Per VM and per set: on every poll (tick, wake, after a fetch) read the small shared
//! record; adopt a newly published set; drop a set gone stale; if a fetch is due (or a
//! request waiting for this set wants one) and nobody holds the lease, take it with a
//! compare-and-swap and fetch; wake the requests waiting for this set that a finished
//! fetch or a deadline released.

use super::abi;
use super::metrics::{increment, record};
use super::{Configured, Vm};
use crate::jwks::discovery;
use crate::jwks::response::{self, content_hash, parse_key_set};
use crate::jwks::{
    FetchFailure, FetchReason, FetchState, KeySource, ParsedKeySet, RefetchVerdict,
    RemoteJwksSettings,
};
use crate::jwt::KeySet;
use log::{info, warn};
use proxy_wasm::hostcalls;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// The first tick comes this soon after configuration; fetching starts then, not in
/// on_configure, so that VMs configured together have all seen the shared record exist
/// (creating it cannot be compare-and-swapped: a missing key accepts any write).
const FIRST_TICK: Duration = Duration::from_millis(50);

/// Compare-and-swap retries when publishing; contention is a handful of VMs at most.
const CAS_ATTEMPTS: usize = 8;

/// One authenticator's remote key source and what this VM adopted from it.
pub(super) struct RemoteView {
    /// Index of the authenticator in `Config::authenticators`: the only one whose keys
    /// this set joins.
    pub authenticator: usize,
    /// Its issuer, for log lines.
    pub issuer: String,
    pub settings: RemoteJwksSettings,
    /// `settings.source_id()`: requests waiting for this set are filed under it.
    pub source_id: u64,
    state_key: String,
    keys_key: String,
    adopted: RefCell<Adopted>,
}

#[derive(Default)]
struct Adopted {
    /// `content_hash` of the body whose keys are in the authenticator's keys (empty: none).
    hash: String,
    /// The published hash last looked at, so a body is read once per publication.
    seen: String,
    remote_keys: usize,
}

impl RemoteView {
    pub(super) fn new(
        authenticator: usize,
        issuer: String,
        settings: RemoteJwksSettings,
    ) -> RemoteView {
        RemoteView {
            authenticator,
            issuer,
            source_id: settings.source_id(),
            state_key: settings.state_key(),
            keys_key: settings.keys_key(),
            settings,
            adopted: RefCell::new(Adopted::default()),
        }
    }

    /// Whether remote keys are in the authenticator's keys (fetched, and not gone stale).
    pub(super) fn in_use(&self) -> bool {
        self.adopted
            .try_borrow()
            .is_ok_and(|adopted| !adopted.hash.is_empty())
    }

    fn remote_keys(&self) -> usize {
        self.adopted.try_borrow().map_or(0, |a| a.remote_keys)
    }

    /// What a request whose key is missing from this set's authenticator should do:
    /// decide again with a set another VM published that this one has not adopted yet,
    /// wait for a fetch of this set (one is running, or may start now), or be answered
    /// now (a refetch of this set ran too recently).
    pub(super) fn on_missing_key(&self, configured: &Configured, now_ms: u64) -> MissingKey {
        let state = read_state(&self.state_key)
            .map(|(state, _)| state)
            .unwrap_or_default();
        let unseen = self
            .adopted
            .try_borrow()
            .is_ok_and(|adopted| adopted.seen != state.published_hash);
        if unseen && adopt_published(configured, self, &state, now_ms) {
            return MissingKey::DecideAgain;
        }
        match state.refetch_verdict(now_ms, &self.settings) {
            RefetchVerdict::InFlight | RefetchVerdict::Allowed => MissingKey::Wait {
                attempts_seen: state.attempts,
            },
            RefetchVerdict::RateLimited => MissingKey::AnswerNow,
        }
    }
}

/// See `RemoteView::on_missing_key`.
pub(super) enum MissingKey {
    DecideAgain,
    Wait { attempts_seen: u64 },
    AnswerNow,
}

/// Asks this VM's root context to poll now (a request is waiting) rather than at the
/// next tick. Without the queue the tick still comes.
pub(super) fn wake(vm: &Vm) {
    if let Some(queue) = vm.wake_queue.get() {
        let _ = abi::enqueue_shared_queue(queue, b"wake");
    }
}

/// Empties the wake queue (one poll serves every wake-up).
pub(super) fn drain(queue: u32) {
    for _ in 0..10_000 {
        match abi::dequeue_shared_queue(queue) {
            Ok(Some(_)) => {}
            _ => break,
        }
    }
}

/// One fetch in progress (this VM holds the lease of its set).
struct InFlight {
    token: u32,
    /// Index into `configured.remotes`.
    view: usize,
    /// The set's `source_id`: one fetch per set at a time.
    source_id: u64,
    /// When the lease runs out (the fetch is given up then).
    lease_until_ms: u64,
    step: Step,
    reason: FetchReason,
    started_ms: u64,
    /// The configuration the fetch is for (the root may be reconfigured meanwhile).
    configured: Rc<Configured>,
}

enum Step {
    /// Fetching the OpenID configuration to learn the JWKS path.
    Discovery,
    Keys(String),
}

/// The root context's fetching state.
pub(super) struct Fetcher {
    /// This VM's id in the shared leases (random, so VMs never share one).
    holder: u64,
    /// At most one per set.
    in_flight: Vec<InFlight>,
    poll_interval: Option<Duration>,
    first_tick_pending: bool,
}

impl Fetcher {
    pub(super) fn new(context_id: u32) -> Fetcher {
        use std::hash::{BuildHasher, RandomState};
        let holder = RandomState::new().hash_one((context_id, super::now_ms()));
        Fetcher {
            holder: holder.max(1),
            in_flight: Vec::new(),
            poll_interval: None,
            first_tick_pending: false,
        }
    }

    /// A configuration with remote keys was accepted: register the wake queue (once per
    /// VM) and start the timer.
    pub(super) fn configure(&mut self, vm: &Vm) {
        if vm.wake_queue.get().is_none() {
            let name = format!("kubegate.jwks.wake.{:016x}", self.holder);
            if let Ok(queue) = abi::register_shared_queue(&name) {
                vm.wake_queue.set(Some(queue));
            }
        }
        self.first_tick_pending = true;
        let _ = abi::set_tick_period(FIRST_TICK);
    }

    /// The configuration has no remote keys: no timer.
    pub(super) fn stop(&mut self) {
        self.first_tick_pending = false;
        self.poll_interval = None;
        let _ = abi::set_tick_period(Duration::ZERO);
    }

    pub(super) fn on_tick(&mut self) {
        if self.first_tick_pending {
            self.first_tick_pending = false;
            self.poll_interval = None;
        }
    }

    /// See the module documentation. Returns the waiting requests to decide now.
    pub(super) fn poll(
        &mut self,
        configured: &Rc<Configured>,
        vm: &Vm,
        now_ms: u64,
        may_fetch: bool,
    ) -> Vec<u32> {
        // The fastest set's poll interval serves them all.
        let Some(interval) = configured
            .remotes
            .iter()
            .map(|remote| remote.settings.poll_interval_ms)
            .min()
            .map(Duration::from_millis)
        else {
            return Vec::new();
        };
        if !self.first_tick_pending && self.poll_interval != Some(interval) {
            self.poll_interval = Some(interval);
            let _ = abi::set_tick_period(interval);
        }
        self.forget_lost_fetches(now_ms);
        let mut ready = Vec::new();
        let mut oldest_age = 0;
        let mut remote_keys = 0;
        for (index, remote) in configured.remotes.iter().enumerate() {
            let Some((mut state, cas)) = read_state(&remote.state_key) else {
                write_state(&remote.state_key, &FetchState::default(), None);
                continue;
            };
            adopt_published(configured, remote, &state, now_ms);
            oldest_age = oldest_age.max(age_in_use(remote, &state, now_ms));
            remote_keys += remote.remote_keys();

            let fetching = self
                .in_flight
                .iter()
                .any(|f| f.source_id == remote.source_id);
            if may_fetch && !fetching {
                let waiting = vm
                    .waiting
                    .try_borrow()
                    .is_ok_and(|w| w.waits_for(remote.source_id));
                let reason = if waiting {
                    FetchReason::Refetch
                } else {
                    FetchReason::Scheduled
                };
                if let Some((leased, reason)) =
                    state.begin(self.holder, now_ms, reason, &remote.settings)
                {
                    if write_state(&remote.state_key, &leased, cas) {
                        self.start(configured, vm, index, &leased, reason, now_ms);
                    }
                    // Whatever happened (another VM won, or the dispatch failed at once),
                    // the waiters below go by the record as it is now.
                    if let Some((now_state, _)) = read_state(&remote.state_key) {
                        state = now_state;
                    }
                }
            }
            let running = state.in_flight(now_ms);
            // Requests of this set only: a fetch of another issuer's set helps them not.
            if let Ok(mut waiting) = vm.waiting.try_borrow_mut() {
                ready.extend(waiting.take_ready(remote.source_id, now_ms, state.attempts, running));
            }
        }
        // Gauges over every set in use: the oldest one's age, and the keys they add.
        record(vm.metrics.jwks_age_seconds, oldest_age);
        record(vm.metrics.jwks_keys, remote_keys as u64);
        ready
    }

    /// A fetch whose answer never came (its lease ran out) no longer blocks its set.
    fn forget_lost_fetches(&mut self, now_ms: u64) {
        self.in_flight.retain(|f| {
            let lost = now_ms >= f.lease_until_ms;
            if lost {
                warn!("kubegate: a key set fetch got no answer within its lease; giving it up");
            }
            !lost
        });
    }

    fn start(
        &mut self,
        configured: &Rc<Configured>,
        vm: &Vm,
        view: usize,
        state: &FetchState,
        reason: FetchReason,
        now_ms: u64,
    ) {
        let Some(remote) = configured.remotes.get(view) else {
            return;
        };
        increment(vm.metrics.jwks_fetches);
        if reason == FetchReason::Refetch {
            increment(vm.metrics.jwks_refetches);
        }
        let step = match &remote.settings.source {
            KeySource::Path(path) => Step::Keys(path.clone()),
            KeySource::OidcIssuer { .. } if state.jwks_path.is_empty() => Step::Discovery,
            KeySource::OidcIssuer { .. } => Step::Keys(state.jwks_path.clone()),
        };
        self.dispatch(configured, vm, view, step, reason, now_ms, now_ms);
    }

    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &mut self,
        configured: &Rc<Configured>,
        vm: &Vm,
        view: usize,
        step: Step,
        reason: FetchReason,
        started_ms: u64,
        now_ms: u64,
    ) {
        let Some(remote) = configured.remotes.get(view) else {
            return;
        };
        let settings = &remote.settings;
        let path = match (&step, &settings.source) {
            (Step::Keys(path), _) => path.as_str(),
            (Step::Discovery, KeySource::OidcIssuer { discovery_path, .. }) => {
                discovery_path.as_str()
            }
            (Step::Discovery, KeySource::Path(path)) => path.as_str(),
        };
        info!(
            "kubegate: fetching signing keys ({}): GET {path:?} from {:?} through cluster {:?} for issuer {:?}",
            match reason {
                FetchReason::Scheduled => "scheduled",
                FetchReason::Refetch => "a token names an unknown key",
            },
            settings.authority,
            settings.cluster,
            remote.issuer
        );
        let headers = vec![
            (":method", "GET"),
            (":path", path),
            (":authority", settings.authority.as_str()),
            ("accept", "application/json"),
            ("user-agent", "kubegate"),
        ];
        // Dispatched only from root callbacks: the SDK sends the answer to the context
        // that was running, and the root is the one that outlives every request.
        match hostcalls::dispatch_http_call(
            &settings.cluster,
            headers,
            None,
            Vec::new(),
            Duration::from_millis(settings.timeout_ms),
        ) {
            Ok(token) => {
                self.in_flight.push(InFlight {
                    token,
                    view,
                    source_id: remote.source_id,
                    lease_until_ms: started_ms.saturating_add(settings.lease_ms()),
                    step,
                    reason,
                    started_ms,
                    configured: Rc::clone(configured),
                });
            }
            Err(status) => {
                let failure = FetchFailure::Dispatch(format!(
                    "{status:?} (is {:?} an Envoy cluster?)",
                    settings.cluster
                ));
                self.finish_failed(vm, remote, &failure, now_ms);
            }
        }
    }

    /// The answer to one of this VM's fetches (on the root context).
    pub(super) fn on_response(
        &mut self,
        vm: &Vm,
        token: u32,
        num_headers: usize,
        body_size: usize,
        now_ms: u64,
    ) {
        let Some(position) = self.in_flight.iter().position(|f| f.token == token) else {
            return;
        };
        let in_flight = self.in_flight.swap_remove(position);
        let configured = in_flight.configured;
        let Some(remote) = configured.remotes.get(in_flight.view) else {
            return;
        };
        let settings = &remote.settings;
        let answer = read_answer(num_headers, body_size, settings.max_response_bytes);
        match in_flight.step {
            Step::Discovery => {
                let path = answer.and_then(|document| match &settings.source {
                    KeySource::OidcIssuer { issuer, .. } => {
                        discovery::jwks_path(&document, issuer, &settings.authority)
                            .map_err(FetchFailure::Discovery)
                    }
                    KeySource::Path(_) => {
                        Err(FetchFailure::Discovery("no discovery is configured".into()))
                    }
                });
                match path {
                    Ok(path) => self.dispatch(
                        &configured,
                        vm,
                        in_flight.view,
                        Step::Keys(path),
                        in_flight.reason,
                        in_flight.started_ms,
                        now_ms,
                    ),
                    Err(failure) => self.finish_failed(vm, remote, &failure, now_ms),
                }
            }
            Step::Keys(path) => {
                let parsed = answer.and_then(|body| {
                    parse_key_set(&body, inline_keys(&configured, remote)?)
                        .map(|parsed| (body, parsed))
                });
                match parsed {
                    Ok((body, parsed)) => {
                        self.finish_succeeded(&configured, vm, remote, &body, parsed, &path, now_ms)
                    }
                    Err(failure) => self.finish_failed(vm, remote, &failure, now_ms),
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_succeeded(
        &mut self,
        configured: &Configured,
        vm: &Vm,
        remote: &RemoteView,
        body: &[u8],
        parsed: ParsedKeySet,
        path: &str,
        now_ms: u64,
    ) {
        let settings = &remote.settings;
        let hash = content_hash(body);
        // Only a discovered path is remembered; a configured one is in the settings.
        let discovered = match settings.source {
            KeySource::OidcIssuer { .. } => path,
            KeySource::Path(_) => "",
        };
        let mut changed = false;
        let mut body_written = false;
        for _ in 0..CAS_ATTEMPTS {
            let (state, cas) = read_state(&remote.state_key).unwrap_or_default();
            if state.published_hash != hash {
                changed = true;
                // The body goes first: a VM that sees the new hash must find it.
                if !body_written {
                    body_written = write_shared(&remote.keys_key, body, None);
                }
            }
            let next = state.succeeded(self.holder, now_ms, &hash, discovered, settings);
            if write_state(&remote.state_key, &next, cas) {
                break;
            }
        }
        if changed {
            increment(vm.metrics.jwks_updates);
        }
        info!(
            "kubegate: signing keys fetched: {} remote key(s){} for issuer {:?}",
            parsed.remote_keys,
            if changed {
                ", a new set"
            } else {
                ", unchanged"
            },
            remote.issuer
        );
        install(configured, remote, parsed, hash);
    }

    fn finish_failed(&mut self, vm: &Vm, remote: &RemoteView, failure: &FetchFailure, now_ms: u64) {
        let settings = &remote.settings;
        increment(vm.metrics.jwks_fetch_failures);
        let reason = failure.to_string();
        let mut state = FetchState::default();
        for _ in 0..CAS_ATTEMPTS {
            let (current, cas) = read_state(&remote.state_key).unwrap_or_default();
            state = current.failed(self.holder, now_ms, &reason, settings);
            if write_state(&remote.state_key, &state, cas) {
                break;
            }
        }
        let consequence = if remote.in_use() {
            format!(
                "the set confirmed {} s ago stays in use until it is {} s old",
                state.age_seconds(now_ms),
                settings.max_stale_seconds
            )
        } else {
            "no remote key set is in use for this issuer: its requests that need one are answered 503".to_string()
        };
        warn!(
            "kubegate: fetching signing keys from {:?} through cluster {:?} for issuer {:?} failed: {reason}; {consequence}; next try in {} s",
            settings.authority,
            settings.cluster,
            remote.issuer,
            state.next_fetch_ms.saturating_sub(now_ms) / 1000
        );
    }
}

/// The configured keys of a set's authenticator: what its fetched keys are added to.
fn inline_keys<'c>(
    configured: &'c Configured,
    remote: &RemoteView,
) -> Result<&'c KeySet, FetchFailure> {
    configured
        .inline_keys
        .get(remote.authenticator)
        .ok_or_else(|| FetchFailure::Unusable("no such authenticator".into()))
}

/// Adopts the published set if it is new to this VM, or drops the set in use once it
/// is older than max_stale_seconds. Returns whether the keys in use changed.
fn adopt_published(
    configured: &Configured,
    remote: &RemoteView,
    state: &FetchState,
    now: u64,
) -> bool {
    if !state.usable(now, &remote.settings) {
        if remote.in_use() {
            warn!(
                "kubegate: the remote key set of issuer {:?} was last confirmed {} s ago, more than max_stale_seconds ({}): its keys are no longer accepted",
                remote.issuer,
                state.age_seconds(now),
                remote.settings.max_stale_seconds
            );
            uninstall(configured, remote);
            return true;
        }
        return false;
    }
    let (seen, adopted_hash) = match remote.adopted.try_borrow() {
        Ok(adopted) => (adopted.seen.clone(), adopted.hash.clone()),
        Err(_) => return false,
    };
    if state.published_hash == seen {
        return false;
    }
    if let Ok(mut adopted) = remote.adopted.try_borrow_mut() {
        adopted.seen = state.published_hash.clone();
    }
    let Some(body) = read_shared(&remote.keys_key).map(|(body, _)| body) else {
        warn!("kubegate: a key set was published but its body is missing from shared data");
        return false;
    };
    let hash = content_hash(&body);
    if hash == adopted_hash {
        return false;
    }
    match inline_keys(configured, remote).and_then(|inline| parse_key_set(&body, inline)) {
        Ok(parsed) => {
            install(configured, remote, parsed, hash);
            true
        }
        Err(failure) => {
            warn!(
                "kubegate: the published key set is not usable for issuer {:?}: {failure}",
                remote.issuer
            );
            false
        }
    }
}

/// Puts a set's keys in use, in its own authenticator only. Tokens verified with the old
/// set are forgotten: a key that left the set must stop being accepted at once, cached
/// or not.
fn install(configured: &Configured, remote: &RemoteView, parsed: ParsedKeySet, hash: String) {
    let Ok(mut adopted) = remote.adopted.try_borrow_mut() else {
        return;
    };
    if adopted.hash == hash {
        adopted.seen = hash;
        return;
    }
    let Ok(mut config) = configured.config.try_borrow_mut() else {
        return;
    };
    let Some(authenticator) = config.authenticators.get_mut(remote.authenticator) else {
        return;
    };
    let kids: Vec<&str> = parsed.combined.kids().collect();
    info!(
        "kubegate: signing keys in use now: {kids:?} for issuer {:?}",
        remote.issuer
    );
    authenticator.keys = parsed.combined;
    if let Ok(mut cache) = configured.cache.try_borrow_mut() {
        cache.clear();
    }
    adopted.seen = hash.clone();
    adopted.hash = hash;
    adopted.remote_keys = parsed.remote_keys;
}

/// Takes a stale set out of its authenticator's keys (its inline keys stay).
fn uninstall(configured: &Configured, remote: &RemoteView) {
    let Ok(mut config) = configured.config.try_borrow_mut() else {
        // Still marked in use, so the next poll tries again.
        return;
    };
    if let (Some(authenticator), Some(inline)) = (
        config.authenticators.get_mut(remote.authenticator),
        configured.inline_keys.get(remote.authenticator),
    ) {
        authenticator.keys = inline.clone();
    }
    drop(config);
    if let Ok(mut cache) = configured.cache.try_borrow_mut() {
        cache.clear();
    }
    if let Ok(mut adopted) = remote.adopted.try_borrow_mut() {
        *adopted = Adopted::default();
    }
}

fn age_in_use(remote: &RemoteView, state: &FetchState, now: u64) -> u64 {
    if remote.in_use() {
        state.age_seconds(now)
    } else {
        0
    }
}

/// The body of a fetch answer, or why there is none worth reading. The headers are read
/// only when the proxy says there are some: after a reset Envoy has no response map, and
/// the SDK would trap on reading it.
fn read_answer(
    num_headers: usize,
    body_size: usize,
    limit: usize,
) -> Result<Vec<u8>, FetchFailure> {
    if num_headers == 0 {
        return Err(FetchFailure::NoResponse);
    }
    let headers =
        abi::header_pairs(abi::HTTP_CALL_RESPONSE_HEADERS).map_err(|_| FetchFailure::NoResponse)?;
    let status = headers
        .iter()
        .find(|(name, _)| name == ":status")
        .map(|(_, value)| String::from_utf8_lossy(value).into_owned());
    response::check_status(status.as_deref())?;
    response::check_size(body_size, limit)?;
    match abi::buffer(abi::HTTP_CALL_RESPONSE_BODY, 0, body_size) {
        Ok(body) if body.is_empty() => Err(FetchFailure::Empty),
        Ok(body) if body.len() <= limit => Ok(body),
        Ok(body) => Err(FetchFailure::TooLarge {
            size: body.len(),
            limit,
        }),
        _ => Err(FetchFailure::Empty),
    }
}

fn read_shared(key: &str) -> Option<(Vec<u8>, Option<u32>)> {
    match abi::get_shared_data(key) {
        Ok(Some((value, cas))) => Some((value, (cas != 0).then_some(cas))),
        _ => None,
    }
}

/// `false` when the compare-and-swap lost (or the proxy refused the write).
fn write_shared(key: &str, value: &[u8], cas: Option<u32>) -> bool {
    match abi::set_shared_data(key, value, cas.unwrap_or(0)) {
        Ok(()) => true,
        Err(abi::HostError(abi::CAS_MISMATCH)) => false,
        Err(status) => {
            warn!("kubegate: shared data {key} not written: {status:?}");
            false
        }
    }
}

fn read_state(key: &str) -> Option<(FetchState, Option<u32>)> {
    read_shared(key).map(|(bytes, cas)| (FetchState::decode(&bytes), cas))
}

fn write_state(key: &str, state: &FetchState, cas: Option<u32>) -> bool {
    write_shared(key, &state.encode(), cas)
}
