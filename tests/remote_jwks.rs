//! Remote signing keys (`jwt.remote_jwks`) through the real kubegate.wasm in our host, with
//! a key server on 127.0.0.1: first load (requests wait), rotation, unknown-kid refetch and
//! its rate limit, slow and failing servers, staleness, several VMs sharing one fetch,
//! OpenID discovery, and the configuration's checks.
//!
//! Time that matters to the filter is a ManualClock moved by the tests; waits are bounded
//! polls for something observable (a counter, a log line, a request the server saw).

mod common;

use base64::Engine;
use common::jwks_server::{Behaviour, JwksServer};
use common::{wasm_path, SA_TOKEN};
use jwt_simple::prelude::*;
use kubegate::config::Config;
use kubegate_host::{ClusterSpec, FilterOutcome, FilterRequest, ManualClock, Plugin, PluginSpec};
use kubegate_testkit::tokens::{SessionClaims, Signer, DEV_AUDIENCE, DEV_ISSUER};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const JWKS_PATH: &str = "/keys.json";
const CLUSTER: &str = "idp";
const AUTHORITY: &str = "idp.example.com";

// ---- keys and tokens -------------------------------------------------------------------

/// A fresh ES256 key: its public JWK and a signer for its tokens.
struct TestKey {
    jwk: Value,
    signer: Signer,
}

fn test_key(kid: &str) -> TestKey {
    let pair = ES256KeyPair::generate();
    let point = pair.public_key().public_key().to_bytes_uncompressed();
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    TestKey {
        jwk: json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
                    "x": b64(&point[1..33]), "y": b64(&point[33..65])}),
        signer: Signer::from_pem(&pair.to_pem().unwrap(), kid).unwrap(),
    }
}

fn jwks(keys: &[&TestKey]) -> String {
    json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}).to_string()
}

fn serve(keys: &[&TestKey]) -> Behaviour {
    Behaviour::Serve(jwks(keys))
}

fn unix_seconds(clock: &ManualClock) -> u64 {
    clock.now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// A token valid for an hour from the clock's now (so it outlives refresh intervals).
fn token(key: &TestKey, clock: &ManualClock, email: &str) -> String {
    let mut claims = SessionClaims::dev(email, &["dev"], unix_seconds(clock));
    claims.expires_at = claims.issued_at + 3600;
    key.signer.sign(&claims).unwrap()
}

fn pods(token: &str) -> FilterRequest {
    FilterRequest::new("GET", "/api/v1/namespaces/default/pods", "k8s.example.com")
        .header("authorization", &format!("Bearer {token}"))
}

// ---- the plugin ----------------------------------------------------------------------

fn config(remote: Value) -> Value {
    json!({
        "routes": [{
            "policy": [{"allow": {"or": [{"domain": {"is": "example.com"}}]}}],
            "kubernetes_service_account_token_env": "KUBEGATE_SA_TOKEN"
        }],
        "jwt": {"issuer": DEV_ISSUER, "audiences": [DEV_AUDIENCE], "remote_jwks": remote},
        "identity": {"user_claim": "email", "groups_claim": "groups"}
    })
}

/// Path-mode remote keys on `CLUSTER`, short timeouts and a fast poll for tests.
fn remote(extra: Value) -> Value {
    let mut remote = json!({
        "cluster": CLUSTER, "authority": AUTHORITY, "path": JWKS_PATH,
        "refresh_seconds": 300, "timeout_ms": 1000, "max_stale_seconds": 3600,
        "refetch_min_interval_seconds": 30, "poll_interval_ms": 20
    });
    if let (Some(remote), Some(extra)) = (remote.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            remote.insert(k.clone(), v.clone());
        }
    }
    remote
}

struct Gate {
    plugin: Plugin,
    clock: ManualClock,
    server: JwksServer,
}

fn start_clock() -> ManualClock {
    ManualClock::new(SystemTime::now())
}

fn load(server: &JwksServer, config: &Value, vms: usize, clock: &ManualClock) -> Plugin {
    Plugin::load(PluginSpec {
        wasm_path: wasm_path(),
        configuration: config.to_string().into_bytes(),
        env: vec![("KUBEGATE_SA_TOKEN".to_string(), SA_TOKEN.to_string())],
        vms,
        clusters: HashMap::from([(CLUSTER.to_string(), ClusterSpec::http(server.addr))]),
        clock: Some(clock.clock()),
        print_logs: std::env::var_os("KUBEGATE_PRINT_LOGS").is_some(),
        ..PluginSpec::default()
    })
    .expect("kubegate.wasm loads")
}

