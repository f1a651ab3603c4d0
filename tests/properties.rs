//! Properties over arbitrary request headers (names in random letter case, repeated,
//! arbitrary values) and arbitrary claims:
//! - what reaches the upstream (the request headers with the header plan applied as Envoy
//!   applies it) never carries the client's Authorization, Proxy-Authorization, session
//!   cookie or any impersonate-* header;
//! - a refused request never reaches the upstream;
//! - the impersonation headers always match the verified claims.
//!
//! Natively through `gate::decide`, and differentially through the real kubegate.wasm in
//! the host: the module forwards exactly when the native decision allows, with the same
//! refusal status otherwise.

mod common;
mod hostile;

use hostile::{assert_clean_upstream, mix_case, sign, values, SESSION_COOKIE};
use kubegate::config::Config;
use kubegate::gate::{decide, Outcome};
use kubegate::token_cache::VerifiedTokenCache;
use kubegate::upstream::HeaderPlan;
use kubegate_host::{FilterOutcome, FilterRequest, Plugin};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use serde_json::{json, Value};

fn now() -> u64 {
    kubegate_testkit::tokens::now()
}

fn native_config() -> Config {
    let env = |name: &str| (name == "KUBEGATE_SA_TOKEN").then(|| common::SA_TOKEN.to_string());
    Config::parse(hostile::config().to_string().as_bytes(), &env).expect("the test config")
}

/// The plan applied as Envoy applies it: remove every value of each name (any case), append.
fn apply(headers: &[(String, String)], plan: &HeaderPlan) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = headers
        .iter()
        .filter(|(n, _)| !plan.remove.iter().any(|r| r.eq_ignore_ascii_case(n)))
        .cloned()
        .collect();
    out.extend(plan.add.iter().cloned());
    out
}

/// Header names a client would use to smuggle credentials or identity, in a random case.
fn smuggling_name(with_credentials: bool) -> BoxedStrategy<String> {
    let mut names: Vec<BoxedStrategy<String>> = vec![
        Just("proxy-authorization".to_string()).boxed(),
        Just("impersonate-user".to_string()).boxed(),
        Just("impersonate-group".to_string()).boxed(),
        Just("impersonate-uid".to_string()).boxed(),
        Just("impersonate-extra-scopes".to_string()).boxed(),
        "impersonate-[a-z0-9%._-]{0,16}".boxed(),
        Just("sec-websocket-protocol".to_string()).boxed(),
        "x-[a-z-]{1,12}".boxed(),
        Just("accept".to_string()).boxed(),
        Just("x-forwarded-for".to_string()).boxed(),
    ];
    if with_credentials {
        names.push(Just("authorization".to_string()).boxed());
        names.push(Just("cookie".to_string()).boxed());
    }
    (proptest::strategy::Union::new(names), any::<u64>())
        .prop_map(|(name, mask)| mix_case(&name, mask))
        .boxed()
}

/// Values as a proxy may deliver them: visible ASCII and spaces, sometimes shaped like a
/// credential or a cookie list.
fn header_value() -> BoxedStrategy<String> {
    prop_oneof![
        "[ -~]{0,48}",
        "[ -~]{0,8}".prop_map(|v| format!("Bearer {v}")),
        "[a-z]{1,8}".prop_map(|v| format!("{SESSION_COOKIE}={v}; other=1")),
        Just("system:masters".to_string()),
        "[a-zA-Z0-9]{0,12}"
            .prop_map(|v| format!("v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.{v}")),
    ]
    .boxed()
}

fn headers(with_credentials: bool) -> BoxedStrategy<Vec<(String, String)>> {
    proptest::collection::vec((smuggling_name(with_credentials), header_value()), 0..12).boxed()
}

/// Claims that pass every rule: a user at example.com, groups, uid, extra.
fn valid_claims() -> BoxedStrategy<Value> {
    (
        "[a-z0-9._+-]{1,16}",
        proptest::collection::vec("[A-Za-z0-9._/-]{1,16}", 0..5),
        "[A-Za-z0-9-]{1,16}",
        proptest::option::of(proptest::collection::vec("[!-~]{1,12}", 1..3)),
    )
        .prop_map(|(local, groups, sub, project)| {
            let mut claims = hostile::claims(&format!("{local}@example.com"), &[], now());
            claims["groups"] = json!(groups);
            claims["sub"] = json!(sub);
            if let Some(project) = project {
                claims["project"] = json!(project);
            }
            claims
        })
        .boxed()
}

