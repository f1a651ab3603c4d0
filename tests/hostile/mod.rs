//! Shared by the adversarial, property and soak suites: a configuration that trusts an HMAC
//! key (so tests can sign any claims they like) beside the committed ES256 dev key, hostile
//! header generation, and the invariants every forwarded request must satisfy.
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

/// Trusted by [`config`] under kid `hostile`; tests sign claims with it.
pub const HMAC_SECRET: &[u8; 32] = b"kubegate-hostile-tests-secret-32";
pub const HMAC_KID: &str = "hostile";
pub const ISSUER: &str = "https://kubegate-dev.localhost";
pub const AUDIENCE: &str = "kubegate-dev";
pub const HOST: &str = "localhost";
pub const SESSION_COOKIE: &str = "_session";

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// HS256 over arbitrary header and payload bytes.
pub fn sign_raw(header: &[u8], payload: &[u8]) -> String {
    sign_raw_with(header, payload, HMAC_SECRET)
}

pub fn sign_raw_with(header: &[u8], payload: &[u8], secret: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let mac = hmac_sha256::HMAC::mac(input.as_bytes(), secret);
    format!("{input}.{}", b64(&mac))
}

/// A signed session token for `claims` (kid `hostile`, HS256).
pub fn sign(claims: &Value) -> String {
    let header = json!({"alg": "HS256", "kid": HMAC_KID, "typ": "JWT"});
    sign_raw(header.to_string().as_bytes(), claims.to_string().as_bytes())
}

/// Claims that pass every rule of [`config`] at `now`.
pub fn claims(email: &str, groups: &[&str], now: u64) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": format!("sub-{email}"),
        "email": email,
        "groups": groups,
        "iat": now,
        "exp": now + 300,
    })
}

/// dev.json's route and key, plus the HMAC key, a session cookie source, uid and one extra;
/// client impersonation headers are stripped (`client_impersonation: strip`).
/// Policy: example.com may do anything except DELETE and anything under kube-system;
/// `readers` may only GET under /api/v1/namespaces/default/.
pub fn config() -> Value {
    let mut config = dev_json();
    config["routes"][0]["policy"] = json!([
        {"allow": {"or": [{"domain": {"is": "example.com"}}]}},
        {"allow": {"and": [
            {"groups": {"has": "readers"}},
            {"http_method": "GET"},
            {"http_path": {"starts_with": "/api/v1/namespaces/default/"}}
        ]}},
        {"deny": {"or": [
            {"http_method": "DELETE"},
            {"http_path": {"starts_with": "/api/v1/namespaces/kube-system"}}
        ]}}
    ]);
    config["jwt"][0]["keys"]["hmac"] =
        json!([{"kid": HMAC_KID, "alg": "HS256", "secret_base64": b64(HMAC_SECRET)}]);
    config["jwt"][0]["from"] = json!([
        {"header": "authorization", "prefix": "Bearer "},
        {"cookie": SESSION_COOKIE}
    ]);
    config["jwt"][0]["claimMappings"]["uid"] = json!({"claim": "sub"});
    // Smuggled Impersonate-* headers are stripped rather than refused, so the suites can
    // check what reaches the upstream (the default, refusing them, has its own tests).
    config["routes"][0]["client_impersonation"] = json!("strip");
    config["jwt"][0]["extra_claims"] = json!({"acme.com/project": "project"});
    config
}

pub fn dev_json() -> Value {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("filter-config/dev.json");
    serde_json::from_slice(&std::fs::read(path).expect("filter-config/dev.json")).expect("json")
}

/// Upper-cases the ASCII letters whose bit is set in `mask`.
pub fn mix_case(name: &str, mask: u64) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect()
}

