//! The review kinds: who am I (`SelfSubjectReview`, `kubectl auth whoami`), may I
//! (`SelfSubjectAccessReview`, `kubectl auth can-i`), what may I
//! (`SelfSubjectRulesReview`, `kubectl auth can-i --list`) and may they
//! (`SubjectAccessReview`). Each answers for the user the request acts as, so while
//! impersonating they describe the impersonated user.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use crate::identity::UserInfo;
use crate::rbac::{Attributes, Rbac};
use crate::status::Status;

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ResourceAttributes {
    namespace: String,
    verb: String,
    group: String,
    version: String,
    resource: String,
    subresource: String,
    name: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct NonResourceAttributes {
    path: String,
    verb: String,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct AccessReviewSpec {
    resource_attributes: Option<ResourceAttributes>,
    non_resource_attributes: Option<NonResourceAttributes>,
    // SubjectAccessReview only.
    user: String,
    groups: Vec<String>,
    uid: String,
    extra: BTreeMap<String, Vec<String>>,
}

/// The review in the body, JSON or (as kubectl's typed clients send it) protobuf.
fn parse_body(body: &[u8]) -> Result<Value, Status> {
    if let Some(review) = crate::proto::decode_review(body) {
        return Ok(review);
    }
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            Status::bad_request("the body of the request could not be decoded as a JSON object")
        })
}

/// `POST /apis/authentication.k8s.io/v1/selfsubjectreviews`.
pub fn self_subject_review(user: &UserInfo) -> Value {
    json!({
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "status": {"userInfo": user},
    })
}

/// `POST .../selfsubjectaccessreviews` (`subject = None`) or `.../subjectaccessreviews`
/// (the subject comes from the spec).
pub fn access_review(
    user: &UserInfo,
    body: &[u8],
    rbac: &Rbac,
    kind: &str,
) -> Result<Value, Status> {
    let mut review = parse_body(body)?;
    let spec: AccessReviewSpec =
        serde_json::from_value(review.get("spec").cloned().unwrap_or(Value::Null))
            .map_err(|error| Status::bad_request(format!("spec: {error}")))?;
    let subject = if kind == "SubjectAccessReview" {
        if spec.user.is_empty() && spec.groups.is_empty() {
            return Err(Status::invalid(
                "authorization.k8s.io",
                kind,
                "",
                "spec.user: Invalid value: \"\": at least one of user or group must be specified",
            ));
        }
        UserInfo {
            username: spec.user.clone(),
            uid: spec.uid.clone(),
            groups: spec.groups.clone(),
            extra: spec.extra.clone(),
        }
    } else {
        user.clone()
    };
    let attributes = match (&spec.resource_attributes, &spec.non_resource_attributes) {
        (Some(resource), None) => Attributes {
            user: subject,
            verb: resource.verb.clone(),
            resource_request: true,
            api_group: resource.group.clone(),
            api_version: resource.version.clone(),
            namespace: resource.namespace.clone(),
            resource: resource.resource.clone(),
            subresource: resource.subresource.clone(),
            name: resource.name.clone(),
            path: String::new(),
        },
        (None, Some(non_resource)) => Attributes {
            user: subject,
            verb: non_resource.verb.clone(),
            resource_request: false,
            path: non_resource.path.clone(),
            ..Attributes::default()
        },
        _ => {
            return Err(Status::invalid(
                "authorization.k8s.io",
                kind,
                "",
                "spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
            ))
        }
    };
    let decision = rbac.authorize(&attributes);
    let mut status = json!({"allowed": decision.allowed});
    if !decision.reason.is_empty() {
        status["reason"] = json!(decision.reason);
    }
    if let Some(fields) = review.as_object_mut() {
        fields.insert("kind".into(), json!(kind));
        fields.insert("apiVersion".into(), json!("authorization.k8s.io/v1"));
        fields
            .entry("metadata")
            .or_insert_with(|| json!({"creationTimestamp": null}));
        fields.insert("status".into(), status);
    }
    Ok(review)
}

/// `POST .../selfsubjectrulesreviews`: every rule that applies in `spec.namespace`.
pub fn rules_review(user: &UserInfo, body: &[u8], rbac: &Rbac) -> Result<Value, Status> {
    let mut review = parse_body(body)?;
    let namespace = review
        .pointer("/spec/namespace")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let rules = rbac.rules_for(user, &namespace);
    let mut resource_rules = Vec::new();
    let mut non_resource_rules = Vec::new();
    for rule in &rules.rules {
        if !rule.non_resource_urls.is_empty() {
            non_resource_rules
                .push(json!({"verbs": rule.verbs, "nonResourceURLs": rule.non_resource_urls}));
        }
        if !rule.resources.is_empty() {
            let mut entry = json!({"verbs": rule.verbs, "apiGroups": rule.api_groups, "resources": rule.resources});
            if !rule.resource_names.is_empty() {
                entry["resourceNames"] = json!(rule.resource_names);
            }
            resource_rules.push(entry);
        }
    }
    let mut status = json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": !rules.errors.is_empty(),
    });
    if !rules.errors.is_empty() {
        status["evaluationError"] = json!(rules.errors.join(", "));
    }
    if let Some(fields) = review.as_object_mut() {
        fields.insert("kind".into(), json!("SelfSubjectRulesReview"));
        fields.insert("apiVersion".into(), json!("authorization.k8s.io/v1"));
        fields
            .entry("metadata")
            .or_insert_with(|| json!({"creationTimestamp": null}));
        fields.insert("status".into(), status);
    }
    Ok(review)
}