async fn gate(behaviour: Behaviour, remote_extra: Value, vms: usize) -> Gate {
    let server = JwksServer::start(behaviour).await;
    let clock = start_clock();
    let plugin = load(&server, &config(remote(remote_extra)), vms, &clock);
    Gate {
        plugin,
        clock,
        server,
    }
}

impl Gate {
    fn metric(&self, name: &str) -> u64 {
        self.plugin.metric(name).unwrap_or(0)
    }

    fn logs(&self) -> Vec<String> {
        self.plugin.logs().into_iter().map(|l| l.message).collect()
    }

    /// Waits until every VM has put a key set with `kid` in use (its log says so).
    async fn keys_in_use_everywhere(&self, kid: &str) {
        let vms = self.plugin.vm_count();
        let needle = format!("signing keys in use now: [{kid:?}");
        eventually(&format!("all {vms} VMs use {kid}"), || {
            let logs = self.plugin.logs();
            (0..vms).all(|vm| {
                logs.iter()
                    .rev()
                    .find(|l| l.vm == vm && l.message.contains("signing keys in use now"))
                    .is_some_and(|l| l.message.contains(&needle))
            })
        })
        .await;
    }

    /// Moves the clock and waits until `fetches` fetches were answered.
    async fn advance_until_fetched(&self, by: Duration, fetches: u64) {
        self.clock.advance(by);
        eventually(&format!("{fetches} completed fetches"), || {
            self.completed_fetches() >= fetches
        })
        .await;
    }

    fn completed_fetches(&self) -> u64 {
        // Every completed fetch logs exactly one of these.
        self.logs()
            .iter()
            .filter(|l| {
                l.contains("signing keys fetched:") || l.contains("fetching signing keys from")
            })
            .count() as u64
    }
}

/// Polls `check` every 5 ms for up to 15 s: a bounded wait for an observable event.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn forwarded_user(outcome: &FilterOutcome) -> String {
    match outcome {
        FilterOutcome::Forward { headers, .. } => {
            assert!(headers
                .iter()
                .any(|(n, v)| n == "authorization" && v == &format!("Bearer {SA_TOKEN}")));
            headers
                .iter()
                .find(|(n, _)| n == "impersonate-user")
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        }
        other => panic!("expected the request to be forwarded, got {other:?}"),
    }
}

/// Status, reason and message of a local Kubernetes Status reply.
fn refused(outcome: &FilterOutcome) -> (u16, String, String) {
    match outcome {
        FilterOutcome::LocalReply { status, body, .. } => {
            let body: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(body["kind"], "Status");
            (
                *status,
                body["reason"].as_str().unwrap_or_default().to_string(),
                body["message"].as_str().unwrap_or_default().to_string(),
            )
        }
        other => panic!("expected a local reply, got {other:?}"),
    }
}

