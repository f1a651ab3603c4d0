//! The record every VM of the proxy shares (proxy shared data) about one key source: who
//! is fetching (a lease), when the next fetch is due, what was last published and when
//! it was last confirmed. Every change is a compare-and-swap on the whole record, so of N
//! VMs that find a fetch due, exactly one takes the lease and fetches; the others see the
//! lease and wait for the result. The JWKS body itself lives under a second key (only the
//! lease holder writes it, before it publishes its hash here), so the record read on
//! every tick stays small.
//!
//! Times are the proxy's clock in milliseconds since the Unix epoch.

use super::settings::RemoteJwksSettings;

/// The shared record. Unknown or missing fields default, so a record from another
/// version never wedges the fetching: at worst one extra fetch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchState {
    /// The VM holding the fetch lease (0: nobody) and until when.
    pub lease_holder: u64,
    pub lease_until_ms: u64,
    /// When the next scheduled fetch is due (0: now).
    pub next_fetch_ms: u64,
    /// When the last unknown-kid refetch started (the rate limit's reference).
    pub last_refetch_ms: u64,
    /// Completed fetches, successful or not: a waiting request wakes when this moves.
    pub attempts: u64,
    pub failures_in_row: u32,
    /// Why the last fetch failed (empty after a success).
    pub last_failure: String,
    /// `response::content_hash` of the published JWKS body (empty: none yet).
    pub published_hash: String,
    /// When a fetch last confirmed the published set: the staleness reference.
    pub fetched_ms: u64,
    /// The JWKS path OpenID discovery found (empty: discover on the next fetch).
    pub jwks_path: String,
}

/// Why a VM wants to fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FetchReason {
    /// The refresh interval passed (or nothing was ever fetched).
    Scheduled,
    /// A request needs a key the current set lacks (or no set is usable).
    Refetch,
}

/// What a request whose key is missing can expect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefetchVerdict {
    /// A fetch is running somewhere: wait for its result.
    InFlight,
    /// No fetch is running and one may start now: wait, and ask for it.
    Allowed,
    /// A refetch ran too recently: answer with what is known.
    RateLimited,
}

/// The first line of an encoded record.
const RECORD_VERSION: &str = "kubegate-jwks-state 1";

/// The longest failure text kept in the shared record.
const MAX_FAILURE_CHARS: usize = 200;

/// Retries after failures start at this and double, up to the refresh interval.
const FIRST_RETRY_MS: u64 = 1_000;

impl FetchState {
    /// Reads a record; anything unreadable is a fresh record (and gets overwritten by
    /// the next compare-and-swap), an unreadable field its default.
    ///
    /// The format is `name=value` lines after a version line, written by hand: serde's
    /// derives for this one record cost the module several KiB.
    pub fn decode(bytes: &[u8]) -> FetchState {
        let mut state = FetchState::default();
        let Ok(text) = std::str::from_utf8(bytes) else {
            return state;
        };
        let mut lines = text.lines();
        if lines.next() != Some(RECORD_VERSION) {
            return state;
        }
        for line in lines {
            let Some((name, value)) = line.split_once('=') else {
                continue;
            };
            let number = || value.parse::<u64>().unwrap_or(0);
            match name {
                "lease_holder" => state.lease_holder = number(),
                "lease_until_ms" => state.lease_until_ms = number(),
                "next_fetch_ms" => state.next_fetch_ms = number(),
                "last_refetch_ms" => state.last_refetch_ms = number(),
                "attempts" => state.attempts = number(),
                "failures_in_row" => state.failures_in_row = value.parse().unwrap_or(0),
                "last_failure" => state.last_failure = value.to_string(),
                "published_hash" => state.published_hash = value.to_string(),
                "fetched_ms" => state.fetched_ms = number(),
                "jwks_path" => state.jwks_path = value.to_string(),
                _ => {}
            }
        }
        state
    }

    pub fn encode(&self) -> Vec<u8> {
        let one_line = |text: &str| text.replace(['\n', '\r'], " ");
        format!(
            "{RECORD_VERSION}\nlease_holder={}\nlease_until_ms={}\nnext_fetch_ms={}\nlast_refetch_ms={}\nattempts={}\nfailures_in_row={}\nlast_failure={}\npublished_hash={}\nfetched_ms={}\njwks_path={}\n",
            self.lease_holder,
            self.lease_until_ms,
            self.next_fetch_ms,
            self.last_refetch_ms,
            self.attempts,
            self.failures_in_row,
            one_line(&self.last_failure),
            one_line(&self.published_hash),
            self.fetched_ms,
            one_line(&self.jwks_path),
        )
        .into_bytes()
    }

