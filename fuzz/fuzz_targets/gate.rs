//! gate::decide as a whole: hostile headers in any case and repetition, raw or validly
//! signed tokens with fuzzer-chosen claims, in the Authorization header and/or the session
//! cookie, any method, path and host. Never panics; a refusal is a 401/403/404 Status (as
//! text for client-go's discovery requests, as src/status.rs answers them); an
//! allowed request carries a token we signed, and after Envoy applies the plan the upstream
//! sees only the service account's credentials and impersonation headers equal to the
//! verified claims; the log line never holds the token; the deny rules (kube-system paths,
//! DELETE) hold for the path the API server will act on.
#![no_main]

use arbitrary::Arbitrary;
use kubegate::config::Config;
use kubegate::gate::{decide, Outcome};
use kubegate::token_cache::VerifiedTokenCache;
use kubegate_fuzz::{
    apply_plan, assert_forwarded_is_clean, gate_config_json, mix_case, sign_hs256, values,
    FuzzHeader, AUDIENCE, HMAC_KID, ISSUER, NOW, SA_TOKEN, SESSION_COOKIE,
};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use std::cell::RefCell;

#[derive(Arbitrary, Debug)]
enum Method {
    Get,
    Post,
    Delete,
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Path {
    Pods,
    KubeSystem,
    Raw(String),
    Prefixed(String),
}

#[derive(Arbitrary, Debug)]
enum Authority {
    K8s,
    K8sMixed(u64, u16),
    Org(String),
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Token {
    Raw(String),
    Session {
        email: Option<String>,
        example_domain: bool,
        groups: Vec<String>,
        sub: Option<String>,
        project: Option<Project>,
        exp_delta: i32,
        iat_delta: i16,
        aud_list: bool,
        extra_key: String,
        extra_value: Option<String>,
    },
    Signed {
        header: Vec<u8>,
        payload: Vec<u8>,
    },
}

/// The `project` claim (the configured extra): every JSON shape.
#[derive(Arbitrary, Debug)]
enum Project {
    Text(String),
    List(Vec<String>),
    Number(i64),
    Flag(bool),
    Nested(u8),
}

impl Project {
    fn json(&self) -> Value {
        match self {
            Project::Text(t) => json!(t),
            Project::List(l) => json!(l),
            Project::Number(n) => json!(n),
            Project::Flag(b) => json!(b),
            Project::Nested(depth) => {
                let mut value = json!("x");
                for _ in 0..*depth {
                    value = json!([value]);
                }
                value
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
enum Place {
    Bearer { scheme_mask: u64, pad: u8 },
    Cookie,
    Both,
    BothWithOther(String),
}

#[derive(Arbitrary, Debug)]
struct Input {
    method: Method,
    path: Path,
    authority: Authority,
    headers: Vec<FuzzHeader>,
    token: Option<(Token, Place)>,
    repeat: u8,
}

thread_local! {
    static GATE: (Config, RefCell<VerifiedTokenCache>, bool) = {
        let config = Config::parse(gate_config_json().as_bytes(), &|_| None).expect("fuzz config");
        let cache = RefCell::new(VerifiedTokenCache::new(config.cache_entries));
        let normalises = gate_normalises_paths(&config);
        (config, cache, normalises)
    };
}

fn session_token(claims: Value) -> String {
    let header = json!({"alg": "HS256", "kid": HMAC_KID, "typ": "JWT"});
    sign_hs256(header.to_string().as_bytes(), claims.to_string().as_bytes())
}

/// Whether this build of the gate judges the decoded, dot-free path (the path module's
/// change to gate.rs): an encoded kube-system path must then be denied.
fn gate_normalises_paths(config: &Config) -> bool {
    let token = session_token(json!({
        "iss": ISSUER, "aud": AUDIENCE, "email": "probe@example.com", "sub": "probe", "exp": NOW + 300
    }));
    let headers = vec![
        (":method".to_string(), "GET".to_string()),
        (
            ":path".to_string(),
            "/api/v1/namespaces/kube%2Dsystem/secrets".to_string(),
        ),
        (":authority".to_string(), "k8s.example.com".to_string()),
        ("authorization".to_string(), format!("Bearer {token}")),
    ];
    let decision = decide(config, &mut VerifiedTokenCache::new(0), &headers, NOW);
    matches!(decision.outcome, Outcome::Refuse(_))
}

/// Whether client-go's discovery client made the request (src/status.rs answers these with
/// text, which it prints, instead of a Status it cannot decode): the discovery and version
/// roots, with or without a trailing slash or a query, or an Accept naming aggregated
/// discovery.
fn is_discovery(path: &str, accept: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    let path = path.strip_suffix('/').unwrap_or(path);
    matches!(path, "/api" | "/apis" | "/version") || accept.contains("apidiscovery.k8s.io")
}

/// A refusal's body and content type are exactly one of the two forms src/status.rs
/// produces: the message as one line of text for discovery requests, else a v1 Status JSON
/// that carries the code and the message.
fn check_refusal_body(refusal: &kubegate::status::Refusal, path: &str, accept: &str) {
    let content_type = refusal
        .headers()
        .into_iter()
        .find(|(name, _)| *name == "content-type")
        .map(|(_, value)| value)
        .expect("a refusal has a content type");
    let body = refusal.body();
    if is_discovery(path, accept) {
        assert!(
            refusal.plain_text,
            "a discovery request refused with JSON: {path:?}"
        );
        assert_eq!(body, format!("{}\n", refusal.message));
        assert!(content_type.starts_with("text/plain"), "{content_type}");
    } else {
        assert!(
            !refusal.plain_text,
            "refused with text: {path:?} {accept:?}"
        );
        let status: Value = serde_json::from_str(&body).expect("Status JSON");
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["apiVersion"], "v1");
        assert_eq!(status["status"], "Failure");
        assert_eq!(status["code"], json!(refusal.code));
        assert_eq!(status["message"], json!(refusal.message));
        assert_eq!(content_type, "application/json");
    }
}

fuzz_target!(|input: Input| {
    let method = match &input.method {
        Method::Get => "GET".to_string(),
        Method::Post => "POST".to_string(),
        Method::Delete => "DELETE".to_string(),
        Method::Other(m) => m.clone(),
    };
    let path = match &input.path {
        Path::Pods => "/api/v1/namespaces/default/pods?limit=500".to_string(),
        Path::KubeSystem => "/api/v1/namespaces/kube-system/secrets".to_string(),
        Path::Raw(p) => p.clone(),
        Path::Prefixed(p) => format!("/api/v1/namespaces/{p}"),
    };
    let authority = match &input.authority {
        Authority::K8s => "k8s.example.com".to_string(),
        Authority::K8sMixed(mask, port) => format!("{}:{port}", mix_case("k8s.example.com", *mask)),
        Authority::Org(label) => format!("{label}.example.org"),
        Authority::Raw(a) => a.clone(),
    };
    let mut headers = vec![
        (":method".to_string(), method.clone()),
        (":path".to_string(), path.clone()),
        (":authority".to_string(), authority),
    ];
    headers.extend(input.headers.iter().map(FuzzHeader::render));

    let mut signed: Option<(String, Value)> = None;
    if let Some((token, place)) = &input.token {
        let token_text = match token {
            Token::Raw(t) => t.clone(),
            Token::Session {
                email,
                example_domain,
                groups,
                sub,
                project,
                exp_delta,
                iat_delta,
                aud_list,
                extra_key,
                extra_value,
            } => {
                let email = match (email, example_domain) {
                    (Some(e), true) => format!("{e}@example.com"),
                    (Some(e), false) => e.clone(),
                    (None, _) => "someone@example.com".to_string(),
                };
                let mut claims = json!({
                    "iss": ISSUER,
                    "aud": if *aud_list { json!([AUDIENCE, "other"]) } else { json!(AUDIENCE) },
                    "email": email,
                    "groups": groups,
                    "exp": (NOW as i64 + i64::from(*exp_delta)).max(0),
                    "iat": (NOW as i64 + i64::from(*iat_delta)).max(0),
                });
                if let Some(sub) = sub {
                    claims["sub"] = json!(sub);
                }
                if let Some(project) = project {
                    claims["project"] = project.json();
                }
                if let Some(value) = extra_value {
                    claims[extra_key.as_str()] = json!(value);
                }
                let token = session_token(claims.clone());
                signed = Some((token.clone(), claims));
                token
            }
            Token::Signed { header, payload } => {
                let token = sign_hs256(header, payload);
                if let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(payload) {
                    signed = Some((token.clone(), Value::Object(claims)));
                }
                token
            }
        };
        match place {
            Place::Bearer { scheme_mask, pad } => {
                let spaces = " ".repeat(usize::from(pad % 4));
                headers.push((
                    "authorization".into(),
                    format!(
                        "{}{spaces}{token_text}{spaces}",
                        mix_case("Bearer ", *scheme_mask)
                    ),
                ));
            }
            Place::Cookie => {
                headers.push(("cookie".into(), format!("{SESSION_COOKIE}={token_text}")))
            }
            Place::Both => {
                headers.push(("authorization".into(), format!("Bearer {token_text}")));
                headers.push((
                    "cookie".into(),
                    format!("a=b; {SESSION_COOKIE}={token_text}"),
                ));
            }
            Place::BothWithOther(other) => {
                headers.push(("authorization".into(), format!("Bearer {token_text}")));
                headers.push(("cookie".into(), format!("{SESSION_COOKIE}={other}")));
            }
        }
    }

    // The gate chooses the refusal's format by the first Accept header, in any letter case.
    let accept = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("accept"))
        .map_or("", |(_, v)| v.as_str());

    GATE.with(|(config, cache, normalises)| {
        for _ in 0..=(input.repeat % 3) {
            let decision = decide(config, &mut cache.borrow_mut(), &headers, NOW);
            let line = decision.log.to_string();
            assert!(!line.contains('\n'));
            assert!(!line.contains(SA_TOKEN));
            if let Some((token, _)) = &signed {
                assert!(
                    !line.contains(token.as_str()),
                    "the log line holds the token"
                );
            }
            match decision.outcome {
                Outcome::Refuse(refusal) => {
                    assert!(matches!(refusal.code, 401 | 403 | 404), "{}", refusal.code);
                    check_refusal_body(&refusal, &path, accept);
                }
                Outcome::Allow(plan) => {
                    let (token, claims) = signed.as_ref().expect("allowed without a signed token");
                    assert!(
                        headers.iter().any(|(_, v)| v.contains(token.as_str())),
                        "allowed on a token that is not the one we signed"
                    );
                    let forwarded = apply_plan(&headers, &plan);
                    assert_forwarded_is_clean(&forwarded, &plan, SA_TOKEN, Some(SESSION_COOKIE));
                    assert_eq!(
                        values(&forwarded, "impersonate-user"),
                        vec![claims["email"].as_str().expect("a user")]
                    );
                    // The API server's rule for a username from `email`: email_verified is
                    // absent or true.
                    assert!(
                        matches!(claims.get("email_verified"), None | Some(Value::Bool(true))),
                        "allowed with email_verified {:?}",
                        claims.get("email_verified")
                    );
                    let groups: Vec<&str> = match &claims["groups"] {
                        Value::Array(list) => list
                            .iter()
                            .map(|g| g.as_str().expect("string groups"))
                            .collect(),
                        Value::String(g) => vec![g.as_str()],
                        _ => Vec::new(),
                    };
                    assert_eq!(values(&forwarded, "impersonate-group"), groups);
                    assert_eq!(
                        values(&forwarded, "impersonate-uid"),
                        claims["sub"].as_str().into_iter().collect::<Vec<_>>()
                    );
                    for group in groups
                        .iter()
                        .chain(std::iter::once(&claims["email"].as_str().unwrap_or("")))
                    {
                        assert!(!group.to_ascii_lowercase().starts_with("system:"));
                    }
                    let route_is_k8s =
                        decision.log.route.as_deref() == Some("https://k8s.example.com");
                    if route_is_k8s {
                        assert!(claims["email"]
                            .as_str()
                            .unwrap_or("")
                            .ends_with("@example.com"));
                        assert_ne!(method, "DELETE", "the DELETE deny rule was bypassed");
                        if *normalises {
                            let judged = kubegate::path::policy_path(&path)
                                .expect("an allowed path is unambiguous");
                            assert!(
                                !judged.starts_with("/api/v1/namespaces/kube-system"),
                                "the kube-system deny rule was bypassed with {path:?}"
                            );
                        }
                    }
                }
            }
        }
    });
});
