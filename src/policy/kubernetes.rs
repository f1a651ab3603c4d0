//! Kubernetes request criteria: what the API server will authorize the request as, from the
//! resolver in `request_info` (kube-apiserver's `RequestInfoFactory`), so a policy sees the
//! facts RBAC will see.
//!
//! ```yaml
//! - kubernetes_verb: {in: [get, list, watch]}
//! - kubernetes_api_group: ""                    # the core group ("" as in RBAC)
//! - kubernetes_resource: pods
//! - kubernetes_subresource: exec                # `kubectl exec`: verb create, pods/exec
//! - kubernetes_namespace: {starts_with: team-}
//! - kubernetes_name: {not: kube-root-ca.crt}
//! - kubernetes_resource_request: false          # /version, /healthz, discovery
//! - kubernetes_non_resource_path: {starts_with: /healthz}
//! ```
//!
//! Decisions:
//! - Every criterion here is false when the request could not be resolved (the filter refuses
//!   such requests anyway), even under `not`-style matchers such as `{not: pods}`.
//! - `kubernetes_verb` is [`RequestInfo::policy_verb`]: get, list, watch, create, update,
//!   patch, delete, deletecollection (or proxy from the deprecated `/proxy/` path prefix), so
//!   both attempts of `kubectl exec`/`attach`/`port-forward` (a WebSocket GET, then an SPDY
//!   POST) are `create`; for a non-resource request it is the method in lower case (get,
//!   post, ...). Verbs are lower case: an upper-case letter is refused at configure time, as
//!   are `*` and the subresources people mistake for verbs (exec, attach, portforward).
//! - The resource criteria (resource, subresource, namespace, API group, name) are false for
//!   a non-resource request, so `kubernetes_namespace: ""` means "cluster-scoped resource" and
//!   `kubernetes_api_group: ""` means "core group resource", never also `/version`.
//!   `kubernetes_non_resource_path` is the other way round: the decoded path of a
//!   non-resource request, false for resource requests.
//! - `kubernetes_resource` is the resource alone, never `pods/exec`: a `/` in its value is
//!   refused, and the subresource is matched with `kubernetes_subresource` (`""` when the
//!   request has none). That keeps `{kubernetes_resource: pods}` from quietly missing
//!   `pods/log` or matching it, depending on how the rule was written.
//! - Empty values mean what RBAC means: namespace `""` is cluster-scoped, API group `""` is
//!   the core group (refusing `core`, which no request ever has), subresource `""` none.
//! - PPL matchers have no wildcards: `*` in a value is refused (RBAC's `*` would otherwise
//!   become a rule that never matches); to allow anything, leave the criterion out.

use super::error::JsonPath;
use super::matchers::StringMatcher;
use super::PolicyError;
use crate::request_info::RequestInfo;
use serde_json::Value;

/// Which field of the resolved request a criterion matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    Verb,
    Resource,
    Subresource,
    Namespace,
    ApiGroup,
    Name,
    NonResourcePath,
}

impl Field {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Field::Verb => "kubernetes_verb",
            Field::Resource => "kubernetes_resource",
            Field::Subresource => "kubernetes_subresource",
            Field::Namespace => "kubernetes_namespace",
            Field::ApiGroup => "kubernetes_api_group",
            Field::Name => "kubernetes_name",
            Field::NonResourcePath => "kubernetes_non_resource_path",
        }
    }

    /// The value this field has for the request; `None` when the field does not apply.
    pub(crate) fn of(self, info: &RequestInfo) -> Option<&str> {
        let value = match self {
            Field::Verb => return Some(info.policy_verb()),
            Field::NonResourcePath => {
                return (!info.is_resource_request).then_some(info.path.as_str())
            }
            Field::Resource => &info.resource,
            Field::Subresource => &info.subresource,
            Field::Namespace => &info.namespace,
            Field::ApiGroup => &info.api_group,
            Field::Name => &info.name,
        };
        info.is_resource_request.then_some(value.as_str())
    }

    pub(crate) fn parse_matcher(
        self,
        value: &Value,
        path: &JsonPath<'_>,
    ) -> Result<StringMatcher, PolicyError> {
        let check: fn(&str) -> Result<(), String> = match self {
            Field::Verb => verb_spelling,
            Field::Resource => resource_spelling,
            Field::Subresource => subresource_spelling,
            Field::Namespace => namespace_spelling,
            Field::ApiGroup => api_group_spelling,
            Field::Name | Field::NonResourcePath => no_wildcard,
        };
        StringMatcher::parse_checked(value, path, check)
    }
}