    /// Whether a fetch is running: a lease that has not run out.
    pub fn in_flight(&self, now_ms: u64) -> bool {
        self.lease_holder != 0 && now_ms < self.lease_until_ms
    }

    /// Whether the published set may still verify tokens.
    pub fn usable(&self, now_ms: u64, settings: &RemoteJwksSettings) -> bool {
        !self.published_hash.is_empty()
            && now_ms < self.fetched_ms.saturating_add(settings.max_stale_ms())
    }

    /// Seconds since a fetch last confirmed the published set (0 if none).
    pub fn age_seconds(&self, now_ms: u64) -> u64 {
        if self.published_hash.is_empty() {
            return 0;
        }
        now_ms.saturating_sub(self.fetched_ms) / 1000
    }

    pub fn refetch_verdict(&self, now_ms: u64, settings: &RemoteJwksSettings) -> RefetchVerdict {
        if self.in_flight(now_ms) {
            RefetchVerdict::InFlight
        } else if self.due(now_ms) || self.refetch_allowed(now_ms, settings) {
            RefetchVerdict::Allowed
        } else {
            RefetchVerdict::RateLimited
        }
    }

    fn due(&self, now_ms: u64) -> bool {
        now_ms >= self.next_fetch_ms
    }

    fn refetch_allowed(&self, now_ms: u64, settings: &RemoteJwksSettings) -> bool {
        self.last_refetch_ms == 0
            || now_ms
                >= self
                    .last_refetch_ms
                    .saturating_add(settings.refetch_min_interval_ms())
    }

    /// The record with `holder` owning the lease, if a fetch for `reason` may start now;
    /// the caller compare-and-swaps it in and fetches only if that succeeds. A due
    /// refresh always counts as scheduled (it does not use up the refetch allowance).
    pub fn begin(
        &self,
        holder: u64,
        now_ms: u64,
        reason: FetchReason,
        settings: &RemoteJwksSettings,
    ) -> Option<(FetchState, FetchReason)> {
        if self.in_flight(now_ms) {
            return None;
        }
        let reason = if self.due(now_ms) {
            FetchReason::Scheduled
        } else if reason == FetchReason::Refetch && self.refetch_allowed(now_ms, settings) {
            FetchReason::Refetch
        } else {
            return None;
        };
        let mut next = self.clone();
        next.lease_holder = holder;
        next.lease_until_ms = now_ms.saturating_add(settings.lease_ms());
        if reason == FetchReason::Refetch {
            next.last_refetch_ms = now_ms;
        }
        Some((next, reason))
    }

    /// The record after `holder`'s fetch published `hash` (the set is new or confirmed).
    pub fn succeeded(
        &self,
        holder: u64,
        now_ms: u64,
        hash: &str,
        jwks_path: &str,
        settings: &RemoteJwksSettings,
    ) -> FetchState {
        let mut next = self.finished(holder);
        next.failures_in_row = 0;
        next.last_failure.clear();
        next.published_hash = hash.to_string();
        next.fetched_ms = next.fetched_ms.max(now_ms);
        next.next_fetch_ms = now_ms.saturating_add(settings.refresh_ms());
        next.jwks_path = jwks_path.to_string();
        next
    }

    /// The record after `holder`'s fetch failed. The published set and its fetch time
    /// stay (staleness runs from the last success); the next try backs off. A failed
    /// discovery-based fetch discovers again next time.
    pub fn failed(
        &self,
        holder: u64,
        now_ms: u64,
        failure: &str,
        settings: &RemoteJwksSettings,
    ) -> FetchState {
        let mut next = self.finished(holder);
        next.failures_in_row = next.failures_in_row.saturating_add(1);
        next.last_failure = failure.chars().take(MAX_FAILURE_CHARS).collect();
        next.next_fetch_ms = now_ms.saturating_add(retry_ms(next.failures_in_row, settings));
        next.jwks_path.clear();
        next
    }

