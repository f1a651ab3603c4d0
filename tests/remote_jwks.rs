//! Remote signing keys (`jwt[].keys.remote`) through the real kubegate.wasm in our host,
//! with key servers on 127.0.0.1: first load (requests wait), rotation, unknown-kid
//! refetch and its rate limit, slow and failing servers, staleness, several VMs sharing
//! one fetch, OpenID discovery (from the issuer URL or issuer.discoveryURL), several
//! authenticators each with its own remote set, and the configuration's checks.
//!
//! Time that matters to the filter is a ManualClock moved by the tests; waits are bounded
//! polls for something observable (a counter, a log line, a request the server saw).

mod common;

use base64::Engine;
use common::jwks_server::{Behaviour, JwksServer};
use common::{wasm_path, SA_TOKEN};
use jwt_simple::prelude::*;
use kubegate::config::Config;
use kubegate::jwks::{KeySource, RemoteJwksSettings};
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
    token_of(DEV_ISSUER, key, clock, email)
}

/// `token` with another `iss`.
fn token_of(issuer: &str, key: &TestKey, clock: &ManualClock, email: &str) -> String {
    let mut claims = SessionClaims::dev(email, &["dev"], unix_seconds(clock));
    claims.issuer = issuer.to_string();
    claims.expires_at = claims.issued_at + 3600;
    key.signer.sign(&claims).unwrap()
}

fn pods(token: &str) -> FilterRequest {
    FilterRequest::new("GET", "/api/v1/namespaces/default/pods", "k8s.example.com")
        .header("authorization", &format!("Bearer {token}"))
}

// ---- the plugin ----------------------------------------------------------------------

/// One JWT authenticator for `issuer` whose keys are `remote` alone.
fn authenticator(issuer: &str, remote: Value) -> Value {
    json!({
        "issuer": {"url": issuer, "audiences": [DEV_AUDIENCE]},
        "claimMappings": {
            "username": {"claim": "email", "prefix": ""},
            "groups": {"claim": "groups", "prefix": ""}
        },
        "keys": {"remote": remote}
    })
}

/// The gateway's configuration with these authenticators.
fn config_with(authenticators: Vec<Value>) -> Value {
    json!({
        "routes": [{
            "policy": [{"allow": {"or": [{"domain": {"is": "example.com"}}]}}],
            "kubernetes_service_account_token_env": "KUBEGATE_SA_TOKEN"
        }],
        "jwt": authenticators
    })
}

/// One authenticator, for `DEV_ISSUER`, with remote keys.
fn config(remote: Value) -> Value {
    config_with(vec![authenticator(DEV_ISSUER, remote)])
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
    load_clusters(&[(CLUSTER, server)], config, vms, clock)
}

