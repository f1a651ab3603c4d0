//! Refusals shaped like the API server's own: a `Status` object kubectl knows how to print.
//!
//! kubectl prints `Error from server (Forbidden): <message>` for a 403 Status and
//! `error: You must be logged in to the server (<message>)` for a 401 (kubectl v1.32 against a local server, observed).
//!
//! One exception: client-go's discovery client (kubectl's first requests, `/api` and
//! `/apis`, and `kubectl version`) cannot decode a JSON Status and prints "unknown" instead
//! of the message; it does print a `text/plain` body. Refusals of those requests are
//! therefore the message as text ([`Refusal::as_text_for`]), so a user refused at the door
//! reads why.

use serde::Serialize;

/// A refusal the filter answers locally; nothing is forwarded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub code: u16,
    pub message: String,
    /// Set on 401s: the value of `WWW-Authenticate`.
    pub www_authenticate: Option<String>,
    /// Answer the message as `text/plain` instead of a JSON Status.
    pub plain_text: bool,
}

/// Whether the request is one client-go's discovery client makes: aggregated discovery
/// (an `Accept` naming `apidiscovery.k8s.io`) or the discovery and version roots.
pub fn is_discovery_request(path: &str, accept: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    let path = path.strip_suffix('/').unwrap_or(path);
    matches!(path, "/api" | "/apis" | "/version") || accept.contains("apidiscovery.k8s.io")
}

#[derive(Serialize)]
struct StatusBody<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: Empty,
    status: &'static str,
    message: &'a str,
    reason: &'static str,
    code: u16,
}

#[derive(Serialize)]
struct Empty {}

impl Refusal {
    /// 401 Unauthorized. `token_present` adds `error="invalid_token"` (RFC 6750 section 3.1),
    /// as Envoy's jwt_authn does.
    pub fn unauthorized(realm: &str, token_present: bool, message: String) -> Refusal {
        let mut challenge = format!("Bearer realm=\"{}\"", quote_safe(realm));
        if token_present {
            challenge.push_str(", error=\"invalid_token\"");
        }
        Refusal {
            code: 401,
            message,
            www_authenticate: Some(challenge),
            plain_text: false,
        }
    }

    pub fn forbidden(message: String) -> Refusal {
        Refusal {
            code: 403,
            message,
            www_authenticate: None,
            plain_text: false,
        }
    }

    pub fn not_found(message: String) -> Refusal {
        Refusal {
            code: 404,
            message,
            www_authenticate: None,
            plain_text: false,
        }
    }

    /// 500: the gateway cannot forward the request safely (a misrouted request, a header
    /// rewrite the proxy did not apply). Nothing is forwarded.
    pub fn internal(message: String) -> Refusal {
        Refusal {
            code: 500,
            message,
            www_authenticate: None,
            plain_text: false,
        }
    }

    pub fn unavailable(message: String) -> Refusal {
        Refusal {
            code: 503,
            message,
            www_authenticate: None,
            plain_text: false,
        }
    }

    /// The same refusal as text when the request comes from client-go's discovery client
    /// (see the module docs).
    #[must_use]
    pub fn as_text_for(mut self, path: &str, accept: &str) -> Refusal {
        self.plain_text = is_discovery_request(path, accept);
        self
    }

    /// The Status `reason` the API server uses for this code.
    pub fn reason(&self) -> &'static str {
        match self.code {
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            500 => "InternalError",
            503 => "ServiceUnavailable",
            _ => "InternalError",
        }
    }

    /// The response body: a v1 Status, as JSON (or the message as a line of text).
    pub fn body(&self) -> String {
        if self.plain_text {
            return format!("{}\n", self.message);
        }
        let status = StatusBody {
            kind: "Status",
            api_version: "v1",
            metadata: Empty {},
            status: "Failure",
            message: &self.message,
            reason: self.reason(),
            code: self.code,
        };
        // Serializing plain strings and numbers cannot fail; keep a valid body regardless.
        serde_json::to_string(&status).unwrap_or_else(|_| {
            format!(
                "{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"Failure\",\"reason\":\"{}\",\"code\":{}}}",
                self.reason(),
                self.code
            )
        })
    }

    /// Response headers besides the status line.
    pub fn headers(&self) -> Vec<(&'static str, String)> {
        let content_type = if self.plain_text {
            "text/plain; charset=utf-8"
        } else {
            "application/json"
        };
        let mut headers = vec![
            ("content-type", content_type.to_string()),
            ("cache-control", "no-store".to_string()),
        ];
        if let Some(challenge) = &self.www_authenticate {
            headers.push(("www-authenticate", challenge.clone()));
        }
        headers
    }
}

/// Keeps a configured realm from breaking out of its quoted-string.
fn quote_safe(text: &str) -> String {
    text.chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn forbidden_body_matches_the_api_servers_shape() {
        let body = Refusal::forbidden("pods is forbidden: x".into()).body();
        assert_eq!(
            body,
            r#"{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods is forbidden: x","reason":"Forbidden","code":403}"#
        );
    }

    #[test]
    fn unauthorized_challenge_says_invalid_token_only_when_a_token_was_sent() {
        let with = Refusal::unauthorized("kubegate", true, "bad".into());
        assert_eq!(
            with.www_authenticate.as_deref(),
            Some("Bearer realm=\"kubegate\", error=\"invalid_token\"")
        );
        let without = Refusal::unauthorized("kubegate", false, "none".into());
        assert_eq!(
            without.www_authenticate.as_deref(),
            Some("Bearer realm=\"kubegate\"")
        );
        assert!(with
            .headers()
            .iter()
            .any(|(n, v)| *n == "www-authenticate" && v.contains("invalid_token")));
        assert!(with.body().contains("\"reason\":\"Unauthorized\""));
    }

    #[test]
    fn realm_cannot_break_the_quoted_string() {
        let r = Refusal::unauthorized("a\"b\\c\r\n", false, String::new());
        assert_eq!(r.www_authenticate.as_deref(), Some("Bearer realm=\"abc\""));
    }

    #[test]
    fn messages_are_json_escaped() {
        let body = Refusal::not_found("no route for \"x\"\n".into()).body();
        let parsed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed["message"], "no route for \"x\"\n");
        assert_eq!(parsed["reason"], "NotFound");
        assert_eq!(parsed["code"], 404);
        let body = Refusal::unavailable("keys".into()).body();
        assert!(body.contains("ServiceUnavailable"));
    }

    #[test]
    fn discovery_requests_get_the_message_as_text() {
        const AGGREGATED: &str =
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
        let refusal = || Refusal::forbidden("kubegate: user \"m\" is not allowed".into());
        for (path, accept) in [
            ("/api", AGGREGATED),
            ("/apis?timeout=32s", AGGREGATED),
            ("/api/", ""),
            ("/version?timeout=32s", "application/json, */*"),
        ] {
            let text = refusal().as_text_for(path, accept);
            assert_eq!(
                text.body(),
                "kubegate: user \"m\" is not allowed\n",
                "{path}"
            );
            assert!(text
                .headers()
                .contains(&("content-type", "text/plain; charset=utf-8".to_string())));
        }
        for (path, accept) in [
            (
                "/api/v1/namespaces/default/pods",
                "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
            ),
            ("/apis/apps/v1/deployments", "application/json, */*"),
            ("/apiserver", ""),
        ] {
            let json = refusal().as_text_for(path, accept);
            assert!(!json.plain_text, "{path}");
            let parsed: serde_json::Value = serde_json::from_str(&json.body()).unwrap();
            assert_eq!(parsed["kind"], "Status");
        }
    }
}
