//! Shared pieces of the fuzz targets: header generation with hostile names, an HS256 signer
//! so inputs can reach past the signature, Envoy's way of applying a header plan, and the
//! invariants every forwarded request must satisfy.

use arbitrary::Arbitrary;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use kubegate::upstream::HeaderPlan;

/// The HMAC secret the fuzzing configurations trust (kid `fuzz`), so a fuzzer-built payload
/// can be signed and reach the claim, identity, policy and plan code.
pub const HMAC_SECRET: &[u8; 32] = b"kubegate-fuzz-secret-0123456789a";
pub const HMAC_KID: &str = "fuzz";
pub const SA_TOKEN: &str = "sa-token-fuzz";
pub const SESSION_COOKIE: &str = "_session";
pub const NOW: u64 = 1_700_000_000;
pub const ISSUER: &str = "https://issuer.example";
pub const AUDIENCE: &str = "k8s.example.com";
/// The Impersonate-Extra key the gate configuration maps from the `project` claim (extra
/// keys are lower case, as the API server requires).
pub const EXTRA_KEY: &str = "acme.com/project";

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header.payload.signature` with HS256 over the configured secret.
pub fn sign_hs256(header: &[u8], payload: &[u8]) -> String {
    let signing_input = format!("{}.{}", b64(header), b64(payload));
    let mac = hmac_sha256::HMAC::mac(signing_input.as_bytes(), HMAC_SECRET);
    format!("{signing_input}.{}", b64(&mac))
}

/// The configuration the gate target runs: one authenticator (the HMAC key, a header and a
/// cookie source, username from email, groups, uid from sub, one extra from a claim), a
/// policy that allows example.com and denies kube-system and DELETE.
pub fn gate_config_json() -> String {
    serde_json::json!({
        "routes": [
            {
                "from": "https://k8s.example.com",
                "policy": [
                    {"allow": {"or": [{"domain": {"is": "example.com"}}]}},
                    {"deny": {"or": [
                        {"http_path": {"starts_with": "/api/v1/namespaces/kube-system"}},
                        {"http_method": "DELETE"}
                    ]}}
                ],
                "kubernetes_service_account_token": SA_TOKEN
            },
            {
                "from": "*.example.org",
                "policy": {"allow": {"or": [{"accept": true}]}},
                "kubernetes_service_account_token": SA_TOKEN
            }
        ],
        "jwt": [
            {
                "issuer": {"url": ISSUER, "audiences": [AUDIENCE]},
                "claimMappings": {
                    "username": {"claim": "email", "prefix": ""},
                    "groups": {"claim": "groups", "prefix": ""},
                    "uid": {"claim": "sub"}
                },
                "keys": {
                    "hmac": [{"kid": HMAC_KID, "alg": "HS256", "secret_base64": b64(HMAC_SECRET)}]
                },
                "from": [{"header": "authorization", "prefix": "Bearer "}, {"cookie": SESSION_COOKIE}],
                "extra_claims": {EXTRA_KEY: "project"}
            }
        ],
        "token_cache_entries": 8
    })
    .to_string()
}

/// A header name a hostile client would try, in a letter case chosen by `case_mask`.
#[derive(Arbitrary, Debug, Clone)]
pub enum HeaderName {
    Authorization,
    ProxyAuthorization,
    Cookie,
    ImpersonateUser,
    ImpersonateGroup,
    ImpersonateUid,
    ImpersonateExtra(String),
    Impersonate(String),
    WebSocketProtocol,
    Other(String),
}

#[derive(Arbitrary, Debug, Clone)]
pub struct FuzzHeader {
    pub name: HeaderName,
    pub case_mask: u64,
    pub value: String,
}

impl FuzzHeader {
    pub fn render(&self) -> (String, String) {
        let base = match &self.name {
            HeaderName::Authorization => "authorization".to_string(),
            HeaderName::ProxyAuthorization => "proxy-authorization".to_string(),
            HeaderName::Cookie => "cookie".to_string(),
            HeaderName::ImpersonateUser => "impersonate-user".to_string(),
            HeaderName::ImpersonateGroup => "impersonate-group".to_string(),
            HeaderName::ImpersonateUid => "impersonate-uid".to_string(),
            HeaderName::ImpersonateExtra(key) => format!("impersonate-extra-{key}"),
            HeaderName::Impersonate(rest) => format!("impersonate-{rest}"),
            HeaderName::WebSocketProtocol => "sec-websocket-protocol".to_string(),
            HeaderName::Other(name) => name.clone(),
        };
        (mix_case(&base, self.case_mask), self.value.clone())
    }
}

/// Upper-cases the ASCII letters whose bit is set in `mask` (cycling through 64 bits).
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

/// The plan applied as Envoy applies it: every value of each removed name goes (header
/// names are case-insensitive), then the additions are appended.
pub fn apply_plan(headers: &[(String, String)], plan: &HeaderPlan) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .iter()
        .filter(|(name, _)| !plan.remove.iter().any(|r| r.eq_ignore_ascii_case(name)))
        .cloned()
        .collect();
    out.extend(plan.add.iter().cloned());
    out
}

pub fn values<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// What every forwarded request must look like: exactly one Authorization, the service
/// account's; no Proxy-Authorization; no session cookie; the only impersonate-* headers are
/// the plan's own additions.
pub fn assert_forwarded_is_clean(
    forwarded: &[(String, String)],
    plan: &HeaderPlan,
    sa_token: &str,
    session_cookie: Option<&str>,
) {
    assert_eq!(
        values(forwarded, "authorization"),
        vec![format!("Bearer {sa_token}").as_str()],
        "exactly the service account's Authorization reaches the upstream"
    );
    assert!(
        values(forwarded, "proxy-authorization").is_empty(),
        "Proxy-Authorization reached the upstream"
    );
    let impersonation: Vec<(String, String)> = forwarded
        .iter()
        .filter(|(n, _)| n.to_ascii_lowercase().starts_with("impersonate-"))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    let planned: Vec<(String, String)> = plan
        .add
        .iter()
        .filter(|(n, _)| n.starts_with("impersonate-"))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
        .collect();
    assert_eq!(
        impersonation, planned,
        "a client impersonate-* header reached the upstream"
    );
    for value in values(forwarded, "sec-websocket-protocol") {
        assert!(
            !value.split(',').any(|p| p
                .trim()
                .to_ascii_lowercase()
                .starts_with("base64url.bearer.authorization.k8s.io.")),
            "a WebSocket bearer subprotocol reached the upstream: {value:?}"
        );
    }
    if let Some(cookie) = session_cookie {
        for value in values(forwarded, "cookie") {
            for pair in value.split(';') {
                let key = pair.split_once('=').map_or(pair, |(k, _)| k).trim();
                assert_ne!(
                    key, cookie,
                    "the session cookie reached the upstream: {value:?}"
                );
            }
        }
    }
}