    fn finished(&self, holder: u64) -> FetchState {
        let mut next = self.clone();
        // A lease that ran out and was taken over is the new holder's, not ours.
        if next.lease_holder == holder {
            next.lease_holder = 0;
            next.lease_until_ms = 0;
        }
        next.attempts = next.attempts.wrapping_add(1);
        next
    }
}

/// The wait before retrying after `failures` failures in a row: 1 s, 2 s, 4 s ... up to
/// the refresh interval, so a broken IdP is not hammered and a blip heals quickly.
pub fn retry_ms(failures: u32, settings: &RemoteJwksSettings) -> u64 {
    let exponent = failures.saturating_sub(1).min(20);
    FIRST_RETRY_MS
        .saturating_mul(1u64 << exponent)
        .min(settings.refresh_ms())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwks::settings::KeySource;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn settings() -> RemoteJwksSettings {
        RemoteJwksSettings {
            cluster: "idp".into(),
            authority: "idp.example.com".into(),
            source: KeySource::Path("/jwks".into()),
            refresh_seconds: 300,
            timeout_ms: 5_000,
            max_stale_seconds: 3_600,
            refetch_min_interval_seconds: 30,
            max_response_bytes: 4096,
            poll_interval_ms: 1_000,
        }
    }

    const T0: u64 = 1_700_000_000_000;

    #[test]
    fn of_several_vms_only_the_first_to_swap_in_the_lease_fetches() {
        let s = settings();
        let fresh = FetchState::default();
        // Every VM finds the fetch due and computes its own lease...
        let (a, reason) = fresh.begin(1, T0, FetchReason::Scheduled, &s).unwrap();
        assert_eq!(reason, FetchReason::Scheduled);
        assert!(fresh.begin(2, T0, FetchReason::Scheduled, &s).is_some());
        // ...but after the first swap succeeds, the others (re-reading) see it held.
        assert!(a.in_flight(T0 + 1));
        assert!(a.begin(2, T0 + 1, FetchReason::Scheduled, &s).is_none());
        assert!(a.begin(2, T0 + 1, FetchReason::Refetch, &s).is_none());
        assert_eq!(a.refetch_verdict(T0 + 1, &s), RefetchVerdict::InFlight);
    }

    #[test]
    fn success_publishes_releases_and_schedules_the_refresh() {
        let s = settings();
        let (held, _) = FetchState::default()
            .begin(1, T0, FetchReason::Scheduled, &s)
            .unwrap();
        let done = held.succeeded(1, T0 + 200, "h1", "", &s);
        assert!(!done.in_flight(T0 + 200));
        assert_eq!(done.attempts, 1);
        assert_eq!(done.published_hash, "h1");
        assert_eq!(done.fetched_ms, T0 + 200);
        assert_eq!(done.next_fetch_ms, T0 + 200 + 300_000);
        // Not due again until the interval has passed.
        assert!(done
            .begin(2, T0 + 299_000, FetchReason::Scheduled, &s)
            .is_none());
        assert!(done
            .begin(2, T0 + 300_200, FetchReason::Scheduled, &s)
            .is_some());
    }

    #[test]
    fn a_lost_lease_is_taken_over_and_the_old_holder_does_not_release_it() {
        let s = settings();
        let (held, _) = FetchState::default()
            .begin(1, T0, FetchReason::Scheduled, &s)
            .unwrap();
        let expired = T0 + s.lease_ms();
        assert!(!held.in_flight(expired));
        let (taken, _) = held.begin(2, expired, FetchReason::Scheduled, &s).unwrap();
        let late = taken.failed(1, expired + 1, "late", &s);
        assert_eq!(
            late.lease_holder, 2,
            "VM 1's late answer leaves VM 2's lease"
        );
        assert!(late.in_flight(expired + 1));
    }

    #[test]
    fn failures_keep_the_set_and_back_off() {
        let s = settings();
        let published = FetchState::default().succeeded(1, T0, "h1", "", &s);
        let mut state = published.clone();
        let mut now = published.next_fetch_ms;
        let mut waits = Vec::new();
        for _ in 0..12 {
            let (held, _) = state.begin(1, now, FetchReason::Scheduled, &s).unwrap();
            state = held.failed(1, now, "HTTP status \"503\"", &s);
            waits.push((state.next_fetch_ms - now) / 1000);
            now = state.next_fetch_ms;
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(state.published_hash, "h1");
        assert_eq!(
            state.fetched_ms, T0,
            "staleness counts from the last success"
        );
        assert_eq!(state.last_failure, "HTTP status \"503\"");
        assert_eq!(state.attempts, 13);
        let healed = state.succeeded(1, now, "h1", "", &s);
        assert_eq!(
            (healed.failures_in_row, healed.last_failure.as_str()),
            (0, "")
        );
    }

    #[test]
    fn a_set_is_usable_until_max_stale_after_its_last_confirmation() {
        let s = settings();
        let fresh = FetchState::default();
        assert!(!fresh.usable(T0, &s), "nothing published");
        assert_eq!(fresh.age_seconds(T0), 0);
        let published = fresh.succeeded(1, T0, "h1", "", &s);
        assert!(published.usable(T0 + 3_599_999, &s));
        assert!(!published.usable(T0 + 3_600_000, &s));
        assert_eq!(published.age_seconds(T0 + 90_500), 90);
        // A confirmation (same hash) moves the reference.
        let confirmed = published.succeeded(1, T0 + 1_000_000, "h1", "", &s);
        assert!(confirmed.usable(T0 + 4_000_000, &s));
    }

    #[test]
    fn unknown_kid_refetches_are_rate_limited_across_vms() {
        let s = settings();
        let published = FetchState::default().succeeded(1, T0, "h1", "", &s);
        let now = T0 + 10_000;
        assert_eq!(published.refetch_verdict(now, &s), RefetchVerdict::Allowed);
        assert!(
            published
                .begin(2, now, FetchReason::Scheduled, &s)
                .is_none(),
            "not due"
        );
        let (held, reason) = published.begin(2, now, FetchReason::Refetch, &s).unwrap();
        assert_eq!(reason, FetchReason::Refetch);
        assert_eq!(held.last_refetch_ms, now);
        let done = held.succeeded(2, now + 100, "h2", "", &s);
        // Another VM, 29 s later: too soon.
        let later = now + 29_000;
        assert_eq!(done.refetch_verdict(later, &s), RefetchVerdict::RateLimited);
        assert!(done.begin(3, later, FetchReason::Refetch, &s).is_none());
        assert_eq!(
            done.refetch_verdict(now + 30_000, &s),
            RefetchVerdict::Allowed
        );
        // A due refresh is scheduled, not a refetch, and leaves the allowance alone.
        let due = done.next_fetch_ms;
        let (held, reason) = done.begin(3, due, FetchReason::Refetch, &s).unwrap();
        assert_eq!(reason, FetchReason::Scheduled);
        assert_eq!(held.last_refetch_ms, now);
    }

    #[test]
    fn records_round_trip_and_garbage_reads_as_fresh() {
        let s = settings();
        let state = FetchState::default()
            .succeeded(7, T0, "abc", "/certs", &s)
            .failed(7, T0 + 1, "x", &s);
        assert_eq!(FetchState::decode(&state.encode()), state);
        assert_eq!(FetchState::decode(b"garbage"), FetchState::default());
        assert_eq!(FetchState::decode(b""), FetchState::default());
        let partial = FetchState::decode(
            b"kubegate-jwks-state 1\nattempts=4\nfuture_field=1\nfetched_ms=x\n",
        );
        assert_eq!(partial.attempts, 4);
        assert_eq!(partial.fetched_ms, 0);
        assert_eq!(
            FetchState::decode(b"kubegate-jwks-state 2\nattempts=4\n"),
            FetchState::default()
        );
        // A failure text cannot add lines (fields) to the record.
        let forged = FetchState::default().failed(1, T0, "x\nlease_holder=9", &s);
        assert_eq!(FetchState::decode(&forged.encode()).lease_holder, 0);
        let long = "x".repeat(1000);
        assert_eq!(
            FetchState::default()
                .failed(1, T0, &long, &s)
                .last_failure
                .len(),
            MAX_FAILURE_CHARS
        );
    }

    #[test]
    fn a_failed_discovery_is_rediscovered() {
        let s = settings();
        let found = FetchState::default().succeeded(1, T0, "h", "/certs", &s);
        assert_eq!(found.jwks_path, "/certs");
        assert_eq!(found.failed(1, T0, "x", &s).jwks_path, "");
    }
}
