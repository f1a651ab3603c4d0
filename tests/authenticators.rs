//! Authentication like the API server's structured authentication, through the real
//! kubegate.wasm in our host: one authenticator per issuer with its own keys, audiences,
//! token sources, claim validation rules and claim mappings, and the API server's
//! load-time rules (one refused configuration per rule).

mod common;
#[path = "hostile/mod.rs"]
mod hostile;

use common::{load, spec, SA_TOKEN};
use hostile::{b64, sign_raw_with, values};
use kubegate_host::{FilterOutcome, FilterRequest, Plugin};
use kubegate_testkit::tokens::{now, Signer, DEV_KEY_ID};
use serde_json::{json, Value};

const ISSUER_A: &str = "https://idp-a.example.com";
const ISSUER_B: &str = "https://idp-b.example.com";
const SECRET_A: &[u8; 32] = b"issuer-a-hmac-secret-32-bytes-aa";
const SECRET_B: &[u8; 32] = b"issuer-b-hmac-secret-32-bytes-bb";
const HOST: &str = "localhost";

/// A: HMAC kid "a", audiences k8s-a or kubectl (MatchAny), user = email, groups with
/// prefix "oidc:", uid = sub, claim rule hd == example.com. B: HMAC kid "b" and the
/// ES256 dev key, audience k8s-b, user = sub with prefix "b:", no groups mapping, tokens
/// only in `x-b-assertion`.
fn two_issuers() -> Value {
    json!({
        "routes": [{
            "from": format!("https://{HOST}"),
            "policy": [{"allow": {"or": [{"authenticated_user": true}]}}],
            "kubernetes_service_account_token_env": "KUBEGATE_SA_TOKEN"
        }],
        "jwt": [
            {
                "issuer": {"url": ISSUER_A, "audiences": ["k8s-a", "kubectl"], "audienceMatchPolicy": "MatchAny"},
                "claimValidationRules": [{"claim": "hd", "requiredValue": "example.com"}],
                "claimMappings": {
                    "username": {"claim": "email", "prefix": ""},
                    "groups": {"claim": "groups", "prefix": "oidc:"},
                    "uid": {"claim": "sub"}
                },
                "keys": {"hmac": [{"kid": "a", "alg": "HS256", "secret_base64": b64(SECRET_A)}]}
            },
            {
                "issuer": {"url": ISSUER_B, "audiences": ["k8s-b"]},
                "claimMappings": {"username": {"claim": "sub", "prefix": "b:"}},
                "keys": {
                    "hmac": [{"kid": "b", "alg": "HS256", "secret_base64": b64(SECRET_B)}],
                    "jwks": hostile::dev_json()["jwt"][0]["keys"]["jwks"].clone()
                },
                "from": [{"header": "x-b-assertion"}]
            }
        ]
    })
}

fn claims_a(email: &str) -> Value {
    let t = now();
    json!({"iss": ISSUER_A, "aud": "k8s-a", "sub": "sub-a", "email": email, "hd": "example.com",
           "groups": ["dev"], "iat": t, "exp": t + 300})
}

fn claims_b(sub: &str) -> Value {
    let t = now();
    json!({"iss": ISSUER_B, "aud": "k8s-b", "sub": sub, "iat": t, "exp": t + 300})
}

fn hs256(kid: &str, claims: &Value, secret: &[u8]) -> String {
    let header = json!({"alg": "HS256", "kid": kid, "typ": "JWT"});
    sign_raw_with(
        header.to_string().as_bytes(),
        claims.to_string().as_bytes(),
        secret,
    )
}

fn es256_dev(claims: &Value) -> String {
    let Value::Object(map) = claims.clone() else {
        panic!("claims are an object")
    };
    Signer::dev().unwrap().sign_json(map).unwrap()
}

fn pods() -> FilterRequest {
    FilterRequest::new("GET", "/api/v1/namespaces/default/pods", HOST)
}

async fn as_bearer(plugin: &Plugin, token: &str) -> FilterOutcome {
    plugin
        .handle(pods().header("authorization", &format!("Bearer {token}")))
        .await
}