/// Claims of any shape a signer could put in a token: reserved names, control characters,
/// wrong types, other domains.
fn any_claims() -> BoxedStrategy<Value> {
    let text = prop_oneof![
        "[ -~]{0,16}",
        Just("system:masters".to_string()),
        Just("SYSTEM:serviceaccount:kube-system:default".to_string()),
        Just("a\r\nimpersonate-group: system:masters".to_string()),
        Just(" padded ".to_string()),
    ];
    let value = prop_oneof![
        text.clone().prop_map(Value::from),
        proptest::collection::vec(text.clone(), 0..3).prop_map(|v| json!(v)),
        any::<i64>().prop_map(Value::from),
        Just(Value::Null),
        Just(json!([1, "x"])),
    ];
    (
        prop_oneof![
            "[a-z]{1,8}@example\\.com",
            "[a-z]{1,8}@evil\\.example",
            text
        ],
        value.clone(),
        value.clone(),
        value,
        any::<bool>(),
    )
        .prop_map(|(email, groups, sub, project, readers)| {
            let mut claims = hostile::claims(&email, &[], now());
            claims["groups"] = if readers { json!(["readers"]) } else { groups };
            claims["sub"] = sub;
            claims["project"] = project;
            claims
        })
        .boxed()
}

/// Where the client puts its token: the Authorization header (scheme in any case, padded)
/// or the session cookie among others.
#[derive(Clone, Debug)]
enum Place {
    Header { scheme_mask: u64, pad: usize },
    Cookie,
}

fn place() -> BoxedStrategy<Place> {
    prop_oneof![
        (any::<u64>(), 0usize..3).prop_map(|(scheme_mask, pad)| Place::Header { scheme_mask, pad }),
        Just(Place::Cookie),
    ]
    .boxed()
}

fn with_token(
    mut headers: Vec<(String, String)>,
    token: &str,
    place: &Place,
    at: usize,
) -> Vec<(String, String)> {
    let header = match place {
        Place::Header { scheme_mask, pad } => {
            let spaces = " ".repeat(*pad);
            (
                "authorization".to_string(),
                format!(
                    "{}{spaces}{token}{spaces}",
                    mix_case("Bearer ", *scheme_mask)
                ),
            )
        }
        Place::Cookie => (
            "cookie".to_string(),
            format!("theme=dark; {SESSION_COOKIE}={token}; lang=en"),
        ),
    };
    let at = at % (headers.len() + 1);
    headers.insert(at, header);
    headers
}

fn request_headers(method: &str, path: &str, rest: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut headers = vec![
        (":method".to_string(), method.to_string()),
        (":path".to_string(), path.to_string()),
        (":authority".to_string(), "localhost:8443".to_string()),
    ];
    headers.extend(rest);
    headers
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any smuggling headers beside a valid token: always allowed, and what reaches the
    /// upstream is only the gateway's credentials and the verified identity.
    #[test]
    fn smuggled_headers_never_reach_the_upstream(
        extra in headers(false),
        claims in valid_claims(),
        place in place(),
        at in any::<usize>(),
    ) {
        let config = native_config();
        let token = sign(&claims);
        let headers = request_headers("GET", "/api/v1/namespaces/default/pods?limit=500", with_token(extra, &token, &place, at));
        let decision = decide(&config, &mut VerifiedTokenCache::new(0), &headers, now());
        let Outcome::Allow(plan) = decision.outcome else {
            panic!("a valid token beside smuggling headers was refused: {:?}", decision.log);
        };
        let forwarded = apply(&headers, &plan);
        assert_clean_upstream(&forwarded, common::SA_TOKEN, &claims, Some(&token));
        prop_assert!(!decision.log.to_string().contains(&token));
    }

    /// Anything at all, credentials included (repeated Authorization, competing cookies,
    /// hostile claims): whatever is allowed came with our token and reaches the upstream
    /// clean; a repeated Authorization is always refused; a reserved name is never sent.
    #[test]
    fn whatever_is_allowed_is_clean_and_carries_the_verified_identity(
        extra in headers(true),
        claims in any_claims(),
        sign_it in any::<bool>(),
        place in place(),
        at in any::<usize>(),
        method in prop_oneof![Just("GET"), Just("POST"), Just("DELETE"), Just("get")],
        path in prop_oneof![
            Just("/api/v1/namespaces/default/pods".to_string()),
            Just("/api/v1/namespaces/kube-system/secrets".to_string()),
            "/[a-z/]{0,20}",
        ],
    ) {
        let config = native_config();
        let token = sign(&claims);
        let rest = if sign_it { with_token(extra, &token, &place, at) } else { extra };
        let headers = request_headers(method, &path, rest);
        let decision = decide(&config, &mut VerifiedTokenCache::new(0), &headers, now());
        let authorizations = values(&headers, "authorization").len();
        match decision.outcome {
            Outcome::Refuse(refusal) => {
                prop_assert!(matches!(refusal.code, 401 | 403), "{}", refusal.code);
            }
            Outcome::Allow(plan) => {
                prop_assert!(sign_it, "allowed without our token: {headers:?}");
                prop_assert!(authorizations <= 1, "allowed with a repeated Authorization");
                let forwarded = apply(&headers, &plan);
                assert_clean_upstream(&forwarded, common::SA_TOKEN, &claims, Some(&token));
                prop_assert_ne!(method, "DELETE");
                prop_assert!(!path.starts_with("/api/v1/namespaces/kube-system"));
                // Reserved names matter for the user and groups (system:masters is
                // cluster-admin); extra values carry no RBAC meaning.
                for (name, value) in &forwarded {
                    if name == "impersonate-user" || name == "impersonate-group" {
                        prop_assert!(!value.to_ascii_lowercase().starts_with("system:"));
                        prop_assert!(!value.chars().any(char::is_control));
                    }
                }
            }
        }
        if authorizations > 1 {
            // Refused as unauthenticated; a gate that refuses an unjudgeable method or path
            // first (src/path.rs) may answer 403 for those instead.
            let judgeable = kubegate::path::check_method(method).is_ok()
                && kubegate::path::policy_path(&path).is_ok();
            prop_assert!(
                decision.log.kind == kubegate::gate::Kind::Unauthenticated
                    || (!judgeable && decision.log.kind == kubegate::gate::Kind::Forbidden),
                "{:?}",
                decision.log
            );
        }
    }
}