// ---- first load: pause and resume ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_before_the_first_key_set_waits_and_is_resumed_when_it_arrives() {
    let a = test_key("a");
    let g = gate(Behaviour::Hold(Box::new(serve(&[&a]))), json!({}), 1).await;
    eventually("the first fetch", || g.server.count(JWKS_PATH) == 1).await;
    let t = token(&a, &g.clock, "someone@example.com");
    let plugin = std::sync::Arc::new(g.plugin);
    let waiting = tokio::spawn({
        let plugin = plugin.clone();
        let t = t.clone();
        async move { plugin.handle(pods(&t)).await }
    });
    eventually("the request to wait", || {
        plugin.metric("kubegate.requests.waited_for_keys") == Some(1)
    })
    .await;
    assert!(
        !waiting.is_finished(),
        "nothing may answer before the keys arrive"
    );
    g.server.release();
    let outcome = waiting.await.unwrap();
    assert_eq!(forwarded_user(&outcome), "someone@example.com");
    // The fetch is a GET for the configured path and authority, asking for JSON.
    let seen = &g.server.seen()[0];
    assert_eq!(
        (
            seen.method.as_str(),
            seen.path.as_str(),
            seen.host.as_str(),
            seen.accept.as_str()
        ),
        ("GET", JWKS_PATH, AUTHORITY, "application/json")
    );
    assert_eq!(plugin.metric("kubegate.jwks.fetches"), Some(1));
    assert_eq!(plugin.metric("kubegate.jwks.keys"), Some(1));
    assert_eq!(plugin.metric("kubegate.requests.allowed"), Some(1));
    // Later requests need no wait and no fetch.
    assert_eq!(
        forwarded_user(&plugin.handle(pods(&t)).await),
        "someone@example.com"
    );
    assert_eq!(g.server.count(JWKS_PATH), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_that_need_no_key_are_answered_at_once_while_keys_load() {
    let a = test_key("a");
    let g = gate(Behaviour::Hold(Box::new(serve(&[&a]))), json!({}), 1).await;
    let no_token = FilterRequest::new("GET", "/api/v1/pods", "k8s.example.com");
    assert_eq!(refused(&g.plugin.handle(no_token).await).0, 401);
    let garbage = FilterRequest::new("GET", "/api/v1/pods", "k8s.example.com")
        .header("authorization", "Bearer not.a.jwt");
    assert_eq!(refused(&g.plugin.handle(garbage).await).0, 401);
    assert_eq!(g.metric("kubegate.requests.waited_for_keys"), 0);
    g.server.release();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_key_server_gets_waiting_requests_a_503_after_the_timeout_never_a_pass() {
    let a = test_key("a");
    let slow = Behaviour::Slow(Duration::from_secs(5), Box::new(serve(&[&a])));
    let g = gate(slow, json!({"timeout_ms": 300}), 1).await;
    let t = token(&a, &g.clock, "someone@example.com");
    let started = Instant::now();
    let (status, reason, message) = refused(&g.plugin.handle(pods(&t)).await);
    assert_eq!((status, reason.as_str()), (503, "ServiceUnavailable"));
    assert!(
        message.contains("signing keys are not available"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "answered by the call timeout"
    );
    assert_eq!(g.metric("kubegate.jwks.fetch_failures"), 1);
    assert_eq!(g.metric("kubegate.requests.unavailable"), 1);
    assert_eq!(g.metric("kubegate.requests.allowed"), 0);
    let logs = g.logs();
    assert!(
        logs.iter()
            .any(|l| l.contains("failed: HTTP status \"504\"")
                && l.contains("requests that need one are answered 503")),
        "{logs:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_waits_no_longer_than_the_timeout_by_the_proxys_clock() {
    let a = test_key("a");
    // The server never answers within the test; the proxy clock runs out first.
    let g = gate(
        Behaviour::Hold(Box::new(serve(&[&a]))),
        json!({"timeout_ms": 2000}),
        1,
    )
    .await;
    let t = token(&a, &g.clock, "someone@example.com");
    let plugin = std::sync::Arc::new(g.plugin);
    let waiting = tokio::spawn({
        let plugin = plugin.clone();
        async move { plugin.handle(pods(&t)).await }
    });
    eventually("the request to wait", || {
        plugin.metric("kubegate.requests.waited_for_keys") == Some(1)
    })
    .await;
    g.clock.advance(Duration::from_millis(2000));
    let (status, reason, _) = refused(&waiting.await.unwrap());
    assert_eq!((status, reason.as_str()), (503, "ServiceUnavailable"));
    g.server.release();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_requests_are_bounded_and_a_client_that_leaves_frees_its_place() {
    let a = test_key("a");
    let g = gate(Behaviour::Hold(Box::new(serve(&[&a]))), json!({}), 1).await;
    let t = token(&a, &g.clock, "someone@example.com");
    let plugin = std::sync::Arc::new(g.plugin);
    const CAPACITY: usize = 1024;
    let mut clients = Vec::new();
    for _ in 0..CAPACITY {
        let plugin = plugin.clone();
        let t = t.clone();
        clients.push(tokio::spawn(async move { plugin.handle(pods(&t)).await }));
    }
    eventually("every client to wait", || {
        plugin.metric("kubegate.requests.waited_for_keys") == Some(CAPACITY as u64)
    })
    .await;
    // One more is refused at once: the list is full.
    let (status, _, _) = refused(&plugin.handle(pods(&t)).await);
    assert_eq!(status, 503);
    // The clients go away (the host ends their streams: on_log, on_done, on_delete).
    for client in &clients {
        client.abort();
    }
    for client in clients {
        let _ = client.await;
    }
    // Their places are free again: a new request waits, and passes once the keys come.
    let next = tokio::spawn({
        let plugin = plugin.clone();
        let t = t.clone();
        async move { plugin.handle(pods(&t)).await }
    });
    eventually("the new request to wait", || {
        plugin.metric("kubegate.requests.waited_for_keys") == Some(CAPACITY as u64 + 1)
    })
    .await;
    g.server.release();
    assert_eq!(forwarded_user(&next.await.unwrap()), "someone@example.com");
}

// ---- rotation, refetch, failures ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_accepts_the_new_key_after_the_refresh_and_refuses_the_removed_one() {
    let (a, b) = (test_key("a"), test_key("b"));
    let g = gate(serve(&[&a]), json!({}), 1).await;
    g.keys_in_use_everywhere("a").await;
    let old = token(&a, &g.clock, "someone@example.com");
    assert_eq!(
        forwarded_user(&g.plugin.handle(pods(&old)).await),
        "someone@example.com"
    );
    // Cached now: a hit must not outlive the key.
    assert_eq!(
        forwarded_user(&g.plugin.handle(pods(&old)).await),
        "someone@example.com"
    );
    assert_eq!(g.metric("kubegate.jwt.cache_hits"), 1);

    g.server.set(serve(&[&b]));
    g.advance_until_fetched(Duration::from_secs(300), 2).await;
    g.keys_in_use_everywhere("b").await;
    assert_eq!(g.metric("kubegate.jwks.updates"), 2);
    let new = token(&b, &g.clock, "someone@example.com");
    assert_eq!(
        forwarded_user(&g.plugin.handle(pods(&new)).await),
        "someone@example.com"
    );

    // The removed key's token (the very string that was cached) is refused: after one
    // refetch for its unknown kid, still unknown.
    let (status, reason, message) = refused(&g.plugin.handle(pods(&old)).await);
    assert_eq!((status, reason.as_str()), (401, "Unauthorized"));
    assert!(message.contains("unknown key id \"a\""), "{message}");
    assert_eq!(g.server.count(JWKS_PATH), 3);
    assert_eq!(g.metric("kubegate.jwks.refetches"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_kid_triggers_one_refetch_and_refetches_are_rate_limited() {
    let (a, b, c) = (test_key("a"), test_key("b"), test_key("c"));
    let g = gate(serve(&[&a]), json!({"refetch_min_interval_seconds": 30}), 1).await;
    g.keys_in_use_everywhere("a").await;
    assert_eq!(g.server.count(JWKS_PATH), 1);

    // The IdP starts signing with b before our refresh: the request waits for a refetch.
    g.server.set(serve(&[&a, &b]));
    let with_b = token(&b, &g.clock, "someone@example.com");
    assert_eq!(
        forwarded_user(&g.plugin.handle(pods(&with_b)).await),
        "someone@example.com"
    );
    assert_eq!(g.server.count(JWKS_PATH), 2);
    assert_eq!(g.metric("kubegate.jwks.refetches"), 1);

    // c appears 29 s later: too soon for another refetch, refused at once, no fetch.
    g.server.set(serve(&[&a, &b, &c]));
    g.clock.advance(Duration::from_secs(29));
    let with_c = token(&c, &g.clock, "someone@example.com");
    let (status, _, message) = refused(&g.plugin.handle(pods(&with_c)).await);
    assert_eq!(status, 401);
    assert!(message.contains("unknown key id \"c\""), "{message}");
    // Tokens naming keys nobody has cannot make the gateway hammer the IdP either.
    for i in 0..20 {
        let stranger = test_key(&format!("stranger-{i}"));
        let t = token(&stranger, &g.clock, "someone@example.com");
        assert_eq!(refused(&g.plugin.handle(pods(&t)).await).0, 401);
    }
    assert_eq!(g.server.count(JWKS_PATH), 2);

    // Past the interval, c's request refetches and passes.
    g.clock.advance(Duration::from_secs(1));
    let with_c = token(&c, &g.clock, "someone@example.com");
    assert_eq!(
        forwarded_user(&g.plugin.handle(pods(&with_c)).await),
        "someone@example.com"
    );
    assert_eq!(g.server.count(JWKS_PATH), 3);
    assert_eq!(g.metric("kubegate.jwks.refetches"), 2);
    assert_eq!(g.metric("kubegate.jwks.fetch_failures"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_refreshes_keep_the_last_good_set_until_it_is_stale() {
    let a = test_key("a");
    let g = gate(
        serve(&[&a]),
        json!({"max_stale_seconds": 1800, "max_response_bytes": 2048}),
        1,
    )
    .await;
    g.keys_in_use_everywhere("a").await;
    let long_lived = {
        let mut claims = SessionClaims::dev("someone@example.com", &[], unix_seconds(&g.clock));
        claims.expires_at = claims.issued_at + 7200;
        a.signer.sign(&claims).unwrap()
    };
    assert_eq!(
        forwarded_user(&g.plugin.handle(pods(&long_lived)).await),
        "someone@example.com"
    );

    // Each kind of bad answer fails the refresh, is logged with its reason, and changes
    // nothing for requests.
    let bad_answers = [
        (Behaviour::Status(500, "{}".into()), "HTTP status \"500\""),
        (
            Behaviour::Status(200, "<html>maintenance</html>".into()),
            "not JSON",
        ),
        (
            Behaviour::Serve(json!({"keys": [a.jwk.clone()], "pad": "x".repeat(4096)}).to_string()),
            "over the 2048-byte limit",
        ),
        (Behaviour::Serve(r#"{"keys": []}"#.into()), "no usable key"),
    ];
    let mut elapsed = 0;
    for (failures, (behaviour, reason)) in (1..).zip(bad_answers) {
        g.server.set(behaviour);
        // Far enough for the refresh or the backoff to be due.
        g.clock.advance(Duration::from_secs(300));
        elapsed += 300;
        eventually(reason, || {
            g.metric("kubegate.jwks.fetch_failures") == failures
        })
        .await;
        assert!(
            g.logs()
                .iter()
                .any(|l| l.contains(reason) && l.contains("stays in use")),
            "{reason}"
        );
        let t = token(&a, &g.clock, "someone@example.com");
        assert_eq!(
            forwarded_user(&g.plugin.handle(pods(&t)).await),
            "someone@example.com"
        );
        assert_eq!(g.metric("kubegate.jwks.age_seconds"), elapsed);
    }

    // 1800 s after the last success the set is stale: its keys stop working, and with no
    // usable set a request that needs one is a 503 (after one more failed try).
    g.server.set(Behaviour::Status(503, "{}".into()));
    g.clock.advance(Duration::from_secs(1800 - elapsed));
    eventually("the stale set to be dropped", || {
        g.logs().iter().any(|l| l.contains("no longer accepted"))
    })
    .await;
    let (status, reason, _) = refused(&g.plugin.handle(pods(&long_lived)).await);
    assert_eq!((status, reason.as_str()), (503, "ServiceUnavailable"));

    // The IdP is back: the next fetch restores the keys.
    g.server.set(serve(&[&a]));
    g.clock.advance(Duration::from_secs(300));
    g.keys_in_use_everywhere("a").await;
    assert_eq!(
        forwarded_user(&g.plugin.handle(pods(&long_lived)).await),
        "someone@example.com"
    );
}

// ---- several VMs -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_vms_share_one_fetch_per_interval() {
    const VMS: usize = 4;
    const INTERVALS: usize = 3;
    let keys: Vec<TestKey> = (0..=INTERVALS)
        .map(|i| test_key(&format!("k{i}")))
        .collect();
    let g = gate(serve(&[&keys[0]]), json!({}), VMS).await;
    g.keys_in_use_everywhere("k0").await;
    assert_eq!(g.server.count(JWKS_PATH), 1, "{VMS} VMs, one fetch");
    for (i, key) in keys.iter().enumerate().skip(1) {
        g.server.set(serve(&[key]));
        g.clock.advance(Duration::from_secs(300));
        g.keys_in_use_everywhere(&format!("k{i}")).await;
        assert_eq!(
            g.server.count(JWKS_PATH),
            1 + i,
            "interval {i}: one fetch for {VMS} VMs"
        );
        // Every VM verifies with the new key without fetching on its own.
        for vm in 0..VMS {
            let t = token(key, &g.clock, "someone@example.com");
            let mut stream = g.plugin.open_stream_on(vm, Default::default());
            let headers = kubegate_host::HeaderMap::from_pairs(
                pods(&t)
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_bytes())),
            );
            match stream.request_headers(headers, true).await {
                kubegate_host::HeadersVerdict::Continue(_) => {}
                _ => panic!("VM {vm} refused a token of the current key"),
            }
        }
    }
    assert_eq!(g.server.count(JWKS_PATH), 1 + INTERVALS);
    assert_eq!(g.metric("kubegate.jwks.fetches"), 1 + INTERVALS as u64);
    // The fetches were spread over whichever VM's tick came first; only lease holders log them.
    let fetchers = g
        .plugin
        .logs()
        .into_iter()
        .filter(|l| l.message.contains("fetching signing keys (scheduled)"))
        .count();
    assert_eq!(fetchers, 1 + INTERVALS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refetch_on_one_vm_serves_the_others() {
    let (a, b) = (test_key("a"), test_key("b"));
    let g = gate(serve(&[&a]), json!({}), 3).await;
    g.keys_in_use_everywhere("a").await;
    g.server.set(serve(&[&a, &b]));
    let t = token(&b, &g.clock, "someone@example.com");
    // Three requests with the new kid at once, one per VM: one refetch between them.
    let plugin = std::sync::Arc::new(g.plugin);
    let mut requests = Vec::new();
    for vm in 0..3 {
        let plugin = plugin.clone();
        let t = t.clone();
        requests.push(tokio::spawn(async move {
            let mut stream = plugin.open_stream_on(vm, Default::default());
            let headers = kubegate_host::HeaderMap::from_pairs(
                pods(&t)
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_bytes())),
            );
            matches!(
                stream.request_headers(headers, true).await,
                kubegate_host::HeadersVerdict::Continue(_)
            )
        }));
    }
    for request in requests {
        assert!(
            request.await.unwrap(),
            "a request with the new kid was refused"
        );
    }
    assert_eq!(g.server.count(JWKS_PATH), 2);
    assert_eq!(plugin.metric("kubegate.jwks.refetches"), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconfigured_plugin_adopts_the_published_set_without_fetching_or_waiting() {
    let a = test_key("a");
    let g = gate(serve(&[&a]), json!({}), 2).await;
    g.keys_in_use_everywhere("a").await;
    // New VMs with another policy (and the same key source) find the set in shared data.
    let mut next = config(remote(json!({})));
    next["routes"][0]["policy"] =
        json!([{"allow": {"or": [{"email": {"is": "other@example.com"}}]}}]);
    g.plugin.reconfigure(next.to_string()).unwrap();
    let t = token(&a, &g.clock, "other@example.com");
    assert_eq!(
        forwarded_user(&g.plugin.handle(pods(&t)).await),
        "other@example.com"
    );
    assert_eq!(g.metric("kubegate.requests.waited_for_keys"), 0);
    assert_eq!(g.server.count(JWKS_PATH), 1);
}

// ---- OpenID discovery ----------------------------------------------------------------------

const ISSUER_URL: &str = "https://idp.example.com/realms/k8s";
const DISCOVERY_PATH: &str = "/realms/k8s/.well-known/openid-configuration";

fn oidc_remote() -> Value {
    json!({"cluster": CLUSTER, "oidc_issuer": ISSUER_URL, "timeout_ms": 1000, "poll_interval_ms": 20})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_discovery_finds_the_key_set_on_the_same_authority() {
    let a = test_key("a");
    let server = JwksServer::start(serve(&[&a])).await;
    server.serve_discovery(
        DISCOVERY_PATH,
        &json!({"issuer": ISSUER_URL, "jwks_uri": "https://idp.example.com/realms/k8s/certs"}),
    );
    let clock = start_clock();
    let plugin = load(&server, &config(oidc_remote()), 1, &clock);
    let t = token(&a, &clock, "someone@example.com");
    assert_eq!(
        forwarded_user(&plugin.handle(pods(&t)).await),
        "someone@example.com"
    );
    assert_eq!(server.count(DISCOVERY_PATH), 1);
    assert_eq!(server.count("/realms/k8s/certs"), 1);
    assert!(server.seen().iter().all(|s| s.host == AUTHORITY));
    // A refresh reuses the discovered path.
    clock.advance(Duration::from_secs(300));
    eventually("the refresh", || server.count("/realms/k8s/certs") == 2).await;
    assert_eq!(server.count(DISCOVERY_PATH), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_discovery_pointing_elsewhere_is_refused_with_the_reason() {
    let a = test_key("a");
    let server = JwksServer::start(serve(&[&a])).await;
    server.serve_discovery(
        DISCOVERY_PATH,
        &json!({"issuer": ISSUER_URL, "jwks_uri": "https://keys.attacker.example/certs"}),
    );
    let clock = start_clock();
    let plugin = load(&server, &config(oidc_remote()), 1, &clock);
    let t = token(&a, &clock, "someone@example.com");
    assert_eq!(refused(&plugin.handle(pods(&t)).await).0, 503);
    assert_eq!(
        server.count("/certs"),
        0,
        "the other host's keys are never fetched"
    );
    let logs: Vec<String> = plugin.logs().into_iter().map(|l| l.message).collect();
    assert!(
        logs.iter()
            .any(|l| l.contains("OpenID discovery") && l.contains("is not on")),
        "{logs:#?}"
    );
}

// ---- examples and configuration ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remote_jwks_example_works_through_the_module() {
    let example = common::example_config("remote-jwks.json");
    let remote = &example["jwt"]["remote_jwks"];
    let issuer = remote["oidc_issuer"].as_str().unwrap();
    let cluster = remote["cluster"].as_str().unwrap();
    let key = test_key("idp-key-1");
    let server = JwksServer::start(serve(&[&key])).await;
    let (_, discovery_path) = kubegate::jwks::discovery::discovery_location(issuer).unwrap();
    server.serve_discovery(
        &discovery_path,
        &json!({"issuer": issuer, "jwks_uri": format!("{issuer}/protocol/openid-connect/certs")}),
    );
    let clock = start_clock();
    let plugin = Plugin::load(PluginSpec {
        wasm_path: wasm_path(),
        configuration: example.to_string().into_bytes(),
        env: vec![("KUBEGATE_SA_TOKEN".to_string(), SA_TOKEN.to_string())],
        vms: 2,
        clusters: HashMap::from([(cluster.to_string(), ClusterSpec::http(server.addr))]),
        clock: Some(clock.clock()),
        print_logs: false,
        ..PluginSpec::default()
    })
    .unwrap();
    let mut claims =
        SessionClaims::dev("someone@example.com", &["k8s-users"], unix_seconds(&clock));
    claims.issuer = example["jwt"]["issuer"].as_str().unwrap().to_string();
    claims.audience = example["jwt"]["audiences"][0].as_str().unwrap().to_string();
    let t = key.signer.sign(&claims).unwrap();
    let host = example["routes"][0]["from"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://");
    let request =
        FilterRequest::new("GET", "/api", host).header("authorization", &format!("Bearer {t}"));
    let outcome = plugin.handle(request).await;
    assert!(
        matches!(outcome, FilterOutcome::Forward { .. }),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pomerium_example_fetches_pomeriums_jwks() {
    let example = common::example_config("pomerium.json");
    let remote = &example["jwt"]["remote_jwks"];
    assert_eq!(remote["path"], "/.well-known/pomerium/jwks.json");
    let key = test_key("pomerium-1");
    let server = JwksServer::start(serve(&[&key])).await;
    let clock = start_clock();
    let plugin = Plugin::load(PluginSpec {
        wasm_path: wasm_path(),
        configuration: example.to_string().into_bytes(),
        env: vec![("KUBEGATE_SA_TOKEN".to_string(), SA_TOKEN.to_string())],
        vms: 2,
        clusters: HashMap::from([(
            remote["cluster"].as_str().unwrap().to_string(),
            ClusterSpec::http(server.addr),
        )]),
        clock: Some(clock.clock()),
        print_logs: false,
        ..PluginSpec::default()
    })
    .unwrap();
    let mut claims = SessionClaims::dev("someone@pomerium.com", &[], unix_seconds(&clock));
    claims.issuer = example["jwt"]["issuer"].as_str().unwrap().to_string();
    claims.audience = example["jwt"]["audiences"][0].as_str().unwrap().to_string();
    let t = key.signer.sign(&claims).unwrap();
    let request = FilterRequest::new("GET", "/api", "k8s.localhost.pomerium.io")
        .header("authorization", &format!("Bearer Pomerium-{t}"));
    assert_eq!(
        forwarded_user(&plugin.handle(request).await),
        "someone@pomerium.com"
    );
    let seen = &server.seen()[0];
    assert_eq!(seen.host, remote["authority"].as_str().unwrap());
}

fn env(name: &str) -> Option<String> {
    (name == "KUBEGATE_SA_TOKEN").then(|| "sa-token-123".to_string())
}

fn parse(remote: Value) -> Result<Config, String> {
    Config::parse(config(remote).to_string().as_bytes(), &env).map_err(|e| e.to_string())
}

#[test]
fn a_configuration_with_only_remote_keys_is_valid_with_defaults() {
    let config =
        parse(json!({"cluster": "idp", "authority": "idp.example.com", "path": "/jwks"})).unwrap();
    assert!(config.keys.is_empty());
    let remote = config.remote_jwks.unwrap();
    assert_eq!(
        (
            remote.refresh_seconds,
            remote.timeout_ms,
            remote.max_stale_seconds,
            remote.refetch_min_interval_seconds,
            remote.max_response_bytes,
            remote.poll_interval_ms
        ),
        (300, 5000, 86_400, 30, 262_144, 1000)
    );
    // Without any key source the configuration is refused.
    let mut none = config_value_without_remote();
    none["jwt"].as_object_mut().unwrap().remove("remote_jwks");
    let e = Config::parse(none.to_string().as_bytes(), &env)
        .unwrap_err()
        .to_string();
    assert!(e.contains("remote_jwks"), "{e}");
}

fn config_value_without_remote() -> Value {
    config(json!(null))
}

#[test]
fn the_envoy_and_istio_examples_remote_jwks_parse() {
    // As envoy-examples/envoy/in-cluster.yaml and istio/wasmplugin.yaml write it.
    for cluster in [
        "pomerium_jwks",
        "outbound|443||authenticate.localhost.pomerium.io",
    ] {
        let remote = parse(json!({
            "cluster": cluster,
            "authority": "authenticate.localhost.pomerium.io",
            "path": "/.well-known/pomerium/jwks.json",
            "refresh_seconds": 300,
            "timeout_ms": 5000
        }))
        .unwrap()
        .remote_jwks
        .unwrap();
        assert_eq!(remote.cluster, cluster);
    }
}

#[test]
fn inline_and_remote_keys_combine() {
    let mut value =
        config(json!({"cluster": "idp", "authority": "idp.example.com", "path": "/jwks"}));
    value["jwt"]["jwks"] = common::example_config("dev.json")["jwt"]["jwks"].clone();
    let config = Config::parse(value.to_string().as_bytes(), &env).unwrap();
    assert_eq!(config.keys.len(), 1);
    assert!(config.remote_jwks.is_some());
}

#[test]
fn remote_jwks_mistakes_are_refused_naming_the_field() {
    let base = json!({"cluster": "idp", "authority": "idp.example.com", "path": "/jwks"});
    let with = |field: &str, value: Value| {
        let mut remote = base.clone();
        remote[field] = value;
        remote
    };
    let without = |field: &str| {
        let mut remote = base.clone();
        remote.as_object_mut().unwrap().remove(field);
        remote
    };
    let cases = [
        (
            with("refresh_secs", json!(60)),
            "jwt.remote_jwks.refresh_secs: unknown field",
        ),
        (
            without("cluster"),
            "jwt.remote_jwks: missing field `cluster`",
        ),
        (with("cluster", json!("")), "jwt.remote_jwks.cluster:"),
        (
            without("authority"),
            "jwt.remote_jwks.authority: required with path",
        ),
        (
            with("authority", json!("https://idp.example.com")),
            "jwt.remote_jwks.authority:",
        ),
        (with("path", json!("jwks")), "jwt.remote_jwks.path:"),
        (without("path"), "set exactly one of path"),
        (
            with("oidc_issuer", json!("https://idp.example.com")),
            "set exactly one of path",
        ),
        (
            with("refresh_seconds", json!(1)),
            "jwt.remote_jwks.refresh_seconds: must be between 10",
        ),
        (
            with("timeout_ms", json!(0)),
            "jwt.remote_jwks.timeout_ms: must be between",
        ),
        (
            json!({"cluster": "idp", "authority": "idp.example.com", "path": "/jwks",
                   "refresh_seconds": 10, "timeout_ms": 10_000}),
            "jwt.remote_jwks.timeout_ms: must be shorter than refresh_seconds",
        ),
        (
            with("max_stale_seconds", json!(100)),
            "jwt.remote_jwks.max_stale_seconds: must be between 300",
        ),
        (
            with("refetch_min_interval_seconds", json!(0)),
            "jwt.remote_jwks.refetch_min_interval_seconds",
        ),
        (
            with("max_response_bytes", json!(10)),
            "jwt.remote_jwks.max_response_bytes",
        ),
        (
            with("poll_interval_ms", json!(1)),
            "jwt.remote_jwks.poll_interval_ms",
        ),
        (
            with("timeout_ms", json!("5s")),
            "jwt.remote_jwks.timeout_ms: invalid type",
        ),
    ];
    for (remote, expected) in cases {
        let e = parse(remote.clone()).unwrap_err();
        assert!(e.contains(expected), "{remote}: {e}");
    }
    let oidc = |issuer: &str, authority: Option<&str>| {
        let mut remote = json!({"cluster": "idp", "oidc_issuer": issuer});
        if let Some(a) = authority {
            remote["authority"] = json!(a);
        }
        parse(remote)
    };
    let ok = oidc("https://idp.example.com/realms/k8s", None).unwrap();
    assert_eq!(ok.remote_jwks.unwrap().authority, "idp.example.com");
    assert!(oidc("http://idp.example.com", None)
        .unwrap_err()
        .contains("jwt.remote_jwks.oidc_issuer: not an https URL"));
    assert!(oidc("https://idp.example.com", Some("idp.example.com"))
        .unwrap_err()
        .contains("jwt.remote_jwks.authority"));
}
