//! Long, bounded runs through the real kubegate.wasm in the host:
//! - 20 000 garbage requests and tokens: no trap (a trap is a Failed outcome, a critical
//!   host log line and a replaced VM), nothing forwarded, every request counted, and no
//!   growth of the VMs' linear memory once warmed up;
//! - a flood of distinct valid tokens: the verified-token cache stays within
//!   `jwt.cache_entries` (default 1024), and so does the VM's memory.
//!
//! Memory is each VM's linear memory (`Plugin::memory_sizes`), which only ever grows: a
//! high-water mark, so a leak or an unbounded cache shows as growth.

mod common;
mod hostile;

use hostile::{b64, sign, sign_raw, sign_raw_with, HMAC_KID};
use kubegate_host::{FilterOutcome, FilterRequest, Plugin};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

const GARBAGE_REQUESTS: usize = 20_000;
const WARM_UP: usize = 2_000;
const IN_FLIGHT: usize = 32;
/// Generous for a loaded two-core CI machine; the run takes a few seconds here.
const TIME_LIMIT: Duration = Duration::from_secs(300);
const MIB: usize = 1024 * 1024;

fn now() -> u64 {
    kubegate_testkit::tokens::now()
}

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
    fn bytes_upto(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max);
        self.bytes(len)
    }
    fn text_upto(&mut self, max: usize) -> String {
        let len = self.below(max);
        self.text(len)
    }
    /// Visible ASCII and spaces: what a proxy delivers as a header value.
    fn text(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b' ' + (self.next() % 95) as u8))
            .collect()
    }
}