/// Every spelling of `name` that differs only in letter case (at most `limit`).
pub fn case_variants(name: &str, limit: usize) -> Vec<String> {
    let letters = name
        .chars()
        .filter(char::is_ascii_alphabetic)
        .count()
        .min(20);
    let total = 1u64 << letters;
    let step = (total / limit as u64).max(1);
    let mut out: Vec<String> = (0..total)
        .step_by(step as usize)
        .map(|mask| {
            let mut bit = 0;
            name.chars()
                .map(|c| {
                    if c.is_ascii_alphabetic() {
                        let upper = mask >> bit & 1 == 1;
                        bit += 1;
                        if upper {
                            return c.to_ascii_uppercase();
                        }
                    }
                    c
                })
                .collect()
        })
        .collect();
    out.push(name.to_ascii_uppercase());
    out.dedup();
    out
}

pub fn values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The identity headers a forwarded request must carry for `claims` under [`config`]:
/// user = email, one group header per group, uid = sub, extra from `project`.
pub fn expected_identity(claims: &Value) -> Vec<(String, String)> {
    let mut out = vec![(
        "impersonate-user".to_string(),
        claims["email"].as_str().unwrap_or_default().to_string(),
    )];
    let groups: Vec<String> = match &claims["groups"] {
        Value::Array(list) => list
            .iter()
            .map(|g| g.as_str().unwrap_or_default().to_string())
            .collect(),
        Value::String(g) => vec![g.clone()],
        _ => Vec::new(),
    };
    for group in groups {
        out.push(("impersonate-group".to_string(), group));
    }
    // A numeric uid claim is sent as its decimal text.
    match &claims["sub"] {
        Value::String(sub) => out.push(("impersonate-uid".to_string(), sub.clone())),
        Value::Number(sub) => out.push(("impersonate-uid".to_string(), sub.to_string())),
        _ => {}
    }
    let project: Vec<String> = match &claims["project"] {
        Value::Array(list) => list
            .iter()
            .map(|g| g.as_str().unwrap_or_default().to_string())
            .collect(),
        Value::String(p) => vec![p.clone()],
        _ => Vec::new(),
    };
    for value in project {
        out.push(("impersonate-extra-acme.com%2fproject".to_string(), value));
    }
    out
}

/// What reached the upstream carries only the gateway's credentials and exactly the
/// verified identity: one Authorization (the service account's), no Proxy-Authorization,
/// no session cookie, no client token anywhere, and impersonate-* equal to `claims`.
pub fn assert_clean_upstream(
    forwarded: &[(String, String)],
    sa_token: &str,
    claims: &Value,
    client_token: Option<&str>,
) {
    assert_eq!(
        values(forwarded, "authorization"),
        vec![format!("Bearer {sa_token}").as_str()],
        "only the service account's Authorization may reach the API server: {forwarded:?}"
    );
    assert!(
        values(forwarded, "proxy-authorization").is_empty(),
        "Proxy-Authorization reached the API server: {forwarded:?}"
    );
    assert!(
        !forwarded.iter().any(|(n, _)| {
            let n = n.to_ascii_lowercase();
            n == "x-remote-user" || n == "x-remote-group" || n.starts_with("x-remote-extra-")
        }),
        "a front-proxy identity header (X-Remote-*) reached the API server: {forwarded:?}"
    );
    for value in values(forwarded, "cookie") {
        for pair in value.split(';') {
            let key = pair.split_once('=').map_or(pair, |(k, _)| k).trim();
            assert_ne!(
                key, SESSION_COOKIE,
                "the session cookie reached the API server"
            );
        }
    }
    for value in values(forwarded, "sec-websocket-protocol") {
        assert!(
            !value.split(',').any(|p| p
                .trim()
                .to_ascii_lowercase()
                .starts_with("base64url.bearer.authorization.k8s.io.")),
            "a bearer token in Sec-WebSocket-Protocol reached the API server: {value}"
        );
    }
    if let Some(token) = client_token {
        assert!(
            !forwarded.iter().any(|(_, v)| v.contains(token)),
            "the client's token reached the API server"
        );
    }
    let impersonation: Vec<(String, String)> = forwarded
        .iter()
        .filter(|(n, _)| n.to_ascii_lowercase().starts_with("impersonate-"))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    assert_eq!(
        impersonation,
        expected_identity(claims),
        "impersonation headers must be exactly the verified identity"
    );
}
