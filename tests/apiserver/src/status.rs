//! `metav1.Status` bodies as kube-apiserver writes them, byte for byte.
//!
//! The API server encodes with Go's `json.Encoder`: fields in struct order (kind,
//! apiVersion, metadata, status, message, reason, details, code), empty optional fields
//! left out, `<`, `>` and `&` escaped as `\u003c`, `\u003e`, `\u0026`, and a trailing
//! newline. Messages follow `apimachinery/pkg/api/errors` (NewForbidden, NewNotFound, ...)
//! and `responsewriters.forbiddenMessage`.

use serde::Serialize;

use crate::rbac::Attributes;

/// A `metav1.Status` (failure or success) with its HTTP code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: EmptyObject,
    pub status: &'static str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Box<StatusDetails>>,
    pub code: u16,
}

/// `metav1.StatusDetails`; the API server sends `"details":{}` when all fields are empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StatusDetails {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
struct EmptyObject {}

impl Status {
    fn failure(code: u16, reason: &str, message: String, details: Option<StatusDetails>) -> Self {
        let details = details.map(Box::new);
        Status {
            kind: "Status",
            api_version: "v1",
            metadata: EmptyObject {},
            status: "Failure",
            message,
            reason: reason.to_string(),
            details,
            code,
        }
    }

    /// A failure with any code and reason.
    pub fn failure_with(code: u16, reason: &str, message: impl Into<String>) -> Self {
        Self::failure(code, reason, message.into(), None)
    }

    /// The authentication filter's answer to a missing or unknown credential.
    pub fn unauthorized() -> Self {
        Self::failure(401, "Unauthorized", "Unauthorized".to_string(), None)
    }

    /// `apierrors.NewBadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::failure(400, "BadRequest", message.into(), None)
    }

    /// `apierrors.NewInvalid` for one field of a kind, e.g. a review without attributes.
    pub fn invalid(group: &str, kind: &str, name: &str, field_error: &str) -> Self {
        Self::failure(
            422,
            "Invalid",
            format!(
                "{} {} is invalid: {field_error}",
                qualified_resource(group, kind),
                go_quote(name)
            ),
            Some(StatusDetails {
                name: name.to_string(),
                group: group.to_string(),
                kind: kind.to_string(),
                ..StatusDetails::default()
            }),
        )
    }

    /// `responsewriters.Forbidden`: the refused attributes, plus the authorizer's reason
    /// (e.g. an RBAC note about a missing role) after a colon when there is one.
    pub fn forbidden(attributes: &Attributes, reason: &str) -> Self {
        let explanation = escape_html(&forbidden_message(attributes));
        let explanation = if reason.is_empty() {
            explanation
        } else {
            format!("{explanation}: {reason}")
        };
        let resource = qualified_resource(&attributes.api_group, &attributes.resource);
        let message = if !attributes.resource_request || attributes.resource.is_empty() {
            format!("forbidden: {explanation}")
        } else if attributes.name.is_empty() {
            format!("{resource} is forbidden: {explanation}")
        } else {
            format!(
                "{resource} {} is forbidden: {explanation}",
                go_quote(&attributes.name)
            )
        };
        let (group, kind) = if attributes.resource_request {
            (attributes.api_group.clone(), attributes.resource.clone())
        } else {
            (String::new(), String::new())
        };
        Self::failure(
            403,
            "Forbidden",
            message,
            Some(StatusDetails {
                name: attributes.name.clone(),
                group,
                kind,
                ..StatusDetails::default()
            }),
        )
    }

    /// `apierrors.NewNotFound`: `pods "nope" not found`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        Self::failure(
            404,
            "NotFound",
            format!(
                "{} {} not found",
                qualified_resource(group, resource),
                go_quote(name)
            ),
            Some(StatusDetails {
                name: name.to_string(),
                group: group.to_string(),
                kind: resource.to_string(),
                ..StatusDetails::default()
            }),
        )
    }

    /// `apierrors.NewAlreadyExists`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        Self::failure(
            409,
            "AlreadyExists",
            format!(
                "{} {} already exists",
                qualified_resource(group, resource),
                go_quote(name)
            ),
            Some(StatusDetails {
                name: name.to_string(),
                group: group.to_string(),
                kind: resource.to_string(),
                ..StatusDetails::default()
            }),
        )
    }

    /// `apierrors.NewMethodNotSupported` for a verb this stand-in does not serve.
    pub fn method_not_supported(group: &str, resource: &str, verb: &str) -> Self {
        Self::failure(
            405,
            "MethodNotAllowed",
            format!(
                "{} is not supported on resources of kind {}",
                verb,
                go_quote(&qualified_resource(group, resource))
            ),
            Some(StatusDetails {
                group: group.to_string(),
                kind: resource.to_string(),
                ..StatusDetails::default()
            }),
        )
    }

    /// `apierrors.NewInternalError`.
    pub fn internal_error(message: &str) -> Self {
        Self::failure(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
            None,
        )
    }

    /// The success Status a delete of a kind without a body of its own answers.
    pub fn success_deleted(group: &str, resource: &str, name: &str, uid: &str) -> Self {
        Status {
            kind: "Status",
            api_version: "v1",
            metadata: EmptyObject {},
            status: "Success",
            message: String::new(),
            reason: String::new(),
            details: Some(Box::new(StatusDetails {
                name: name.to_string(),
                group: group.to_string(),
                kind: resource.to_string(),
                uid: uid.to_string(),
            })),
            code: 200,
        }
    }

    /// The body exactly as the API server writes it (Go encoding, trailing newline).
    pub fn to_body(&self) -> Vec<u8> {
        go_json(self)
    }
}

