//! The decision record (src/audit.rs) for real decisions of `gate::decide`: the audit JSON
//! line, the filter state values and the text line carry who, what and why, and never a
//! token: not the session token (valid, expired, tampered or garbage), not a piece of it,
//! not the service-account token.

use kubegate::audit::{DecisionLogFormat, Reported};
use kubegate::config::Config;
use kubegate::gate::{decide, Decision};
use kubegate::token_cache::VerifiedTokenCache;
use kubegate_testkit::tokens::{SessionClaims, Signer};
use serde_json::Value;

const NOW: u64 = 1_800_000_000;
const SA_TOKEN: &str = "sa-token-0123456789abcdef";

fn env(name: &str) -> Option<String> {
    (name == "KUBEGATE_SA_TOKEN").then(|| SA_TOKEN.to_string())
}

fn config(decision_log: Option<&str>) -> Config {
    let mut value: Value = serde_json::from_str(include_str!("../filter-config/dev.json")).unwrap();
    if let Some(format) = decision_log {
        value["decision_log"] = Value::String(format.to_string());
    }
    Config::parse(value.to_string().as_bytes(), &env).unwrap()
}

fn token(email: &str, groups: &[&str], now: u64) -> String {
    Signer::dev()
        .unwrap()
        .sign(&SessionClaims::dev(email, groups, now))
        .unwrap()
}

fn request(path: &str, authority: &str, authorization: Option<&str>) -> Vec<(String, String)> {
    let mut headers = vec![
        (":method".to_string(), "GET".to_string()),
        (":path".to_string(), path.to_string()),
        (":authority".to_string(), authority.to_string()),
        ("x-request-id".to_string(), "4c1e6bd0-req".to_string()),
    ];
    if let Some(value) = authorization {
        headers.push(("authorization".to_string(), value.to_string()));
    }
    headers
}

fn path_of(headers: &[(String, String)]) -> &str {
    &headers.iter().find(|(n, _)| n == ":path").unwrap().1
}

/// Everything kubegate reports about one decision, as text.
fn reported(decision: &Decision, headers: &[(String, String)]) -> (Value, Vec<String>, String) {
    let reported = Reported::of(&decision.log);
    let line = reported.audit_line(path_of(headers), Some("4c1e6bd0-req"));
    assert!(!line.contains('\n'));
    let json: Value = serde_json::from_str(&line).unwrap();
    let properties = reported
        .properties()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    (json, properties, reported.text_line())
}

fn assert_no_secret(token: &str, texts: &[String]) {
    for text in texts {
        assert!(!text.contains(SA_TOKEN), "{text}");
        if token.is_empty() {
            continue;
        }
        assert!(!text.contains(token), "{text}");
        // Not even one part of it (header, claims, signature) or its last characters.
        for part in token.split('.').filter(|p| p.len() >= 8) {
            assert!(!text.contains(part), "{part:?} in {text}");
        }
        let tail = &token[token.len().saturating_sub(12)..];
        assert!(!text.contains(tail), "{tail:?} in {text}");
    }
}

#[test]
fn the_decision_log_field_selects_the_format() {
    assert_eq!(config(None).decision_log, DecisionLogFormat::Text);
    assert_eq!(config(Some("text")).decision_log, DecisionLogFormat::Text);
    assert_eq!(
        config(Some("audit_json")).decision_log,
        DecisionLogFormat::AuditJson
    );
    let mut value: Value = serde_json::from_str(include_str!("../filter-config/dev.json")).unwrap();
    value["decision_log"] = Value::String("json".into());
    let err = Config::parse(value.to_string().as_bytes(), &env).unwrap_err();
    assert!(err.to_string().contains("decision_log"), "{err}");
}

#[test]
fn allowed_and_refused_decisions_are_reported_without_any_token() {
    let config = config(Some("audit_json"));
    let good = token("someuser@example.com", &["developers", "oncall"], NOW);
    let outsider = token("mallory@evil.example", &["developers"], NOW);
    let expired = token("someuser@example.com", &[], NOW - 3600);
    let mut tampered = good.clone();
    tampered.truncate(good.len() - 4);
    tampered.push_str("AAAA");
    let garbage = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXBhcnQ";
    let pods = "/api/v1/namespaces/default/pods?watch=true";
    let cases: Vec<(&str, String, &str, &str)> = vec![
        // (token, path, authority, expected decision)
        (&good, pods.to_string(), "localhost:8443", "allowed"),
        (&outsider, pods.to_string(), "localhost:8443", "forbidden"),
        (
            &expired,
            pods.to_string(),
            "localhost:8443",
            "unauthenticated",
        ),
        (
            &tampered,
            pods.to_string(),
            "localhost:8443",
            "unauthenticated",
        ),
        (
            garbage,
            pods.to_string(),
            "localhost:8443",
            "unauthenticated",
        ),
        ("", pods.to_string(), "localhost:8443", "unauthenticated"),
        (&good, pods.to_string(), "elsewhere.example", "not_found"),
        // The token in the path or query (a client mistake) does not reach the record.
        (
            &good,
            format!("/api/v1/namespaces/default/pods?access_token={good}"),
            "localhost:8443",
            "allowed",
        ),
    ];
    for (token, path, authority, expected) in cases {
        let bearer = format!("Bearer {token}");
        let headers = request(
            &path,
            authority,
            (!token.is_empty()).then_some(bearer.as_str()),
        );
        let mut cache = VerifiedTokenCache::new(16);
        let decision = decide(&config, &mut cache, &headers, NOW);
        let (json, properties, text) = reported(&decision, &headers);
        assert_eq!(
            json["annotations"]["kubegate.io/decision"], expected,
            "{json}"
        );
        assert_eq!(properties[2], format!("kubegate.decision={expected}"));
        assert_eq!(json["auditID"], "4c1e6bd0-req");
        let mut texts = properties.clone();
        texts.push(json.to_string());
        texts.push(text);
        assert_no_secret(token, &texts);
        match expected {
            "allowed" => {
                assert_eq!(json["user"]["username"], "someuser@example.com");
                assert_eq!(
                    json["user"]["groups"],
                    serde_json::json!(["developers", "oncall"])
                );
                assert_eq!(
                    json["verb"],
                    if path.contains("watch") {
                        "watch"
                    } else {
                        "list"
                    }
                );
                assert_eq!(json["objectRef"]["resource"], "pods");
                assert_eq!(json["objectRef"]["namespace"], "default");
                assert_eq!(properties[0], "kubegate.user=someuser@example.com");
                assert_eq!(properties[1], "kubegate.groups=developers,oncall");
                assert_eq!(properties[4], "kubegate.route=https://localhost");
            }
            "forbidden" => {
                assert_eq!(json["user"]["username"], "mallory@evil.example");
                assert_eq!(json["responseStatus"]["code"], 403);
                assert_eq!(
                    json["annotations"]["authorization.k8s.io/decision"],
                    "forbid"
                );
                assert_eq!(properties[0], "kubegate.user=mallory@evil.example");
            }
            _ => {
                assert!(json.get("user").is_none(), "{json}");
                assert_eq!(properties[0], "kubegate.user=");
            }
        }
    }
}