/// The plugin with one Envoy cluster per (name, key server).
fn load_clusters(
    clusters: &[(&str, &JwksServer)],
    config: &Value,
    vms: usize,
    clock: &ManualClock,
) -> Plugin {
    Plugin::load(PluginSpec {
        wasm_path: wasm_path(),
        configuration: config.to_string().into_bytes(),
        env: vec![("KUBEGATE_SA_TOKEN".to_string(), SA_TOKEN.to_string())],
        vms,
        clusters: clusters
            .iter()
            .map(|(name, server)| (name.to_string(), ClusterSpec::http(server.addr)))
            .collect::<HashMap<_, _>>(),
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
        keys_in_use_everywhere(&self.plugin, DEV_ISSUER, kid).await;
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

/// Waits until every VM has put a key set starting with `kid` in use for `issuer`.
async fn keys_in_use_everywhere(plugin: &Plugin, issuer: &str, kid: &str) {
    let vms = plugin.vm_count();
    let needle = format!("signing keys in use now: [{kid:?}");
    let of_issuer = format!("for issuer {issuer:?}");
    eventually(&format!("all {vms} VMs use {kid} for {issuer}"), || {
        let logs = plugin.logs();
        (0..vms).all(|vm| {
            logs.iter()
                .rev()
                .find(|l| {
                    l.vm == vm
                        && l.message.contains("signing keys in use now")
                        && l.message.contains(&of_issuer)
                })
                .is_some_and(|l| l.message.contains(&needle))
        })
    })
    .await;
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

// ---- several authenticators, each with its own remote set -------------------------------------

/// Issuer A is `DEV_ISSUER` with keys from cluster `idp-a`; issuer B another IdP with keys
/// from cluster `idp-b`, each its own key server.
const ISSUER_B: &str = "https://other-idp.example.com";
const CLUSTER_A: &str = "idp-a";
const CLUSTER_B: &str = "idp-b";
const AUTHORITY_B: &str = "other-idp.example.com";

struct TwoIdps {
    plugin: Plugin,
    clock: ManualClock,
    a: JwksServer,
    b: JwksServer,
}

async fn two_idps(a: Behaviour, b: Behaviour, vms: usize) -> TwoIdps {
    let (a, b) = (JwksServer::start(a).await, JwksServer::start(b).await);
    let clock = start_clock();
    let mut remote_a = remote(json!({}));
    remote_a["cluster"] = json!(CLUSTER_A);
    let mut remote_b = remote(json!({}));
    remote_b["cluster"] = json!(CLUSTER_B);
    remote_b["authority"] = json!(AUTHORITY_B);
    let mut entry_a = authenticator(DEV_ISSUER, remote_a);
    // A field the API server has and kubegate does not use: a note at load.
    entry_a["issuer"]["certificateAuthority"] = json!("-----BEGIN CERTIFICATE-----");
    let config = config_with(vec![entry_a, authenticator(ISSUER_B, remote_b)]);
    let plugin = load_clusters(&[(CLUSTER_A, &a), (CLUSTER_B, &b)], &config, vms, &clock);
    TwoIdps {
        plugin,
        clock,
        a,
        b,
    }
}

impl TwoIdps {
    fn metric_sum(&self, name: &str) -> u64 {
        self.plugin.metric(name).unwrap_or(0)
    }

    async fn both_in_use(&self, kid_a: &str, kid_b: &str) {
        keys_in_use_everywhere(&self.plugin, DEV_ISSUER, kid_a).await;
        keys_in_use_everywhere(&self.plugin, ISSUER_B, kid_b).await;
    }

    /// Requests each key server saw for the JWKS path.
    fn fetches(&self) -> (usize, usize) {
        (self.a.count(JWKS_PATH), self.b.count(JWKS_PATH))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_of_one_issuers_set_never_verifies_a_token_of_another() {
    let (a1, b1) = (test_key("a1"), test_key("b1"));
    let g = two_idps(serve(&[&a1]), serve(&[&b1]), 2).await;
    g.both_in_use("a1", "b1").await;
    assert_eq!(g.fetches(), (1, 1));
    // The load-time line lists both authenticators; unused fields are noted.
    let logs: Vec<String> = g.plugin.logs().into_iter().map(|l| l.message).collect();
    assert!(
        logs.iter().any(|l| l.contains("2 authenticator(s)")
            && l.contains(&format!("issuer {DEV_ISSUER:?}: 0 inline verification key(s), remote keys from cluster \"idp-a\" ({AUTHORITY}), refreshed every 300 s"))
            && l.contains(&format!("issuer {ISSUER_B:?}: 0 inline verification key(s), remote keys from cluster \"idp-b\" ({AUTHORITY_B})"))),
        "{logs:#?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("note: jwt[0].issuer.certificateAuthority is not used")),
        "{logs:#?}"
    );

    // Each issuer's own key passes.
    let a_by_a = token_of(DEV_ISSUER, &a1, &g.clock, "alice@example.com");
    let b_by_b = token_of(ISSUER_B, &b1, &g.clock, "bob@example.com");
    assert_eq!(
        forwarded_user(&g.plugin.handle(pods(&a_by_a)).await),
        "alice@example.com"
    );
    assert_eq!(
        forwarded_user(&g.plugin.handle(pods(&b_by_b)).await),
        "bob@example.com"
    );

    // A token of issuer A signed with B's key: B's set is in use, but only A's set is
    // asked (one refetch, of A), and the key stays unknown to A.
    let a_by_b = token_of(DEV_ISSUER, &b1, &g.clock, "mallory@example.com");
    let (status, _, message) = refused(&g.plugin.handle(pods(&a_by_b)).await);
    assert_eq!(status, 401);
    assert!(message.contains("unknown key id \"b1\""), "{message}");
    assert_eq!(g.fetches(), (2, 1), "A's set refetched, B's not");
    // And the other way round: B's refetch allowance is its own.
    let b_by_a = token_of(ISSUER_B, &a1, &g.clock, "mallory@example.com");
    let (status, _, message) = refused(&g.plugin.handle(pods(&b_by_a)).await);
    assert_eq!(status, 401);
    assert!(message.contains("unknown key id \"a1\""), "{message}");
    assert_eq!(g.fetches(), (2, 2), "B's set refetched, A's not");
    assert_eq!(g.metric_sum("kubegate.jwks.refetches"), 2);
    assert_eq!(g.plugin.metric("kubegate.requests.allowed"), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_kid_in_two_sets_is_two_different_keys() {
    // Both IdPs name their key "k1"; a token of A signed with B's "k1" is a forgery for A.
    let (a_k1, b_k1) = (test_key("k1"), test_key("k1"));
    let g = two_idps(serve(&[&a_k1]), serve(&[&b_k1]), 1).await;
    g.both_in_use("k1", "k1").await;
    let forged = token_of(DEV_ISSUER, &b_k1, &g.clock, "mallory@example.com");
    let (status, _, message) = refused(&g.plugin.handle(pods(&forged)).await);
    assert_eq!(status, 401);
    assert!(!message.contains("unknown key id"), "{message}");
    let forged = token_of(ISSUER_B, &a_k1, &g.clock, "mallory@example.com");
    assert_eq!(refused(&g.plugin.handle(pods(&forged)).await).0, 401);
    // A known kid with a bad signature is not a reason to fetch.
    assert_eq!(g.fetches(), (1, 1));
    let genuine = token_of(ISSUER_B, &b_k1, &g.clock, "bob@example.com");
    assert_eq!(
        forwarded_user(&g.plugin.handle(pods(&genuine)).await),
        "bob@example.com"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_kid_refetches_only_its_issuers_set() {
    let (a1, a2, a3) = (test_key("a1"), test_key("a2"), test_key("a3"));
    let (b1, b2) = (test_key("b1"), test_key("b2"));
    let g = two_idps(serve(&[&a1]), serve(&[&b1]), 2).await;
    g.both_in_use("a1", "b1").await;

    // A rotates in a2: a token with it refetches A's set, waits, passes.
    g.a.set(serve(&[&a1, &a2]));
    g.b.set(serve(&[&b1, &b2]));
    let with_a2 = token_of(DEV_ISSUER, &a2, &g.clock, "alice@example.com");
    assert_eq!(
        forwarded_user(&g.plugin.handle(pods(&with_a2)).await),
        "alice@example.com"
    );
    assert_eq!(g.fetches(), (2, 1));
    // B's set was not fetched, so B's new key is not known yet...
    keys_in_use_everywhere(&g.plugin, ISSUER_B, "b1").await;
    // ...until a token of B names it: B's refetch is not limited by A's just before.
    let with_b2 = token_of(ISSUER_B, &b2, &g.clock, "bob@example.com");
    assert_eq!(
        forwarded_user(&g.plugin.handle(pods(&with_b2)).await),
        "bob@example.com"
    );
    assert_eq!(g.fetches(), (2, 2));

    // A's rate limit holds for A: a3 within the interval is refused with no fetch.
    g.a.set(serve(&[&a1, &a2, &a3]));
    g.clock.advance(Duration::from_secs(10));
    let with_a3 = token_of(DEV_ISSUER, &a3, &g.clock, "alice@example.com");
    let (status, _, message) = refused(&g.plugin.handle(pods(&with_a3)).await);
    assert_eq!(status, 401);
    assert!(message.contains("unknown key id \"a3\""), "{message}");
    assert_eq!(g.fetches(), (2, 2));
    // Past it, A's set is fetched again, and still B's is not.
    g.clock.advance(Duration::from_secs(20));
    let with_a3 = token_of(DEV_ISSUER, &a3, &g.clock, "alice@example.com");
    assert_eq!(
        forwarded_user(&g.plugin.handle(pods(&with_a3)).await),
        "alice@example.com"
    );
    assert_eq!(g.fetches(), (3, 2));
    assert_eq!(g.metric_sum("kubegate.jwks.refetches"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_request_waits_for_its_issuers_set_only() {
    let (a1, b1, b2) = (test_key("a1"), test_key("b1"), test_key("b2"));
    // A's key server holds its first answer; B's answers at once.
    let g = two_idps(Behaviour::Hold(Box::new(serve(&[&a1]))), serve(&[&b1]), 1).await;
    keys_in_use_everywhere(&g.plugin, ISSUER_B, "b1").await;
    eventually("A's first fetch", || g.a.count(JWKS_PATH) == 1).await;

    // B's tokens do not wait for A's keys.
    let with_b1 = token_of(ISSUER_B, &b1, &g.clock, "bob@example.com");
    assert_eq!(
        forwarded_user(&g.plugin.handle(pods(&with_b1)).await),
        "bob@example.com"
    );
    assert_eq!(
        g.plugin.metric("kubegate.requests.waited_for_keys"),
        Some(0)
    );

    // A's token waits...
    let plugin = std::sync::Arc::new(g.plugin);
    let with_a1 = token_of(DEV_ISSUER, &a1, &g.clock, "alice@example.com");
    let waiting = tokio::spawn({
        let plugin = plugin.clone();
        async move { plugin.handle(pods(&with_a1)).await }
    });
    eventually("A's request to wait", || {
        plugin.metric("kubegate.requests.waited_for_keys") == Some(1)
    })
    .await;
    // ...and a fetch of B's set (a B token with a new kid, which itself waits and
    // passes) does not release it.
    g.b.set(serve(&[&b1, &b2]));
    let with_b2 = token_of(ISSUER_B, &b2, &g.clock, "bob@example.com");
    assert_eq!(
        forwarded_user(&plugin.handle(pods(&with_b2)).await),
        "bob@example.com"
    );
    assert_eq!(g.b.count(JWKS_PATH), 2);
    assert_eq!(plugin.metric("kubegate.requests.waited_for_keys"), Some(2));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiting.is_finished(),
        "A's request is answered only by A's set"
    );

    // A's set arrives: the request is resumed and passes.
    g.a.release();
    assert_eq!(forwarded_user(&waiting.await.unwrap()), "alice@example.com");
    assert_eq!(g.a.count(JWKS_PATH), 1);
    assert_eq!(plugin.metric("kubegate.requests.unavailable"), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_issuers_missing_set_is_a_503_for_its_tokens_only() {
    let (a1, b1) = (test_key("a1"), test_key("b1"));
    let g = two_idps(Behaviour::Status(503, "{}".into()), serve(&[&b1]), 1).await;
    keys_in_use_everywhere(&g.plugin, ISSUER_B, "b1").await;
    eventually("A's fetch to fail", || {
        g.plugin.metric("kubegate.jwks.fetch_failures") >= Some(1)
    })
    .await;
    let with_a1 = token_of(DEV_ISSUER, &a1, &g.clock, "alice@example.com");
    let (status, reason, _) = refused(&g.plugin.handle(pods(&with_a1)).await);
    assert_eq!((status, reason.as_str()), (503, "ServiceUnavailable"));
    let with_b1 = token_of(ISSUER_B, &b1, &g.clock, "bob@example.com");
    assert_eq!(
        forwarded_user(&g.plugin.handle(pods(&with_b1)).await),
        "bob@example.com"
    );
    let logs: Vec<String> = g.plugin.logs().into_iter().map(|l| l.message).collect();
    assert!(
        logs.iter()
            .any(|l| l.contains(&format!("for issuer {DEV_ISSUER:?} failed"))
                && l.contains("no remote key set is in use for this issuer")),
        "{logs:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_authenticators_with_the_same_source_share_one_fetch_each_with_its_keys() {
    let shared = test_key("shared");
    let server = JwksServer::start(serve(&[&shared])).await;
    let clock = start_clock();
    let config = config_with(vec![
        authenticator(DEV_ISSUER, remote(json!({}))),
        authenticator(ISSUER_B, remote(json!({}))),
    ]);
    let plugin = load(&server, &config, 2, &clock);
    keys_in_use_everywhere(&plugin, DEV_ISSUER, "shared").await;
    keys_in_use_everywhere(&plugin, ISSUER_B, "shared").await;
    assert_eq!(server.count(JWKS_PATH), 1, "one fetch for both");
    for issuer in [DEV_ISSUER, ISSUER_B] {
        let t = token_of(issuer, &shared, &clock, "someone@example.com");
        assert_eq!(
            forwarded_user(&plugin.handle(pods(&t)).await),
            "someone@example.com"
        );
    }
    assert_eq!(server.count(JWKS_PATH), 1);
}

// ---- OpenID discovery ----------------------------------------------------------------------

const ISSUER_URL: &str = "https://idp.example.com/realms/k8s";
const DISCOVERY_PATH: &str = "/realms/k8s/.well-known/openid-configuration";

/// Discovery from the issuer URL: no path, and the authority is the issuer's host.
fn oidc_remote() -> Value {
    json!({"cluster": CLUSTER, "timeout_ms": 1000, "poll_interval_ms": 20})
}

fn oidc_config() -> Value {
    config_with(vec![authenticator(ISSUER_URL, oidc_remote())])
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
    let plugin = load(&server, &oidc_config(), 1, &clock);
    let t = token_of(ISSUER_URL, &a, &clock, "someone@example.com");
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
    let plugin = load(&server, &oidc_config(), 1, &clock);
    let t = token_of(ISSUER_URL, &a, &clock, "someone@example.com");
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

/// `issuer.discoveryURL`: the document comes from that URL (its host is the authority),
/// and must still name `issuer.url` as its issuer.
const DISCOVERY_URL_PATH: &str = "/discovery/k8s.json";

fn discovery_url_config() -> Value {
    let mut entry = authenticator(ISSUER_URL, oidc_remote());
    entry["issuer"]["discoveryURL"] = json!(format!("https://{AUTHORITY}{DISCOVERY_URL_PATH}"));
    config_with(vec![entry])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovery_url_is_fetched_instead_of_the_issuers_well_known_document() {
    let a = test_key("a");
    let server = JwksServer::start(serve(&[&a])).await;
    server.serve_discovery(
        DISCOVERY_URL_PATH,
        &json!({"issuer": ISSUER_URL, "jwks_uri": format!("https://{AUTHORITY}/realms/k8s/certs")}),
    );
    let clock = start_clock();
    let plugin = load(&server, &discovery_url_config(), 1, &clock);
    let t = token_of(ISSUER_URL, &a, &clock, "someone@example.com");
    assert_eq!(
        forwarded_user(&plugin.handle(pods(&t)).await),
        "someone@example.com"
    );
    assert_eq!(server.count(DISCOVERY_URL_PATH), 1);
    assert_eq!(
        server.count(DISCOVERY_PATH),
        0,
        "not the issuer's own document"
    );
    assert_eq!(server.count("/realms/k8s/certs"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let a = test_key("a");
    let server = JwksServer::start(serve(&[&a])).await;
    server.serve_discovery(
        DISCOVERY_URL_PATH,
        &json!({"issuer": "https://idp.example.com/realms/other",
                "jwks_uri": format!("https://{AUTHORITY}/realms/k8s/certs")}),
    );
    let clock = start_clock();
    let plugin = load(&server, &discovery_url_config(), 1, &clock);
    let t = token_of(ISSUER_URL, &a, &clock, "someone@example.com");
    assert_eq!(refused(&plugin.handle(pods(&t)).await).0, 503);
    assert_eq!(server.count("/realms/k8s/certs"), 0);
    let logs: Vec<String> = plugin.logs().into_iter().map(|l| l.message).collect();
    assert!(
        logs.iter()
            .any(|l| l.contains("OpenID discovery") && l.contains("is for issuer")),
        "{logs:#?}"
    );
}

// ---- examples and configuration ---------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_remote_jwks_example_works_through_the_module() {
    let example = common::example_config("remote-jwks.json");
    let entry = &example["jwt"][0];
    // Discovery from the issuer URL: no path in the example.
    assert!(entry["keys"]["remote"].get("path").is_none());
    let issuer = entry["issuer"]["url"].as_str().unwrap();
    let cluster = entry["keys"]["remote"]["cluster"].as_str().unwrap();
    let key = test_key("idp-key-1");
    let server = JwksServer::start(serve(&[&key])).await;
    let (authority, discovery_path) =
        kubegate::jwks::discovery::discovery_location(issuer).unwrap();
    server.serve_discovery(
        &discovery_path,
        &json!({"issuer": issuer, "jwks_uri": format!("{issuer}/protocol/openid-connect/certs")}),
    );
    let clock = start_clock();
    let plugin = load_clusters(&[(cluster, &server)], &example, 2, &clock);
    let mut claims =
        SessionClaims::dev("someone@example.com", &["k8s-users"], unix_seconds(&clock));
    claims.issuer = issuer.to_string();
    claims.audience = entry["issuer"]["audiences"][0]
        .as_str()
        .unwrap()
        .to_string();
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
    assert!(server.seen().iter().all(|s| s.host == authority));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pomerium_example_fetches_pomeriums_jwks() {
    let example = common::example_config("pomerium.json");
    let entry = &example["jwt"][0];
    let remote = &entry["keys"]["remote"];
    assert_eq!(remote["path"], "/.well-known/pomerium/jwks.json");
    let key = test_key("pomerium-1");
    let server = JwksServer::start(serve(&[&key])).await;
    let clock = start_clock();
    let plugin = load_clusters(
        &[(remote["cluster"].as_str().unwrap(), &server)],
        &example,
        2,
        &clock,
    );
    let mut claims = SessionClaims::dev("someone@pomerium.com", &[], unix_seconds(&clock));
    let issuer = entry["issuer"]["url"].as_str().unwrap();
    claims.issuer = issuer.to_string();
    claims.audience = entry["issuer"]["audiences"][0]
        .as_str()
        .unwrap()
        .to_string();
    let t = key.signer.sign(&claims).unwrap();
    let request = FilterRequest::new("GET", "/api", "k8s.localhost.pomerium.io")
        .header("x-pomerium-jwt-assertion", &t);
    assert_eq!(
        forwarded_user(&plugin.handle(request).await),
        "someone@pomerium.com"
    );
    // The authority defaults to the issuer's host (Pomerium's iss is a bare host name).
    let seen = &server.seen()[0];
    assert_eq!(seen.host, issuer);
}

fn env(name: &str) -> Option<String> {
    (name == "KUBEGATE_SA_TOKEN").then(|| "sa-token-123".to_string())
}

fn parse_value(value: &Value) -> Result<Config, String> {
    Config::parse(value.to_string().as_bytes(), &env).map_err(|e| e.to_string())
}

fn parse(remote: Value) -> Result<Config, String> {
    parse_value(&config(remote))
}

/// The remote settings of the only authenticator.
fn remote_of(config: Config) -> RemoteJwksSettings {
    config
        .authenticators
        .into_iter()
        .next()
        .and_then(|a| a.remote)
        .expect("remote keys")
}

#[test]
fn a_configuration_with_only_remote_keys_is_valid_with_defaults() {
    let config =
        parse(json!({"cluster": "idp", "authority": "idp.example.com", "path": "/jwks"})).unwrap();
    assert!(config.authenticators[0].keys.is_empty());
    let remote = remote_of(config);
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
    let mut none = config_with(vec![authenticator(DEV_ISSUER, json!(null))]);
    none["jwt"][0]["keys"] = json!({});
    let e = parse_value(&none).unwrap_err();
    assert!(e.contains("jwt[0].keys: no usable verification key"), "{e}");
}

#[test]
fn the_envoy_and_istio_examples_remote_keys_parse() {
    // As envoy-examples/envoy/in-cluster.yaml and istio/wasmplugin.yaml write it.
    for cluster in ["pomerium", "outbound|443||k8s.localhost.pomerium.io"] {
        let remote = remote_of(
            parse(json!({
                "cluster": cluster,
                "authority": "k8s.localhost.pomerium.io",
                "path": "/.well-known/pomerium/jwks.json",
                "refresh_seconds": 300,
                "timeout_ms": 5000
            }))
            .unwrap(),
        );
        assert_eq!(remote.cluster, cluster);
    }
}

#[test]
fn inline_and_remote_keys_combine() {
    let mut value =
        config(json!({"cluster": "idp", "authority": "idp.example.com", "path": "/jwks"}));
    value["jwt"][0]["keys"]["jwks"] =
        common::example_config("dev.json")["jwt"][0]["keys"]["jwks"].clone();
    let config = parse_value(&value).unwrap();
    assert_eq!(config.authenticators[0].keys.len(), 1);
    assert!(config.authenticators[0].remote.is_some());
}

#[test]
fn remote_key_mistakes_are_refused_naming_the_field() {
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
            "jwt[0].keys.remote.refresh_secs: unknown field",
        ),
        (
            without("cluster"),
            "jwt[0].keys.remote: missing field `cluster`",
        ),
        (with("cluster", json!("")), "jwt[0].keys.remote.cluster:"),
        (
            with("authority", json!("https://idp.example.com")),
            "jwt[0].keys.remote.authority:",
        ),
        (with("path", json!("jwks")), "jwt[0].keys.remote.path:"),
        (
            with("path", json!("/a b")),
            "jwt[0].keys.remote.path: an absolute request path",
        ),
        (
            // The discovery form is the issuer's; the old field is gone.
            with("oidc_issuer", json!("https://idp.example.com")),
            "jwt[0].keys.remote.oidc_issuer: unknown field",
        ),
        (
            // Discovery fetches from the issuer's host: an authority is for a path.
            without("path"),
            "jwt[0].keys.remote.authority: only with path",
        ),
        (
            with("refresh_seconds", json!(1)),
            "jwt[0].keys.remote.refresh_seconds: must be between 10",
        ),
        (
            with("timeout_ms", json!(0)),
            "jwt[0].keys.remote.timeout_ms: must be between",
        ),
        (
            json!({"cluster": "idp", "authority": "idp.example.com", "path": "/jwks",
                   "refresh_seconds": 10, "timeout_ms": 10_000}),
            "jwt[0].keys.remote.timeout_ms: must be shorter than refresh_seconds",
        ),
        (
            with("max_stale_seconds", json!(100)),
            "jwt[0].keys.remote.max_stale_seconds: must be between 300",
        ),
        (
            with("refetch_min_interval_seconds", json!(0)),
            "jwt[0].keys.remote.refetch_min_interval_seconds",
        ),
        (
            with("max_response_bytes", json!(10)),
            "jwt[0].keys.remote.max_response_bytes",
        ),
        (
            with("poll_interval_ms", json!(1)),
            "jwt[0].keys.remote.poll_interval_ms",
        ),
        (
            with("timeout_ms", json!("5s")),
            "jwt[0].keys.remote.timeout_ms: invalid type",
        ),
    ];
    for (remote, expected) in cases {
        let e = parse(remote.clone()).unwrap_err();
        assert!(e.contains(expected), "{remote}: {e}");
    }

    // The second authenticator's mistakes name it.
    let second = config_with(vec![
        authenticator(DEV_ISSUER, base.clone()),
        authenticator(ISSUER_URL, with("timeout_ms", json!(0))),
    ]);
    let e = parse_value(&second).unwrap_err();
    assert!(e.contains("jwt[1].keys.remote.timeout_ms"), "{e}");

    // Discovery: from the issuer URL (its host is the authority), or issuer.discoveryURL.
    let discovery = |issuer: &str, discovery_url: Option<&str>| {
        let mut entry = authenticator(issuer, json!({"cluster": "idp"}));
        if let Some(url) = discovery_url {
            entry["issuer"]["discoveryURL"] = json!(url);
        }
        parse_value(&config_with(vec![entry]))
    };
    let ok = remote_of(discovery("https://idp.example.com/realms/k8s", None).unwrap());
    assert_eq!(ok.authority, "idp.example.com");
    assert_eq!(
        ok.source,
        KeySource::OidcIssuer {
            issuer: "https://idp.example.com/realms/k8s".into(),
            discovery_path: "/realms/k8s/.well-known/openid-configuration".into()
        }
    );
    let elsewhere = remote_of(
        discovery(
            "https://idp.example.com/realms/k8s",
            Some("https://discovery.example.com:8443/k8s/openid.json"),
        )
        .unwrap(),
    );
    assert_eq!(elsewhere.authority, "discovery.example.com:8443");
    assert_eq!(
        elsewhere.source,
        KeySource::OidcIssuer {
            issuer: "https://idp.example.com/realms/k8s".into(),
            discovery_path: "/k8s/openid.json".into()
        }
    );
    let e = discovery("http://idp.example.com", None).unwrap_err();
    assert!(e.contains("jwt[0].issuer.url"), "{e}");
    let e = discovery("https://idp.example.com", Some("http://idp.example.com/d")).unwrap_err();
    assert!(e.contains("jwt[0].issuer.discoveryURL"), "{e}");
    // A bare host name issuer (Pomerium) has no discovery document: path is required.
    let mut host_only = authenticator("k8s.example.com", json!({"cluster": "idp"}));
    host_only["issuer_host_only"] = json!(true);
    let e = parse_value(&config_with(vec![host_only])).unwrap_err();
    assert!(e.contains("jwt[0].keys.remote.path: required"), "{e}");
}