async fn as_assertion(plugin: &Plugin, token: &str) -> FilterOutcome {
    plugin.handle(pods().header("x-b-assertion", token)).await
}

fn forwarded(outcome: &FilterOutcome) -> Vec<(String, String)> {
    match outcome {
        FilterOutcome::Forward { headers, .. } => headers.clone(),
        other => panic!("expected the request to be forwarded, got {other:?}"),
    }
}

/// The status and Status message of a local reply.
fn refused(outcome: &FilterOutcome) -> (u16, String) {
    match outcome {
        FilterOutcome::LocalReply { status, body, .. } => {
            let body: Value = serde_json::from_slice(body).unwrap();
            (
                *status,
                body["message"].as_str().unwrap_or_default().to_string(),
            )
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn assert_unauthenticated(outcome: &FilterOutcome, says: &str) {
    let (status, message) = refused(outcome);
    assert_eq!(status, 401, "{message}");
    assert!(message.contains(says), "{message:?} does not say {says:?}");
}

#[tokio::test]
async fn each_issuer_verifies_only_with_its_own_keys_in_both_directions() {
    let plugin = load(&two_issuers());
    // Controls: each issuer's token with its own key passes.
    let ok_a = forwarded(
        &as_bearer(
            &plugin,
            &hs256("a", &claims_a("alice@example.com"), SECRET_A),
        )
        .await,
    );
    assert_eq!(values(&ok_a, "impersonate-user"), vec!["alice@example.com"]);
    assert_eq!(
        values(&ok_a, "authorization"),
        vec![format!("Bearer {SA_TOKEN}")]
    );
    let ok_b = forwarded(&as_assertion(&plugin, &hs256("b", &claims_b("bob"), SECRET_B)).await);
    assert_eq!(values(&ok_b, "impersonate-user"), vec!["b:bob"]);
    let ok_b_es = forwarded(&as_assertion(&plugin, &es256_dev(&claims_b("carol"))).await);
    assert_eq!(values(&ok_b_es, "impersonate-user"), vec!["b:carol"]);

    // A's claims under B's key, whatever the kid says: B's HMAC secret, B's ES256 key.
    let a_claims = claims_a("mallory@example.com");
    for forged in [
        hs256("b", &a_claims, SECRET_B),
        hs256("a", &a_claims, SECRET_B),
        hs256(DEV_KEY_ID, &a_claims, SECRET_B),
        es256_dev(&a_claims),
    ] {
        let outcome = as_bearer(&plugin, &forged).await;
        assert_eq!(refused(&outcome).0, 401, "{:?}", refused(&outcome));
    }
    // And B's claims under A's key.
    let b_claims = claims_b("mallory");
    for forged in [
        hs256("a", &b_claims, SECRET_A),
        hs256("b", &b_claims, SECRET_A),
    ] {
        assert_eq!(refused(&as_assertion(&plugin, &forged).await).0, 401);
    }
    // An issuer nobody configured.
    let mut foreign = claims_a("x@example.com");
    foreign["iss"] = json!("https://idp-c.example.com");
    assert_unauthenticated(
        &as_bearer(&plugin, &hs256("a", &foreign, SECRET_A)).await,
        "no authenticator for the token's issuer",
    );
    assert_eq!(plugin.metric("kubegate.requests.allowed"), Some(3));
}

#[tokio::test]
async fn audiences_are_checked_per_authenticator() {
    let plugin = load(&two_issuers());
    let mut a = claims_a("alice@example.com");
    for (aud, passes) in [
        (json!("k8s-a"), true),
        (json!("kubectl"), true),
        (json!(["other", "kubectl"]), true),
        (json!("k8s-b"), false),
        (json!(["k8s-b"]), false),
        (json!("other"), false),
    ] {
        a["aud"] = aud.clone();
        let outcome = as_bearer(&plugin, &hs256("a", &a, SECRET_A)).await;
        assert_eq!(
            matches!(outcome, FilterOutcome::Forward { .. }),
            passes,
            "A, aud {aud}"
        );
    }
    let mut b = claims_b("bob");
    for (aud, passes) in [
        (json!("k8s-b"), true),
        (json!("k8s-a"), false),
        (json!("kubectl"), false),
    ] {
        b["aud"] = aud.clone();
        let outcome = as_assertion(&plugin, &hs256("b", &b, SECRET_B)).await;
        assert_eq!(
            matches!(outcome, FilterOutcome::Forward { .. }),
            passes,
            "B, aud {aud}"
        );
    }
}

#[tokio::test]
async fn tokens_are_taken_only_from_their_authenticators_sources() {
    let plugin = load(&two_issuers());
    // B's token as a bearer, A's token in B's header: both refused.
    assert_unauthenticated(
        &as_bearer(&plugin, &hs256("b", &claims_b("bob"), SECRET_B)).await,
        "not accepted in the header or cookie it came in",
    );
    assert_unauthenticated(
        &as_assertion(
            &plugin,
            &hs256("a", &claims_a("alice@example.com"), SECRET_A),
        )
        .await,
        "not accepted in the header or cookie it came in",
    );
    // Two different tokens at once are refused, whichever issuers they are from.
    let both = pods()
        .header(
            "authorization",
            &format!(
                "Bearer {}",
                hs256("a", &claims_a("alice@example.com"), SECRET_A)
            ),
        )
        .header("x-b-assertion", &hs256("b", &claims_b("bob"), SECRET_B));
    assert_eq!(refused(&plugin.handle(both).await).0, 401);
    // The other issuer's header never reaches the API server either.
    let with_assertion = pods()
        .header(
            "authorization",
            &format!(
                "Bearer {}",
                hs256("a", &claims_a("alice@example.com"), SECRET_A)
            ),
        )
        .header("X-B-Assertion", "");
    let headers = forwarded(&plugin.handle(with_assertion).await);
    assert!(values(&headers, "x-b-assertion").is_empty());
}

#[tokio::test]
async fn email_verified_matrix_follows_the_api_server() {
    let plugin = load(&two_issuers());
    for (value, outcome) in [
        (None, Ok(())),
        (Some(json!(true)), Ok(())),
        (Some(json!(false)), Err("email is not verified")),
        (Some(json!(null)), Err("email is not verified")),
        (
            Some(json!("false")),
            Err("email_verified claim is not a boolean"),
        ),
        (
            Some(json!("true")),
            Err("email_verified claim is not a boolean"),
        ),
        (Some(json!(1)), Err("email_verified claim is not a boolean")),
    ] {
        let mut claims = claims_a("alice@example.com");
        if let Some(value) = &value {
            claims["email_verified"] = value.clone();
        }
        let result = as_bearer(&plugin, &hs256("a", &claims, SECRET_A)).await;
        match outcome {
            Ok(()) => {
                let headers = forwarded(&result);
                assert_eq!(
                    values(&headers, "impersonate-user"),
                    vec!["alice@example.com"],
                    "{value:?}"
                );
            }
            Err(says) => assert_unauthenticated(&result, says),
        }
    }
    // B's user is `sub`: email_verified does not matter there.
    let mut b = claims_b("bob");
    b["email"] = json!("bob@example.com");
    b["email_verified"] = json!(false);
    forwarded(&as_assertion(&plugin, &hs256("b", &b, SECRET_B)).await);
}

#[tokio::test]
async fn groups_as_string_array_absent_and_with_non_string_items() {
    let plugin = load(&two_issuers());
    for (groups, expected) in [
        (Some(json!("dev")), Ok(vec!["oidc:dev"])),
        (
            Some(json!(["dev", "ops"])),
            Ok(vec!["oidc:dev", "oidc:ops"]),
        ),
        (None, Ok(vec![])),
        (Some(json!(null)), Ok(vec![])),
        (Some(json!(["dev", 7])), Err("groups")),
        (Some(json!({"dev": true})), Err("groups")),
    ] {
        let mut claims = claims_a("alice@example.com");
        match &groups {
            Some(g) => claims["groups"] = g.clone(),
            None => {
                claims.as_object_mut().unwrap().remove("groups");
            }
        }
        let result = as_bearer(&plugin, &hs256("a", &claims, SECRET_A)).await;
        match expected {
            Ok(expected) => {
                let headers = forwarded(&result);
                assert_eq!(
                    values(&headers, "impersonate-group"),
                    expected,
                    "{groups:?}"
                );
            }
            Err(says) => assert_unauthenticated(&result, says),
        }
    }
    // B maps no groups: a groups claim in B's token impersonates none.
    let mut b = claims_b("bob");
    b["groups"] = json!(["admins"]);
    let headers = forwarded(&as_assertion(&plugin, &hs256("b", &b, SECRET_B)).await);
    assert!(values(&headers, "impersonate-group").is_empty());
}

#[tokio::test]
async fn prefixes_apply_only_when_set_and_policy_sees_the_token_groups() {
    let mut config = two_issuers();
    // Policy on the unprefixed group name the token carries.
    config["routes"][0]["policy"] = json!([{"allow": {"or": [{"groups": {"has": "dev"}}]}}]);
    config["jwt"][0]["claimMappings"]["username"]["prefix"] = json!("oidc:");
    let plugin = load(&config);
    let headers = forwarded(
        &as_bearer(
            &plugin,
            &hs256("a", &claims_a("alice@example.com"), SECRET_A),
        )
        .await,
    );
    assert_eq!(
        values(&headers, "impersonate-user"),
        vec!["oidc:alice@example.com"]
    );
    assert_eq!(values(&headers, "impersonate-group"), vec!["oidc:dev"]);
    assert_eq!(values(&headers, "impersonate-uid"), vec!["sub-a"]);

    config["jwt"][0]["claimMappings"]["username"]["prefix"] = json!("");
    config["jwt"][0]["claimMappings"]["groups"]["prefix"] = json!("");
    let plugin = load(&config);
    let headers = forwarded(
        &as_bearer(
            &plugin,
            &hs256("a", &claims_a("alice@example.com"), SECRET_A),
        )
        .await,
    );
    assert_eq!(
        values(&headers, "impersonate-user"),
        vec!["alice@example.com"]
    );
    assert_eq!(values(&headers, "impersonate-group"), vec!["dev"]);
}

#[tokio::test]
async fn claim_validation_rules_uid_and_empty_users_refuse_with_401() {
    let plugin = load(&two_issuers());
    for (edit, says) in [
        (json!({"hd": null}), "does not have the required value"),
        (
            json!({"hd": "evil.example"}),
            "does not have the required value",
        ),
        (json!({"hd": ["example.com"]}), "is not a string"),
        (json!({"sub": 42}), "\"sub\""),
        (json!({"email": ""}), "user name is empty"),
    ] {
        let mut claims = claims_a("alice@example.com");
        for (k, v) in edit.as_object().unwrap() {
            claims[k] = v.clone();
        }
        assert_unauthenticated(
            &as_bearer(&plugin, &hs256("a", &claims, SECRET_A)).await,
            says,
        );
    }
    let mut claims = claims_a("alice@example.com");
    claims.as_object_mut().unwrap().remove("hd");
    assert_unauthenticated(
        &as_bearer(&plugin, &hs256("a", &claims, SECRET_A)).await,
        "required claim \"hd\" is not present",
    );
    let mut claims = claims_a("alice@example.com");
    claims.as_object_mut().unwrap().remove("sub");
    assert_unauthenticated(
        &as_bearer(&plugin, &hs256("a", &claims, SECRET_A)).await,
        "\"sub\"",
    );
}

/// Each of the API server's load-time rules, broken once: the module refuses the
/// configuration and its log names the field.
#[test]
fn the_api_servers_load_rules_refuse_configurations() {
    type Edit = Box<dyn Fn(&mut Value)>;
    let a = |f: fn(&mut Value)| -> Edit { Box::new(move |c: &mut Value| f(&mut c["jwt"][0])) };
    let cases: Vec<(Edit, &str)> = vec![
        (a(|j| j["issuer"]["url"] = json!("http://idp-a.example.com")), "jwt[0].issuer.url: URL scheme must be https"),
        (a(|j| j["issuer"]["url"] = json!("idp-a.example.com")), "jwt[0].issuer.url: URL scheme must be https"),
        (a(|j| j["issuer"]["url"] = json!("")), "jwt[0].issuer.url: required"),
        (a(|j| j["issuer"]["url"] = json!("https://user:pw@idp-a.example.com")), "jwt[0].issuer.url: URL must not contain a username or password"),
        (a(|j| j["issuer"]["url"] = json!("https://idp-a.example.com?tenant=1")), "jwt[0].issuer.url: URL must not contain a query"),
        (a(|j| j["issuer"]["url"] = json!("https://idp-a.example.com#x")), "jwt[0].issuer.url: URL must not contain a fragment"),
        (Box::new(|c| c["jwt"][1]["issuer"]["url"] = json!(ISSUER_A)), "jwt[1].issuer.url: duplicate value"),
        (a(|j| j["issuer"]["discoveryURL"] = json!("http://idp-a.example.com/.well-known/openid-configuration")), "jwt[0].issuer.discoveryURL: URL scheme must be https"),
        (a(|j| j["issuer"]["discoveryURL"] = json!(format!("{ISSUER_A}/"))), "jwt[0].issuer.discoveryURL: must be different from issuer.url"),
        (Box::new(|c| {
            c["jwt"][0]["issuer"]["discoveryURL"] = json!("https://discovery.example.com/a");
            c["jwt"][1]["issuer"]["discoveryURL"] = json!("https://discovery.example.com/a");
        }), "jwt[1].issuer.discoveryURL: duplicate value"),
        (a(|j| j["issuer"]["audiences"] = json!([])), "jwt[0].issuer.audiences: at least one audience is required"),
        (a(|j| j["issuer"]["audiences"] = json!(["k8s-a", ""])), "jwt[0].issuer.audiences[1]: must not be empty"),
        (a(|j| j["issuer"]["audiences"] = json!(["k8s-a", "k8s-a"])), "jwt[0].issuer.audiences[1]: duplicate value"),
        (a(|j| { j["issuer"].as_object_mut().unwrap().remove("audienceMatchPolicy"); }), "jwt[0].issuer.audienceMatchPolicy: must be MatchAny when there is more than one audience"),
        (a(|j| j["issuer"]["audienceMatchPolicy"] = json!("MatchAll")), "jwt[0].issuer.audienceMatchPolicy: \"MatchAll\" is not supported"),
        (a(|j| j["claimValidationRules"] = json!([{"claim": "hd", "expression": "true"}])), "jwt[0].claimValidationRules[0]: claim and expression cannot both be specified"),
        (a(|j| j["claimValidationRules"] = json!([{"requiredValue": "x"}])), "jwt[0].claimValidationRules[0]: claim or expression is required"),
        (a(|j| j["claimValidationRules"] = json!([{"claim": "hd", "requiredValue": "x", "message": "m"}])), "jwt[0].claimValidationRules[0].message: may not be specified when claim is set"),
        (a(|j| j["claimValidationRules"] = json!([{"expression": "true", "requiredValue": "x"}])), "jwt[0].claimValidationRules[0].requiredValue: may not be specified when expression is set"),
        (a(|j| j["claimValidationRules"] = json!([{"claim": "hd", "requiredValue": "x"}, {"claim": "hd", "requiredValue": "y"}])), "jwt[0].claimValidationRules[1].claim: duplicate value"),
        (a(|j| j["claimMappings"]["username"] = json!({})), "jwt[0].claimMappings.username: claim or expression is required"),
        (a(|j| j["claimMappings"]["username"] = json!({"claim": "email"})), "jwt[0].claimMappings.username.prefix: required when claim is set"),
        (a(|j| j["claimMappings"]["username"] = json!({"claim": "email", "prefix": "", "expression": "claims.email"})), "jwt[0].claimMappings.username: claim and expression cannot both be specified"),
        (a(|j| j["claimMappings"]["username"] = json!({"expression": "claims.sub", "prefix": "x:"})), "jwt[0].claimMappings.username.prefix: may not be specified when expression is set"),
        (a(|j| j["claimMappings"]["groups"] = json!({"claim": "groups"})), "jwt[0].claimMappings.groups.prefix: required when claim is set"),
        (a(|j| j["claimMappings"]["groups"] = json!({"prefix": "oidc:"})), "jwt[0].claimMappings.groups.prefix: may not be specified when claim is not set"),
        (a(|j| j["claimMappings"]["uid"] = json!({"claim": "sub", "expression": "claims.sub"})), "jwt[0].claimMappings.uid: claim and expression cannot both be specified"),
        (a(|j| j["claimMappings"]["extra"] = json!([{"key": "team", "valueExpression": "claims.team"}])), "jwt[0].claimMappings.extra[0].key: must be a domain-prefixed path"),
        (a(|j| j["claimMappings"]["extra"] = json!([{"key": "Example.com/team", "valueExpression": "claims.team"}])), "jwt[0].claimMappings.extra[0].key: key must be lowercase"),
        (a(|j| j["claimMappings"]["extra"] = json!([{"key": "k8s.io/team", "valueExpression": "claims.team"}])), "jwt[0].claimMappings.extra[0].key: k8s.io, kubernetes.io and their subdomains are reserved"),
        (a(|j| j["claimMappings"]["extra"] = json!([{"key": "authentication.kubernetes.io/x", "valueExpression": "claims.x"}])), "jwt[0].claimMappings.extra[0].key: k8s.io, kubernetes.io and their subdomains are reserved"),
        (a(|j| j["claimMappings"]["extra"] = json!([{"key": "example.com/team"}])), "jwt[0].claimMappings.extra[0]: missing field `valueExpression`"),
        (a(|j| j["userValidationRules"] = json!([{"message": "no"}])), "jwt[0].userValidationRules[0]: missing field `expression`"),
        // The default module has no CEL: an expression names the module that has.
        (a(|j| j["claimMappings"]["username"] = json!({"expression": "claims.sub"})), "jwt[0].claimMappings.username.expression: CEL expressions need the kubegate-cel.wasm module"),
        (a(|j| j["claimValidationRules"] = json!([{"expression": "claims.?email_verified.orValue(true) == true"}])), "jwt[0].claimValidationRules[0].expression: CEL expressions need the kubegate-cel.wasm module"),
        // kubegate's own rules beside them.
        (a(|j| { j["issuer"]["url"] = json!("k8s.example.com"); j["issuer_host_only"] = json!(false); }), "jwt[0].issuer.url: URL scheme must be https"),
        (a(|j| { j["issuer"]["url"] = json!("https://k8s.example.com"); j["issuer_host_only"] = json!(true); }), "jwt[0].issuer.url: with issuer_host_only the issuer is a host name"),
        (a(|j| j["keys"] = json!({})), "jwt[0].keys: no usable verification key"),
        (Box::new(|c| c["jwt"][1]["from"] = json!([{"header": "authorization", "prefix": "Token "}])), "jwt[1].from[0]: this header or cookie is already a token source with another prefix"),
        (Box::new(|c| {
            let one = c["jwt"][1].clone();
            c["jwt"] = Value::Array((0..65).map(|i| {
                let mut entry = one.clone();
                entry["issuer"]["url"] = json!(format!("https://idp-{i}.example.com"));
                entry
            }).collect());
        }), "jwt: at most 64 authenticators"),
    ];
    let plugin = Plugin::load(spec(&two_issuers(), 1)).expect("the base configuration loads");
    for (edit, says) in &cases {
        let mut config = two_issuers();
        edit(&mut config);
        let error = match plugin.reconfigure(config.to_string()) {
            Ok(()) => panic!("accepted, expected {says:?}"),
            Err(e) => format!("{e:#}"),
        };
        assert!(error.contains(says), "expected {says:?} in {error}");
    }
    // After all of that the plugin still serves with its accepted configuration.
    plugin.reconfigure(two_issuers().to_string()).unwrap();
}