/// `responsewriters.forbiddenMessage`.
pub fn forbidden_message(attributes: &Attributes) -> String {
    let user = go_quote(&attributes.user.username);
    if !attributes.resource_request {
        return format!(
            "User {user} cannot {} path {}",
            attributes.verb,
            go_quote(&attributes.path)
        );
    }
    let mut resource = attributes.resource.clone();
    if !attributes.subresource.is_empty() {
        resource = format!("{resource}/{}", attributes.subresource);
    }
    if attributes.namespace.is_empty() {
        format!(
            "User {user} cannot {} resource {} in API group {} at the cluster scope",
            attributes.verb,
            go_quote(&resource),
            go_quote(&attributes.api_group)
        )
    } else {
        format!(
            "User {user} cannot {} resource {} in API group {} in the namespace {}",
            attributes.verb,
            go_quote(&resource),
            go_quote(&attributes.api_group),
            go_quote(&attributes.namespace)
        )
    }
}

/// `schema.GroupResource.String()`: `pods`, `selfsubjectreviews.authentication.k8s.io`.
pub fn qualified_resource(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// The forbidden explanation passes through an HTML-escaping replacer in the API server.
fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Go's `%q`: a double-quoted string with Go escapes for quotes, backslashes and
/// non-printable characters (printable Unicode stays as is).
pub fn go_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for character in text.chars() {
        match character {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\u{7}' => quoted.push_str("\\a"),
            '\u{8}' => quoted.push_str("\\b"),
            '\u{c}' => quoted.push_str("\\f"),
            '\u{b}' => quoted.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                quoted.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => {
                let code = c as u32;
                if code <= 0xffff {
                    quoted.push_str(&format!("\\u{code:04x}"));
                } else {
                    quoted.push_str(&format!("\\U{code:08x}"));
                }
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// Serialises like Go's `json.Encoder` with its default HTML escaping, plus the newline
/// `Encode` appends. serde_json writes `<`, `>`, `&`, U+2028 and U+2029 literally, and
/// they can only occur inside strings, so replacing them afterwards is exact.
pub fn go_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let text = serde_json::to_string(value).unwrap_or_else(|_| "{}".to_string());
    let mut escaped = go_escape(&text);
    escaped.push('\n');
    escaped.into_bytes()
}

/// Like [`go_json`] for `json.MarshalIndent(value, "", "  ")` (the API server's raw JSON
/// writer, used for `/version`), which has no trailing newline.
pub fn go_json_indented<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "{}".to_string());
    go_escape(&text).into_bytes()
}

fn go_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '<' => escaped.push_str("\\u003c"),
            '>' => escaped.push_str("\\u003e"),
            '&' => escaped.push_str("\\u0026"),
            '\u{2028}' => escaped.push_str("\\u2028"),
            '\u{2029}' => escaped.push_str("\\u2029"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::UserInfo;

    fn attributes(verb: &str, resource: &str, namespace: &str, name: &str) -> Attributes {
        Attributes {
            user: UserInfo::named("nobody@example.com"),
            verb: verb.to_string(),
            resource_request: true,
            api_group: String::new(),
            api_version: "v1".to_string(),
            namespace: namespace.to_string(),
            resource: resource.to_string(),
            subresource: String::new(),
            name: name.to_string(),
            path: String::new(),
        }
    }

    #[test]
    fn unauthorized_body_is_the_api_servers() {
        assert_eq!(
            String::from_utf8(Status::unauthorized().to_body()).unwrap(),
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"Unauthorized\",\"reason\":\"Unauthorized\",\"code\":401}\n"
        );
    }

    #[test]
    fn forbidden_list_in_namespace() {
        let status = Status::forbidden(&attributes("list", "pods", "default", ""), "");
        assert_eq!(
            String::from_utf8(status.to_body()).unwrap(),
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"pods is forbidden: User \\\"nobody@example.com\\\" cannot list resource \\\"pods\\\" in API group \\\"\\\" in the namespace \\\"default\\\"\",\"reason\":\"Forbidden\",\"details\":{\"kind\":\"pods\"},\"code\":403}\n"
        );
    }

    #[test]
    fn forbidden_non_resource_path_has_empty_details() {
        let mut refused = attributes("get", "", "", "");
        refused.resource_request = false;
        refused.path = "/metrics".to_string();
        let body = String::from_utf8(Status::forbidden(&refused, "").to_body()).unwrap();
        assert!(body.contains(
            "\"message\":\"forbidden: User \\\"nobody@example.com\\\" cannot get path \\\"/metrics\\\"\",\"reason\":\"Forbidden\",\"details\":{},\"code\":403"
        ));
    }

    #[test]
    fn forbidden_group_resource_is_qualified_and_reason_appended() {
        let mut refused = attributes("impersonate", "userextras", "", "v");
        refused.api_group = "authentication.k8s.io".to_string();
        refused.subresource = "scopes".to_string();
        let status = Status::forbidden(&refused, "RBAC: role missing");
        assert_eq!(
            status.message,
            "userextras.authentication.k8s.io \"v\" is forbidden: User \"nobody@example.com\" cannot impersonate resource \"userextras/scopes\" in API group \"authentication.k8s.io\" at the cluster scope: RBAC: role missing"
        );
        assert_eq!(
            *status.details.unwrap(),
            StatusDetails {
                name: "v".into(),
                group: "authentication.k8s.io".into(),
                kind: "userextras".into(),
                uid: String::new()
            }
        );
    }

    #[test]
    fn html_is_escaped_like_go() {
        let mut refused = attributes("get", "pods", "default", "a<b>&c");
        refused.user = UserInfo::named("x<y");
        let body = String::from_utf8(Status::forbidden(&refused, "").to_body()).unwrap();
        // The explanation is HTML-escaped first; the JSON encoder escapes what remains.
        assert!(body.contains(
            "pods \\\"a\\u003cb\\u003e\\u0026c\\\" is forbidden: User \\\"x\\u0026lt;y\\\""
        ));
    }

    #[test]
    fn not_found_names_the_object() {
        assert_eq!(
            String::from_utf8(Status::not_found("", "pods", "nope").to_body()).unwrap(),
            "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"pods \\\"nope\\\" not found\",\"reason\":\"NotFound\",\"details\":{\"name\":\"nope\",\"kind\":\"pods\"},\"code\":404}\n"
        );
    }

    #[test]
    fn go_quote_escapes_controls() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}"), "\"a\\\"b\\\\c\\n\\x01\"");
        assert_eq!(go_quote("émoji ✓"), "\"émoji ✓\"");
    }
}
