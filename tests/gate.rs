//! One request's decision end to end through the pure logic (no proxy): the same function
//! the proxy-wasm glue calls, fed with headers as Envoy would hand them over.

use kubegate::config::Config;
use kubegate::gate::{decide, Decision, Kind, Outcome};
use kubegate::token_cache::VerifiedTokenCache;
use kubegate_testkit::tokens::{SessionClaims, Signer};
use serde_json::{json, Value};

const NOW: u64 = 1_800_000_000;

fn cache() -> VerifiedTokenCache {
    VerifiedTokenCache::new(16)
}

fn env(name: &str) -> Option<String> {
    (name == "KUBEGATE_SA_TOKEN").then(|| "sa-token-123".to_string())
}

fn config_with(edit: impl FnOnce(&mut Value)) -> Config {
    let mut value: Value = serde_json::from_str(include_str!("../filter-config/dev.json")).unwrap();
    edit(&mut value);
    Config::parse(value.to_string().as_bytes(), &env).unwrap()
}

fn dev_config() -> Config {
    config_with(|_| {})
}

fn token(email: &str, groups: &[&str]) -> String {
    Signer::dev()
        .unwrap()
        .sign(&SessionClaims::dev(email, groups, NOW))
        .unwrap()
}

fn request(extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = [
        (":method", "GET"),
        (":path", "/api/v1/namespaces/default/pods?limit=500"),
        (":authority", "localhost:8443"),
        (":scheme", "https"),
        ("user-agent", "kubectl/v1.32.4"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    headers.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    headers
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn refusal(decision: &Decision) -> (u16, Value, Option<String>) {
    match &decision.outcome {
        Outcome::Refuse(r) => (
            r.code,
            serde_json::from_str(&r.body()).unwrap(),
            r.www_authenticate.clone(),
        ),
        Outcome::Allow(plan) => panic!("expected a refusal, got {plan:?}"),
    }
}

/// The headers the API server receives: the request with the plan applied.
fn forwarded(headers: &[(String, String)], decision: &Decision) -> Vec<(String, String)> {
    let Outcome::Allow(plan) = &decision.outcome else {
        panic!("expected an allow, got {:?}", decision.outcome)
    };
    let mut out: Vec<(String, String)> = headers
        .iter()
        .filter(|(n, _)| !plan.remove.contains(&n.to_ascii_lowercase()))
        .cloned()
        .collect();
    out.extend(plan.add.iter().cloned());
    out
}

fn values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn an_allowed_user_is_forwarded_as_the_service_account_impersonating_them() {
    let t = token("someuser@example.com", &["developers", "oncall"]);
    let headers = request(&[("authorization", &bearer(&t))]);
    let decision = decide(&dev_config(), &mut cache(), &headers, NOW);
    assert_eq!(decision.log.kind, Kind::Allowed);
    let out = forwarded(&headers, &decision);
    assert_eq!(values(&out, "authorization"), vec!["Bearer sa-token-123"]);
    assert_eq!(
        values(&out, "impersonate-user"),
        vec!["someuser@example.com"]
    );
    assert_eq!(
        values(&out, "impersonate-group"),
        vec!["developers", "oncall"]
    );
    assert!(
        !out.iter().any(|(_, v)| v.contains(&t)),
        "the session token leaked upstream"
    );
    assert_eq!(decision.log.user.as_deref(), Some("someuser@example.com"));
    let line = decision.log.to_string();
    assert!(line.contains("decision=allowed"), "{line}");
    assert!(!line.contains(&t));
}

#[test]
fn a_user_outside_the_domain_gets_403_naming_them() {
    let t = token("mallory@evil.example", &[]);
    let decision = decide(
        &dev_config(),
        &mut cache(),
        &request(&[("authorization", &bearer(&t))]),
        NOW,
    );
    let (code, body, challenge) = refusal(&decision);
    assert_eq!(code, 403);
    assert_eq!(body["reason"], "Forbidden");
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("mallory@evil.example"));
    assert_eq!(challenge, None);
    assert_eq!(decision.log.kind, Kind::Forbidden);
}

#[test]
fn no_token_is_401_without_invalid_token() {
    let decision = decide(&dev_config(), &mut cache(), &request(&[]), NOW);
    let (code, body, challenge) = refusal(&decision);
    assert_eq!(code, 401);
    assert_eq!(body["reason"], "Unauthorized");
    assert_eq!(challenge.as_deref(), Some("Bearer realm=\"kubegate\""));
}

#[test]
fn expired_not_yet_valid_and_foreign_tokens_are_401_invalid_token() {
    let signer = Signer::dev().unwrap();
    let mut expired = SessionClaims::dev("someuser@example.com", &[], NOW - 1000);
    expired.expires_at = NOW - 61;
    let mut future = SessionClaims::dev("someuser@example.com", &[], NOW);
    future.not_before = Some(NOW + 120);
    let mut wrong_issuer = SessionClaims::dev("someuser@example.com", &[], NOW);
    wrong_issuer.issuer = "https://evil.example".into();
    let mut wrong_audience = SessionClaims::dev("someuser@example.com", &[], NOW);
    wrong_audience.audience = "some-other-app".into();
    for claims in [expired, future, wrong_issuer, wrong_audience] {
        let t = signer.sign(&claims).unwrap();
        let decision = decide(
            &dev_config(),
            &mut cache(),
            &request(&[("authorization", &bearer(&t))]),
            NOW,
        );
        let (code, body, challenge) = refusal(&decision);
        assert_eq!(code, 401, "{claims:?}");
        assert!(challenge.unwrap().contains("error=\"invalid_token\""));
        let message = body["message"].as_str().unwrap();
        assert!(!message.contains(&t), "the token was echoed");
        assert!(message.contains("invalid token"), "{message}");
    }
}

#[test]
fn a_token_from_another_key_is_refused() {
    let other = jwt_simple::prelude::ES256KeyPair::generate().with_key_id("kubegate-dev-1");
    let signer = Signer::from_pem(&other.to_pem().unwrap(), "kubegate-dev-1").unwrap();
    let t = signer
        .sign(&SessionClaims::dev("someuser@example.com", &[], NOW))
        .unwrap();
    let decision = decide(
        &dev_config(),
        &mut cache(),
        &request(&[("authorization", &bearer(&t))]),
        NOW,
    );
    assert_eq!(refusal(&decision).0, 401);
}

#[test]
fn unknown_host_is_404_and_never_passes() {
    let t = token("someuser@example.com", &[]);
    let mut headers = request(&[("authorization", &bearer(&t))]);
    for (n, v) in headers.iter_mut() {
        if n == ":authority" {
            *v = "other.example.com".into();
        }
    }
    let decision = decide(&dev_config(), &mut cache(), &headers, NOW);
    let (code, body, _) = refusal(&decision);
    assert_eq!(code, 404);
    assert_eq!(body["reason"], "NotFound");
    assert_eq!(decision.log.kind, Kind::NotFound);
    let no_authority: Vec<_> = headers
        .into_iter()
        .filter(|(n, _)| n != ":authority")
        .collect();
    assert_eq!(
        refusal(&decide(&dev_config(), &mut cache(), &no_authority, NOW)).0,
        404
    );
}

#[test]
fn client_impersonation_headers_are_refused_by_default() {
    let t = token("someuser@example.com", &["developers"]);
    for name in [
        "impersonate-user",
        "Impersonate-Group",
        "IMPERSONATE-UID",
        "impersonate-extra-x",
    ] {
        for token in [bearer(&t), "Bearer not.a.token".to_string()] {
            let headers = request(&[("authorization", &token), (name, "admin")]);
            let decision = decide(&dev_config(), &mut cache(), &headers, NOW);
            let (code, body, _) = refusal(&decision);
            let message = body["message"].as_str().unwrap();
            assert_eq!(code, 403, "{name}");
            assert!(message.contains("--as"), "{message}");
            assert!(!message.contains("admin"), "{message}");
            assert_eq!(decision.cache_hit, None, "refused before any token work");
        }
    }
}

#[test]
fn the_service_account_token_is_bound_to_the_routes_upstream_clusters() {
    use kubegate::gate::{decide_at, Upstream};
    let t = token("someuser@example.com", &["developers"]);
    let headers = request(&[("authorization", &bearer(&t))]);
    let config = dev_config();
    let judge = |upstream| decide_at(&config, &mut cache(), &headers, None, upstream, NOW);
    assert!(matches!(
        judge(Upstream::Cluster("kube_apiserver")).outcome,
        Outcome::Allow(_)
    ));
    for upstream in [
        Upstream::Cluster("idp"),
        Upstream::Cluster(""),
        Upstream::Unknown,
    ] {
        let decision = judge(upstream);
        assert_eq!(refusal(&decision).0, 500, "{upstream:?}");
        assert_eq!(decision.log.kind, Kind::Internal);
        assert_eq!(decision.cache_hit, None, "refused before any token work");
    }
}

#[test]
fn client_impersonation_headers_never_reach_the_api_server_in_any_case_in_strip_mode() {
    let t = token("someuser@example.com", &["developers"]);
    let headers = request(&[
        ("authorization", &bearer(&t)),
        ("impersonate-user", "admin"),
        ("Impersonate-Group", "system:masters"),
        ("IMPERSONATE-GROUP", "system:masters"),
        ("impersonate-uid", "0"),
        ("Impersonate-Extra-Scopes", "all"),
        ("proxy-authorization", "Basic eDp5"),
        ("X-Remote-User", "admin"),
        ("x-remote-group", "system:masters"),
        ("X-REMOTE-EXTRA-scopes", "all"),
    ]);
    let config = config_with(|c| c["routes"][0]["client_impersonation"] = json!("strip"));
    let decision = decide(&config, &mut cache(), &headers, NOW);
    let out = forwarded(&headers, &decision);
    assert_eq!(
        values(&out, "impersonate-user"),
        vec!["someuser@example.com"]
    );
    assert_eq!(values(&out, "impersonate-group"), vec!["developers"]);
    assert!(values(&out, "impersonate-uid").is_empty());
    assert!(values(&out, "impersonate-extra-scopes").is_empty());
    assert!(values(&out, "proxy-authorization").is_empty());
    for name in ["x-remote-user", "x-remote-group", "x-remote-extra-scopes"] {
        assert!(values(&out, name).is_empty(), "{name}");
    }
    let Outcome::Allow(plan) = &decision.outcome else {
        unreachable!()
    };
    assert_eq!(plan.check(&out), Ok(()));
}

#[test]
fn duplicate_authorization_headers_are_refused() {
    let good = token("someuser@example.com", &[]);
    let bad = token("mallory@evil.example", &[]);
    for (first, second) in [(&good, &bad), (&bad, &good), (&good, &good)] {
        let headers = request(&[
            ("authorization", &bearer(first)),
            ("authorization", &bearer(second)),
        ]);
        assert_eq!(
            refusal(&decide(&dev_config(), &mut cache(), &headers, NOW)).0,
            401
        );
    }
}

#[test]
fn header_and_cookie_with_different_tokens_are_refused() {
    let config = config_with(|c| {
        c["jwt"][0]["from"] =
            json!([{"header": "authorization", "prefix": "Bearer "}, {"cookie": "_session"}]);
    });
    let good = token("someuser@example.com", &[]);
    let other = token("other@example.com", &[]);
    let headers = request(&[
        ("authorization", &bearer(&good)),
        ("cookie", &format!("_session={other}")),
    ]);
    assert_eq!(
        refusal(&decide(&config, &mut cache(), &headers, NOW)).0,
        401
    );
    // The cookie alone works, and is stripped while other cookies stay.
    let headers = request(&[("cookie", &format!("theme=dark; _session={good}"))]);
    let decision = decide(&config, &mut cache(), &headers, NOW);
    let out = forwarded(&headers, &decision);
    assert_eq!(values(&out, "cookie"), vec!["theme=dark"]);
}

#[test]
fn system_groups_in_a_token_are_refused() {
    let t = token("someuser@example.com", &["system:masters"]);
    let decision = decide(
        &dev_config(),
        &mut cache(),
        &request(&[("authorization", &bearer(&t))]),
        NOW,
    );
    let (code, body, _) = refusal(&decision);
    assert_eq!(code, 403);
    assert!(body["message"].as_str().unwrap().contains("system:masters"));
}

#[test]
fn oversized_tokens_are_refused_before_parsing() {
    let huge = format!("{}.{}.{}", "a".repeat(6000), "b".repeat(6000), "c");
    let decision = decide(
        &dev_config(),
        &mut cache(),
        &request(&[("authorization", &bearer(&huge))]),
        NOW,
    );
    assert_eq!(refusal(&decision).0, 401);
}

#[test]
fn policy_sees_method_and_path_without_the_query() {
    let config = config_with(|c| {
        c["routes"][0]["policy"] = json!([
            {"allow": {"and": [{"domain": {"is": "example.com"}}, {"http_method": {"in": ["GET"]}}]}},
            {"deny": {"or": [{"http_path": {"starts_with": "/api/v1/namespaces/kube-system/secrets"}}]}}
        ]);
    });
    let t = token("someuser@example.com", &[]);
    let auth = bearer(&t);
    let mut get_secret = request(&[("authorization", &auth)]);
    get_secret[1].1 = "/api/v1/namespaces/kube-system/secrets/x?watch=1".into();
    assert_eq!(
        refusal(&decide(&config, &mut cache(), &get_secret, NOW)).0,
        403
    );
    let mut post = request(&[("authorization", &auth)]);
    post[0].1 = "POST".into();
    assert_eq!(refusal(&decide(&config, &mut cache(), &post, NOW)).0, 403);
    assert_eq!(
        decide(
            &config,
            &mut cache(),
            &request(&[("authorization", &auth)]),
            NOW
        )
        .log
        .kind,
        Kind::Allowed
    );
}

#[test]
fn pomerium_assertions_are_read_from_their_header_only() {
    let mut value: Value =
        serde_json::from_str(include_str!("../filter-config/pomerium.json")).unwrap();
    // The example fetches Pomerium's JWKS (tests/remote_jwks.rs runs that); decided
    // natively, the dev key stands in for it.
    let dev: Value = serde_json::from_str(include_str!("../filter-config/dev.json")).unwrap();
    value["jwt"][0]["keys"] = json!({"jwks": dev["jwt"][0]["keys"]["jwks"].clone()});
    let config = Config::parse(value.to_string().as_bytes(), &env).unwrap();
    // Pomerium's assertion: iss and aud are the route host, a bare host name.
    let mut claims = SessionClaims::dev("someone@pomerium.com", &["admins"], NOW);
    claims.issuer = "k8s.localhost.pomerium.io".into();
    claims.audience = "k8s.localhost.pomerium.io".into();
    let assertion = Signer::dev().unwrap().sign(&claims).unwrap();
    let mut headers = request(&[("x-pomerium-jwt-assertion", &assertion)]);
    headers[2].1 = "k8s.localhost.pomerium.io:8443".into();
    let decision = decide(&config, &mut cache(), &headers, NOW);
    assert_eq!(decision.log.kind, Kind::Allowed, "{:?}", decision.log);
    let forwarded = forwarded(&headers, &decision);
    assert!(!forwarded.iter().any(|(_, v)| v.contains(&assertion)));
    assert!(forwarded.contains(&("impersonate-group".into(), "pomerium:admins".into())));

    // The same assertion as a bearer token is not read: Authorization is not a source of
    // this authenticator (it is still stripped).
    let mut headers = request(&[("authorization", &bearer(&assertion))]);
    headers[2].1 = "k8s.localhost.pomerium.io".into();
    assert_eq!(
        refusal(&decide(&config, &mut cache(), &headers, NOW)).0,
        401
    );
}

#[test]
fn a_cached_token_still_expires_and_a_hit_skips_verification() {
    let config = dev_config();
    let mut cache = cache();
    let t = token("someuser@example.com", &[]);
    let headers = request(&[("authorization", &bearer(&t))]);
    let first = decide(&config, &mut cache, &headers, NOW);
    assert_eq!(
        (first.log.kind, first.cache_hit),
        (Kind::Allowed, Some(false))
    );
    let second = decide(&config, &mut cache, &headers, NOW + 10);
    assert_eq!(
        (second.log.kind, second.cache_hit),
        (Kind::Allowed, Some(true))
    );
    // Past exp + leeway the cached entry is not trusted.
    let late = decide(&config, &mut cache, &headers, NOW + 300 + 61);
    assert_eq!(late.log.kind, Kind::Unauthenticated);
    // Inside the leeway after exp, the claim rules (not the cache) decide: still allowed.
    let mut cache = VerifiedTokenCache::new(16);
    decide(&config, &mut cache, &headers, NOW);
    let in_leeway = decide(&config, &mut cache, &headers, NOW + 300 + 30);
    assert_eq!(in_leeway.log.kind, Kind::Allowed);
}

#[test]
fn policy_is_applied_on_every_cache_hit() {
    let config = dev_config();
    let mut cache = cache();
    let t = token("mallory@evil.example", &[]);
    let headers = request(&[("authorization", &bearer(&t))]);
    for _ in 0..3 {
        assert_eq!(
            decide(&config, &mut cache, &headers, NOW).log.kind,
            Kind::Forbidden
        );
    }
}

fn with_path(path: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut headers = request(extra);
    for (name, value) in headers.iter_mut() {
        if name == ":path" {
            *value = path.to_string();
        }
    }
    headers
}

#[test]
fn kubernetes_criteria_see_the_resolved_request_and_the_client_address() {
    use kubegate::gate::decide_from;
    let config = config_with(|c| {
        c["routes"][0]["policy"] = json!([
            {"allow": {"and": [{"domain": {"is": "example.com"}}, {"source_ip": "10.0.0.0/8"}]}},
            {"deny": {"and": [{"kubernetes_resource": {"is": "secrets"}}]}}
        ]);
    });
    let t = bearer(&token("someuser@example.com", &[]));
    let office = Some("10.1.2.3".parse().unwrap());
    let pods = with_path("/api/v1/namespaces/default/pods", &[("authorization", &t)]);
    let secrets = with_path(
        "/api/v1/namespaces/default/secrets",
        &[("authorization", &t)],
    );

    let allowed = decide_from(&config, &mut cache(), &pods, office, NOW);
    assert_eq!(allowed.log.kind, Kind::Allowed, "{}", allowed.log);
    let denied = decide_from(&config, &mut cache(), &secrets, office, NOW);
    assert_eq!(refusal(&denied).0, 403);
    assert!(
        denied.log.reason.contains("policy[1].deny"),
        "{}",
        denied.log
    );
    // Another address, or none at all (`decide`): the source_ip criterion is false.
    let elsewhere = decide_from(
        &config,
        &mut cache(),
        &pods,
        Some("192.0.2.1".parse().unwrap()),
        NOW,
    );
    assert_eq!(refusal(&elsewhere).0, 403);
    assert_eq!(refusal(&decide(&config, &mut cache(), &pods, NOW)).0, 403);
}

#[test]
fn a_request_the_resolver_cannot_read_is_refused_only_where_the_policy_needs_it() {
    let t = bearer(&token("someuser@example.com", &[]));
    // `/api/v1/watch` names no resource: kube-apiserver's resolver gives up on it.
    let unreadable = with_path("/api/v1/watch", &[("authorization", &t)]);
    let kubernetes = config_with(|c| {
        c["routes"][0]["policy"] = json!([
            {"allow": {"and": [{"domain": {"is": "example.com"}}]}},
            {"deny": {"not": [{"kubernetes_namespace": {"is": "default"}}]}}
        ]);
    });
    let decision = decide(&kubernetes, &mut cache(), &unreadable, NOW);
    let (code, body, _) = refusal(&decision);
    assert_eq!(code, 403);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("names no resource"),
        "{body}"
    );
    // The token was never looked at: the request is refused before any token work.
    assert_eq!(decision.cache_hit, None);
    // A policy that reads only the session does not resolve the request at all.
    let plain = dev_config();
    assert_eq!(
        decide(&plain, &mut cache(), &unreadable, NOW).log.kind,
        Kind::Allowed
    );
}

#[test]
fn a_policy_without_kubernetes_criteria_never_resolves_the_request() {
    // source_ip reads the request context but not the Kubernetes request: an unreadable
    // Kubernetes path is still judged by the policy, not refused for being unreadable.
    use kubegate::gate::decide_from;
    let config = config_with(|c| {
        c["routes"][0]["policy"] = json!([
            {"allow": {"and": [{"domain": {"is": "example.com"}}, {"source_ip": "10.0.0.0/8"}]}}
        ]);
    });
    let t = bearer(&token("someuser@example.com", &[]));
    let unreadable = with_path("/api/v1/watch", &[("authorization", &t)]);
    let decision = decide_from(
        &config,
        &mut cache(),
        &unreadable,
        Some("10.1.2.3".parse().unwrap()),
        NOW,
    );
    assert_eq!(decision.log.kind, Kind::Allowed, "{}", decision.log);
}