/// `kubernetes_resource_request: true | false`.
pub(crate) fn parse_resource_request(
    value: &Value,
    path: &JsonPath<'_>,
) -> Result<bool, PolicyError> {
    value.as_bool().ok_or_else(|| {
        path.wrong_type(
            "true (a resource request) or false (a non-resource request)",
            value,
        )
    })
}

fn no_wildcard(value: &str) -> Result<(), String> {
    if value.contains('*') {
        Err(format!(
            "{value:?}: PPL matchers have no wildcards (\"*\" would only match itself); to \
             allow any value leave the criterion out, or use starts_with / ends_with"
        ))
    } else {
        Ok(())
    }
}

const SUBRESOURCES_NOT_VERBS: [&str; 4] = ["exec", "attach", "portforward", "port-forward"];

fn verb_spelling(verb: &str) -> Result<(), String> {
    no_wildcard(verb)?;
    if SUBRESOURCES_NOT_VERBS.contains(&verb) {
        return Err(format!(
            "{verb:?} is not a verb: opening a pod's {verb} stream is verb \"create\" on resource \
             \"pods\", subresource {:?} (match it with kubernetes_subresource)",
            verb.replace('-', "")
        ));
    }
    if verb.is_empty()
        || !verb
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || b"!#$%&'+-.^_`|~".contains(&byte))
    {
        return Err(format!(
            "{verb:?} is not a verb (get, list, watch, create, update, patch, delete, \
             deletecollection, or a lower-case HTTP method for non-resource requests)"
        ));
    }
    if verb.bytes().any(|byte| byte.is_ascii_uppercase()) {
        return Err(format!(
            "Kubernetes verbs are lower case: write {:?}, not {verb:?}",
            verb.to_ascii_lowercase()
        ));
    }
    Ok(())
}

fn lower_case_segment(value: &str, what: &str, example: &str) -> Result<(), String> {
    no_wildcard(value)?;
    if value.contains('/') {
        return Err(format!("{value:?}: {what} has no \"/\""));
    }
    if value.bytes().any(|byte| byte.is_ascii_uppercase()) {
        return Err(format!(
            "{what} is lower case (such as {example:?}): write {:?}, not {value:?}",
            value.to_ascii_lowercase()
        ));
    }
    Ok(())
}

fn resource_spelling(resource: &str) -> Result<(), String> {
    if let Some((name, subresource)) = resource.split_once('/') {
        return Err(format!(
            "{resource:?}: match the subresource on its own: kubernetes_resource: {name:?} and \
             kubernetes_subresource: {subresource:?}"
        ));
    }
    if resource.is_empty() {
        return Err(
            "empty: every resource request names a resource (for non-resource requests use \
             kubernetes_resource_request: false)"
                .to_string(),
        );
    }
    lower_case_segment(resource, "a resource name", "pods")
}

fn subresource_spelling(subresource: &str) -> Result<(), String> {
    lower_case_segment(subresource, "a subresource name", "exec")
}

fn namespace_spelling(namespace: &str) -> Result<(), String> {
    no_wildcard(namespace)?;
    let dns_label = namespace
        .bytes()
        .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-');
    if dns_label {
        Ok(())
    } else {
        Err(format!(
            "{namespace:?} is not a namespace name: namespaces are DNS labels (lower-case \
             letters, digits and \"-\"); \"\" is cluster-scoped"
        ))
    }
}

