//! kubegate-cel.wasm, the second module, in our host: the CEL forms of
//! AuthenticationConfiguration (claim validation expressions, username/groups/uid/extra
//! expressions, user validation rules) with filter-config/cel-email-verified.json, and the
//! API server's load rule that ties claims.email to claims.email_verified.

mod common;

use common::{example_config, load_cel, spec, SA_TOKEN};
use kubegate_host::{FilterOutcome, FilterRequest, Plugin, PluginSpec};
use kubegate_testkit::tokens::{now, Signer};
use serde_json::{json, Value};

fn token(claims: Value) -> String {
    let Value::Object(map) = claims else {
        panic!("claims are an object")
    };
    Signer::dev().unwrap().sign_json(map).unwrap()
}

fn claims(email: &str) -> Value {
    let t = now();
    json!({"iss": "https://accounts.example.com", "aud": "kubernetes", "sub": "u-1",
           "email": email, "groups": ["dev", "ops"], "department": "platform",
           "iat": t, "exp": t + 300})
}

async fn send(plugin: &Plugin, claims: Value) -> FilterOutcome {
    plugin
        .handle(
            FilterRequest::new("GET", "/api/v1/namespaces/default/pods", "k8s.example.com")
                .header("authorization", &format!("Bearer {}", token(claims))),
        )
        .await
}

fn values(outcome: &FilterOutcome, name: &str) -> Vec<String> {
    match outcome {
        FilterOutcome::Forward { headers, .. } => headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect(),
        other => panic!("expected the request to be forwarded, got {other:?}"),
    }
}

fn refusal(outcome: &FilterOutcome) -> (u16, String) {
    match outcome {
        FilterOutcome::LocalReply { status, body, .. } => {
            let body: Value = serde_json::from_slice(body).unwrap();
            (*status, body["message"].as_str().unwrap_or_default().into())
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn expressions_map_the_identity() {
    let plugin = load_cel(&example_config("cel-email-verified.json"));
    let outcome = send(&plugin, claims("alice@example.com")).await;
    assert_eq!(
        values(&outcome, "authorization"),
        vec![format!("Bearer {SA_TOKEN}")]
    );
    assert_eq!(
        values(&outcome, "impersonate-user"),
        vec!["alice@example.com"]
    );
    assert_eq!(
        values(&outcome, "impersonate-group"),
        vec!["oidc:dev", "oidc:ops"]
    );
    assert_eq!(values(&outcome, "impersonate-uid"), vec!["u-1"]);
    assert_eq!(
        values(&outcome, "impersonate-extra-example.com%2fdepartment"),
        vec!["platform"]
    );
    // No groups claim: the expression's orValue gives none; no department: no extra.
    let mut bare = claims("bob@example.com");
    bare.as_object_mut().unwrap().remove("groups");
    bare.as_object_mut().unwrap().remove("department");
    let outcome = send(&plugin, bare).await;
    assert!(values(&outcome, "impersonate-group").is_empty());
    assert!(values(&outcome, "impersonate-extra-example.com%2fdepartment").is_empty());
}

#[tokio::test]
async fn the_email_verified_rule_as_an_expression() {
    let plugin = load_cel(&example_config("cel-email-verified.json"));
    for (value, passes) in [
        (None, true),
        (Some(json!(true)), true),
        (Some(json!(false)), false),
        (Some(json!("false")), false),
        (Some(json!("true")), false),
        (Some(json!(1)), false),
    ] {
        let mut c = claims("alice@example.com");
        if let Some(value) = &value {
            c["email_verified"] = value.clone();
        }
        let outcome = send(&plugin, c).await;
        if passes {
            assert_eq!(
                values(&outcome, "impersonate-user"),
                vec!["alice@example.com"],
                "{value:?}"
            );
        } else {
            let (status, message) = refusal(&outcome);
            assert_eq!(status, 401, "{value:?}: {message}");
            assert!(!message.is_empty());
        }
    }
    // The rule's own message reaches the user when it evaluates to false.
    let mut c = claims("alice@example.com");
    c["email_verified"] = json!(false);
    let (_, message) = refusal(&send(&plugin, c).await);
    assert!(
        message.contains("the email address must be verified"),
        "{message}"
    );
}

#[tokio::test]
async fn user_validation_rules_refuse_with_their_message() {
    let plugin = load_cel(&example_config("cel-email-verified.json"));
    let (status, message) = refusal(&send(&plugin, claims("admin@example.com")).await);
    assert_eq!(status, 401);
    assert!(
        message.contains("admin accounts use the break-glass path"),
        "{message}"
    );
}

#[test]
fn a_username_expression_on_email_must_check_email_verified() {
    let mut config = example_config("cel-email-verified.json");
    config["jwt"][0]["claimValidationRules"] = json!([]);
    let spec = PluginSpec {
        wasm_path: common::cel_wasm_path(),
        ..spec(&config, 1)
    };
    let error = match Plugin::load(spec) {
        Ok(_) => panic!("accepted a username expression on claims.email without email_verified"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        error.contains(
            "jwt[0].claimMappings.username.expression: claims.email_verified must be used"
        ),
        "{error}"
    );
    // A syntax error is refused at load with its field.
    let mut config = example_config("cel-email-verified.json");
    config["jwt"][0]["claimMappings"]["uid"] = json!({"expression": "claims.sub +"});
    let spec = PluginSpec {
        wasm_path: common::cel_wasm_path(),
        ..common::spec(&config, 1)
    };
    let error = match Plugin::load(spec) {
        Ok(_) => panic!("accepted an expression with a syntax error"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        error.contains("jwt[0].claimMappings.uid.expression"),
        "{error}"
    );
}