/// A token that must never pass: every way one can be wrong.
fn garbage_token(rng: &mut Rng) -> String {
    let t = now();
    match rng.below(10) {
        0 => rng.text_upto(200),
        1 => format!(
            "{}.{}.{}",
            b64(&rng.bytes_upto(60)),
            b64(&rng.bytes_upto(300)),
            b64(&rng.bytes_upto(80))
        ),
        // Well-formed, signed by the trusted key, but expired / foreign / not yet valid.
        2 => sign(&json!({"iss": hostile::ISSUER, "aud": hostile::AUDIENCE,
                          "email": "late@example.com", "exp": t - 120 - rng.below(1000) as u64})),
        3 => sign(
            &json!({"iss": "https://evil.example", "aud": hostile::AUDIENCE,
                          "email": "x@example.com", "exp": t + 300}),
        ),
        4 => sign(&json!({"iss": hostile::ISSUER, "aud": hostile::AUDIENCE,
                          "email": "early@example.com", "nbf": t + 3600, "exp": t + 7200})),
        // Signed with another secret.
        5 => sign_raw_with(
            format!(r#"{{"alg":"HS256","kid":"{HMAC_KID}"}}"#).as_bytes(),
            hostile::claims("a@example.com", &[], t)
                .to_string()
                .as_bytes(),
            &rng.bytes(32),
        ),
        // Random JSON-ish header and payload under the trusted key.
        6 => sign_raw(&rng.bytes_upto(80), &rng.bytes_upto(400)),
        // Huge: past the size limit, up to Envoy's default header limit.
        7 => {
            let len = 8_000 + rng.below(56_000);
            "A".repeat(len)
        }
        // Nesting bombs.
        8 => {
            let depth = 50 + rng.below(3_000);
            sign_raw(
                format!(r#"{{"alg":"HS256","kid":"{HMAC_KID}"}}"#).as_bytes(),
                format!("{}{}", "[".repeat(depth), "]".repeat(depth)).as_bytes(),
            )
        }
        _ => format!(
            "{}..{}",
            b64(br#"{"alg":"none"}"#),
            b64(&rng.bytes_upto(100))
        ),
    }
}

fn garbage_request(rng: &mut Rng) -> FilterRequest {
    let method = rng.pick(&[
        "GET", "POST", "DELETE", "get", "PATCH", "G E T", "", "OPTIONS",
    ]);
    let path = match rng.below(4) {
        0 => "/api/v1/namespaces/default/pods".to_string(),
        1 => format!("/{}", rng.text_upto(300)),
        2 => rng.text_upto(50),
        _ => format!("/api/v1/namespaces/{}/secrets?watch=1", rng.text(10)),
    };
    let authority = rng.pick(&[
        "localhost:8443",
        "LOCALHOST",
        "evil.example",
        "",
        "localhost.",
    ]);
    let mut request = FilterRequest::new(method, &path, authority);
    for _ in 0..rng.below(8) {
        let name = rng.pick(&[
            "authorization",
            "Authorization",
            "cookie",
            "impersonate-user",
            "Impersonate-Group",
            "proxy-authorization",
            "x-junk",
        ]);
        let value = match rng.below(3) {
            0 => format!("Bearer {}", garbage_token(rng)),
            1 => format!("{}={}", hostile::SESSION_COOKIE, garbage_token(rng)),
            _ => rng.text_upto(100),
        };
        request = request.header(name, &value);
    }
    request
}

/// Runs `requests` through the plugin, `in_flight` at a time; returns the outcomes.
async fn run(
    plugin: &Arc<Plugin>,
    requests: Vec<FilterRequest>,
    in_flight: usize,
    deadline: Instant,
) -> Vec<FilterOutcome> {
    let mut outcomes = Vec::with_capacity(requests.len());
    let mut pending = requests.into_iter();
    let mut set = JoinSet::new();
    loop {
        while set.len() < in_flight {
            let Some(request) = pending.next() else { break };
            let plugin = plugin.clone();
            set.spawn(async move { plugin.handle(request).await });
        }
        let Some(done) = set.join_next().await else {
            break;
        };
        outcomes.push(done.expect("the request task"));
        assert!(
            Instant::now() < deadline,
            "the soak run exceeded {TIME_LIMIT:?}"
        );
    }
    outcomes
}

async fn memory(plugin: &Plugin) -> Vec<usize> {
    plugin
        .memory_sizes()
        .await
        .into_iter()
        .map(|size| size.expect("every VM is running (none was replaced after a trap)"))
        .collect()
}

fn assert_no_trap(plugin: &Plugin) {
    let traps: Vec<String> = plugin
        .logs()
        .into_iter()
        .map(|l| l.message)
        .filter(|m| m.contains("fail closed") || m.contains("trapped") || m.contains("panicked"))
        .collect();
    assert!(
        traps.is_empty(),
        "the filter trapped: {:?}",
        &traps[..traps.len().min(3)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_garbage_requests_never_trap_never_pass_and_leave_memory_flat() {
    let deadline = Instant::now() + TIME_LIMIT;
    let plugin = Arc::new(Plugin::load(common::spec(&hostile::config(), 2)).unwrap());
    let mut rng = Rng(0x6b75_6265_6761_7465);
    let requests: Vec<FilterRequest> = (0..GARBAGE_REQUESTS)
        .map(|_| garbage_request(&mut rng))
        .collect();
    let mut requests = requests.into_iter();

    let mut outcomes = run(
        &plugin,
        requests.by_ref().take(WARM_UP).collect(),
        IN_FLIGHT,
        deadline,
    )
    .await;
    let warm = memory(&plugin).await;
    outcomes.extend(run(&plugin, requests.collect(), IN_FLIGHT, deadline).await);
    let after = memory(&plugin).await;

    assert_eq!(outcomes.len(), GARBAGE_REQUESTS);
    let mut statuses = std::collections::BTreeMap::new();
    for outcome in &outcomes {
        match outcome {
            FilterOutcome::LocalReply { status, .. } => *statuses.entry(*status).or_insert(0) += 1,
            FilterOutcome::Forward { headers, .. } => panic!("garbage was forwarded: {headers:?}"),
            FilterOutcome::Failed { status, reason } => panic!("trap: {status} {reason}"),
        }
    }
    assert!(
        statuses.keys().all(|s| matches!(s, 401 | 403 | 404)),
        "{statuses:?}"
    );
    // Route (404), cluster, method/path and client-impersonation (403) refusals come before
    // token work; the generator still sends a good share of requests down the token path
    // (about 1 in 9 here).
    assert!(
        statuses.get(&401).copied().unwrap_or(0) > GARBAGE_REQUESTS / 12,
        "{statuses:?}"
    );
    let counted: u64 = ["unauthenticated", "forbidden", "not_found"]
        .iter()
        .map(|k| {
            plugin
                .metric(&format!("kubegate.requests.{k}"))
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(counted, GARBAGE_REQUESTS as u64);
    assert_eq!(plugin.metric("kubegate.requests.allowed"), Some(0));
    assert_no_trap(&plugin);

    // Nothing is cached for garbage; the allocator reuses what the warm-up took.
    for (vm, (w, a)) in warm.iter().zip(&after).enumerate() {
        eprintln!(
            "VM {vm}: {} KiB after warm-up, {} KiB after {GARBAGE_REQUESTS} requests",
            w / 1024,
            a / 1024
        );
        assert!(
            a - w <= MIB,
            "VM {vm} grew from {w} to {a} bytes on garbage"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_distinct_valid_tokens_stays_within_the_cache_bound() {
    const CACHE: usize = 1024; // the default jwt.cache_entries
    const FLOOD: usize = 4 * CACHE;
    let deadline = Instant::now() + TIME_LIMIT;
    let config = hostile::config();
    assert!(
        config.get("token_cache_entries").is_none(),
        "the default bound is tested"
    );
    // One VM, so every token lands in the same cache; requests one at a time, so the
    // cache's recency order is the sending order.
    let plugin = Arc::new(Plugin::load(common::spec(&config, 1)).unwrap());
    // Each entry holds about 1.5 KiB of claims: unbounded, the flood would take 6 MiB.
    let pad = "p".repeat(1024);
    let tokens: Vec<String> = (0..CACHE + FLOOD)
        .map(|i| {
            let mut claims = hostile::claims(&format!("user-{i}@example.com"), &["dev"], now());
            claims["pad"] = json!(pad);
            sign(&claims)
        })
        .collect();
    let request = |token: &String| {
        FilterRequest::new("GET", "/api/v1/namespaces/default/pods", "localhost:8443")
            .header("authorization", &format!("Bearer {token}"))
    };
    let forwarded = |outcomes: &[FilterOutcome]| {
        outcomes
            .iter()
            .filter(|o| matches!(o, FilterOutcome::Forward { .. }))
            .count()
    };

    let outcomes = run(
        &plugin,
        tokens[..CACHE].iter().map(request).collect(),
        1,
        deadline,
    )
    .await;
    assert_eq!(forwarded(&outcomes), CACHE);
    let full = memory(&plugin).await[0];
    let outcomes = run(
        &plugin,
        tokens[CACHE..].iter().map(request).collect(),
        1,
        deadline,
    )
    .await;
    assert_eq!(forwarded(&outcomes), FLOOD);
    let flooded = memory(&plugin).await[0];
    eprintln!(
        "VM memory: {} KiB with a full cache, {} KiB after {FLOOD} more distinct tokens",
        full / 1024,
        flooded / 1024
    );
    assert!(
        flooded - full <= MIB,
        "memory grew from {full} to {flooded} bytes: the cache is not bounded"
    );
    assert_eq!(
        plugin.metric("kubegate.jwt.cache_misses"),
        Some((CACHE + FLOOD) as u64)
    );
    assert_eq!(plugin.metric("kubegate.jwt.cache_hits"), Some(0));

    // The cache holds exactly the most recent `CACHE` tokens: they hit, an older one misses.
    let recent = &tokens[tokens.len() - CACHE..];
    let outcomes = run(&plugin, recent.iter().map(request).collect(), 1, deadline).await;
    assert_eq!(forwarded(&outcomes), CACHE);
    assert_eq!(plugin.metric("kubegate.jwt.cache_hits"), Some(CACHE as u64));
    let outcomes = run(&plugin, vec![request(&tokens[CACHE])], 1, deadline).await;
    assert_eq!(forwarded(&outcomes), 1);
    assert_eq!(
        plugin.metric("kubegate.jwt.cache_misses"),
        Some((CACHE + FLOOD + 1) as u64)
    );
    assert_no_trap(&plugin);
}