fn api_group_spelling(group: &str) -> Result<(), String> {
    no_wildcard(group)?;
    if group == "core" || group == "v1" {
        return Err(format!(
            "{group:?}: the core API group is \"\" (write kubernetes_api_group: \"\" or \
             {{\"is\": \"\"}})"
        ));
    }
    let dns_subdomain = group.bytes().all(|byte| {
        byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-' || byte == b'.'
    });
    if dns_subdomain {
        Ok(())
    } else {
        Err(format!(
            "{group:?} is not an API group: groups are DNS names (lower-case letters, digits, \
             \"-\" and \".\", such as \"apps\" or \"rbac.authorization.k8s.io\"); \"\" is the \
             core group"
        ))
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::request_info::resolve;
    use serde_json::json;

    fn info(method: &str, target: &str) -> RequestInfo {
        resolve(method, target).expect("resolvable request")
    }

    fn error(field: Field, value: Value) -> String {
        field
            .parse_matcher(&value, &JsonPath::root())
            .expect_err("refused value")
            .to_string()
    }

    #[test]
    fn fields_of_a_namespaced_request() {
        let exec = info(
            "GET",
            "/api/v1/namespaces/team-a/pods/web-0/exec?command=sh&stdin=true",
        );
        assert_eq!(Field::Verb.of(&exec), Some("create"));
        assert_eq!(Field::Resource.of(&exec), Some("pods"));
        assert_eq!(Field::Subresource.of(&exec), Some("exec"));
        assert_eq!(Field::Namespace.of(&exec), Some("team-a"));
        assert_eq!(Field::ApiGroup.of(&exec), Some(""));
        assert_eq!(Field::Name.of(&exec), Some("web-0"));
        assert_eq!(Field::NonResourcePath.of(&exec), None);
    }

    #[test]
    fn fields_of_a_cluster_scoped_grouped_request() {
        let roles = info(
            "GET",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles?watch=1",
        );
        assert_eq!(Field::Verb.of(&roles), Some("watch"));
        assert_eq!(Field::Resource.of(&roles), Some("clusterroles"));
        assert_eq!(Field::Subresource.of(&roles), Some(""));
        assert_eq!(Field::Namespace.of(&roles), Some(""));
        assert_eq!(
            Field::ApiGroup.of(&roles),
            Some("rbac.authorization.k8s.io")
        );
        assert_eq!(Field::Name.of(&roles), Some(""));
    }

    #[test]
    fn fields_of_a_non_resource_request() {
        let version = info("GET", "/version?timeout=5s");
        assert_eq!(Field::Verb.of(&version), Some("get"));
        assert_eq!(Field::NonResourcePath.of(&version), Some("/version"));
        for field in [
            Field::Resource,
            Field::Subresource,
            Field::Namespace,
            Field::ApiGroup,
            Field::Name,
        ] {
            assert_eq!(field.of(&version), None, "{field:?}");
        }
        let discovery = info("POST", "/apis/apps/v1");
        assert_eq!(Field::Verb.of(&discovery), Some("post"));
        assert_eq!(Field::NonResourcePath.of(&discovery), Some("/apis/apps/v1"));
    }

    #[test]
    fn verbs_are_lower_case_and_real() {
        for verb in [
            "get",
            "list",
            "watch",
            "create",
            "update",
            "patch",
            "delete",
            "deletecollection",
            "proxy",
            "post",
            "options",
            "m-search",
        ] {
            assert!(
                Field::Verb
                    .parse_matcher(&json!(verb), &JsonPath::root())
                    .is_ok(),
                "{verb}"
            );
        }
        assert_eq!(
            error(Field::Verb, json!("GET")),
            "policy: Kubernetes verbs are lower case: write \"get\", not \"GET\""
        );
        assert_eq!(
            error(Field::Verb, json!({"in": ["list", "Watch"]})),
            "policy.in[1]: Kubernetes verbs are lower case: write \"watch\", not \"Watch\""
        );
        assert_eq!(
            error(Field::Verb, json!("")),
            "policy: \"\" is not a verb (get, list, watch, create, update, patch, delete, \
             deletecollection, or a lower-case HTTP method for non-resource requests)"
        );
        assert_eq!(
            error(Field::Verb, json!({"not": "get list"})),
            "policy.not: \"get list\" is not a verb (get, list, watch, create, update, patch, \
             delete, deletecollection, or a lower-case HTTP method for non-resource requests)"
        );
        assert_eq!(
            error(Field::Verb, json!("*")),
            "policy: \"*\": PPL matchers have no wildcards (\"*\" would only match itself); to \
             allow any value leave the criterion out, or use starts_with / ends_with"
        );
        assert_eq!(
            error(Field::Verb, json!("exec")),
            "policy: \"exec\" is not a verb: opening a pod's exec stream is verb \"create\" on \
             resource \"pods\", subresource \"exec\" (match it with kubernetes_subresource)"
        );
        assert_eq!(
            error(Field::Verb, json!({"in": ["get", "port-forward"]})),
            "policy.in[1]: \"port-forward\" is not a verb: opening a pod's port-forward stream \
             is verb \"create\" on resource \"pods\", subresource \"portforward\" (match it with \
             kubernetes_subresource)"
        );
    }

    #[test]
    fn resources_are_one_lower_case_segment() {
        assert!(Field::Resource
            .parse_matcher(&json!({"in": ["pods", "deployments"]}), &JsonPath::root())
            .is_ok());
        assert_eq!(
            error(Field::Resource, json!("pods/exec")),
            "policy: \"pods/exec\": match the subresource on its own: kubernetes_resource: \
             \"pods\" and kubernetes_subresource: \"exec\""
        );
        assert_eq!(
            error(Field::Resource, json!("Pods")),
            "policy: a resource name is lower case (such as \"pods\"): write \"pods\", not \
             \"Pods\""
        );
        assert_eq!(
            error(Field::Resource, json!("")),
            "policy: empty: every resource request names a resource (for non-resource requests \
             use kubernetes_resource_request: false)"
        );
        assert!(error(Field::Resource, json!("*")).contains("no wildcards"));
        assert_eq!(
            error(Field::Subresource, json!({"is": "exec/x"})),
            "policy.is: \"exec/x\": a subresource name has no \"/\""
        );
        assert_eq!(
            error(Field::Subresource, json!("Status")),
            "policy: a subresource name is lower case (such as \"exec\"): write \"status\", not \
             \"Status\""
        );
        assert!(Field::Subresource
            .parse_matcher(&json!(""), &JsonPath::root())
            .is_ok());
    }

    #[test]
    fn namespaces_are_dns_labels() {
        for namespace in ["", "default", "team-a", "kube-system", "ns1"] {
            assert!(
                Field::Namespace
                    .parse_matcher(&json!(namespace), &JsonPath::root())
                    .is_ok(),
                "{namespace:?}"
            );
        }
        assert_eq!(
            error(Field::Namespace, json!({"starts_with": "Team-"})),
            "policy.starts_with: \"Team-\" is not a namespace name: namespaces are DNS labels \
             (lower-case letters, digits and \"-\"); \"\" is cluster-scoped"
        );
        assert!(error(Field::Namespace, json!("a.b")).contains("is not a namespace name"));
        assert!(error(Field::Namespace, json!("team-*")).contains("no wildcards"));
    }

    #[test]
    fn api_groups() {
        for group in ["", "apps", "rbac.authorization.k8s.io", "cert-manager.io"] {
            assert!(
                Field::ApiGroup
                    .parse_matcher(&json!(group), &JsonPath::root())
                    .is_ok(),
                "{group:?}"
            );
        }
        assert_eq!(
            error(Field::ApiGroup, json!("core")),
            "policy: \"core\": the core API group is \"\" (write kubernetes_api_group: \"\" or \
             {\"is\": \"\"})"
        );
        assert!(error(Field::ApiGroup, json!({"in": ["apps", "v1"]}))
            .starts_with("policy.in[1]: \"v1\": the core API group"));
        assert_eq!(
            error(Field::ApiGroup, json!("apps/v1")),
            "policy: \"apps/v1\" is not an API group: groups are DNS names (lower-case letters, \
             digits, \"-\" and \".\", such as \"apps\" or \"rbac.authorization.k8s.io\"); \"\" is \
             the core group"
        );
        assert!(error(Field::ApiGroup, json!("Apps")).contains("is not an API group"));
    }

    #[test]
    fn names_and_paths_only_refuse_wildcards() {
        for name in ["", "web-0", "system:node:x", "a.b", "kube-root-ca.crt"] {
            assert!(
                Field::Name
                    .parse_matcher(&json!(name), &JsonPath::root())
                    .is_ok(),
                "{name:?}"
            );
        }
        assert!(error(Field::Name, json!("web-*")).contains("no wildcards"));
        assert!(Field::NonResourcePath
            .parse_matcher(&json!({"starts_with": "/healthz"}), &JsonPath::root())
            .is_ok());
        assert_eq!(
            error(Field::NonResourcePath, json!("/healthz/*")),
            "policy: \"/healthz/*\": PPL matchers have no wildcards (\"*\" would only match \
             itself); to allow any value leave the criterion out, or use starts_with / ends_with"
        );
    }

    #[test]
    fn resource_request_flag() {
        assert_eq!(
            parse_resource_request(&json!(true), &JsonPath::root()),
            Ok(true)
        );
        assert_eq!(
            parse_resource_request(&json!(false), &JsonPath::root()),
            Ok(false)
        );
        assert_eq!(
            parse_resource_request(&json!("true"), &JsonPath::root())
                .expect_err("a string")
                .to_string(),
            "policy: expected true (a resource request) or false (a non-resource request), found \
             a string"
        );
    }
}