/// The real module agrees with the native decision on random requests: it forwards exactly
/// what `decide` allows (clean, with the verified identity) and answers every refusal
/// locally with the same status, so a refused request never reaches the upstream.
#[test]
fn the_wasm_filter_forwards_exactly_what_the_gate_allows() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let plugin = Plugin::load(common::spec(&hostile::config(), 2)).expect("the module loads");
    let config = native_config();
    let mut runner = TestRunner::new(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    });
    // Half the cases are benign (valid claims, no competing credentials) so both outcomes
    // occur often; the other half is anything at all.
    let strategy = (
        prop_oneof![
            (headers(false), valid_claims(), Just(true)),
            (headers(true), any_claims(), any::<bool>()),
        ],
        place(),
        any::<usize>(),
        prop_oneof![Just("GET"), Just("DELETE")],
    );
    let forwarded_count = std::cell::Cell::new(0u64);
    let refused_count = std::cell::Cell::new(0u64);
    runner
        .run(
            &strategy,
            |((extra, claims, sign_it), place, at, method)| {
                let token = sign(&claims);
                let rest = if sign_it {
                    with_token(extra, &token, &place, at)
                } else {
                    extra
                };
                let headers = request_headers(method, "/api/v1/namespaces/default/pods", rest);
                let native = decide(&config, &mut VerifiedTokenCache::new(0), &headers, now());
                let mut request =
                    FilterRequest::new(method, "/api/v1/namespaces/default/pods", "localhost:8443");
                for (name, value) in headers.iter().skip(3) {
                    request = request.header(name, value);
                }
                let outcome = runtime.block_on(plugin.handle(request));
                match (&native.outcome, &outcome) {
                    (
                        Outcome::Allow(_),
                        FilterOutcome::Forward {
                            headers: forwarded, ..
                        },
                    ) => {
                        assert_clean_upstream(forwarded, common::SA_TOKEN, &claims, Some(&token));
                        forwarded_count.set(forwarded_count.get() + 1);
                    }
                    (Outcome::Refuse(refusal), FilterOutcome::LocalReply { status, .. }) => {
                        prop_assert_eq!(refusal.code, *status);
                        refused_count.set(refused_count.get() + 1);
                    }
                    (native, wasm) => {
                        return Err(TestCaseError::fail(format!(
                            "native {native:?} but the module gave {wasm:?}"
                        )))
                    }
                }
                Ok(())
            },
        )
        .unwrap();
    let (forwarded, refused) = (forwarded_count.get(), refused_count.get());
    assert!(
        forwarded > 0 && refused > 0,
        "both outcomes exercised: {forwarded} forwarded, {refused} refused"
    );
    assert_eq!(plugin.metric("kubegate.requests.allowed"), Some(forwarded));
}
