//! What kubegate tells the outside world about each decision, as pure functions: the values
//! it hands the proxy as filter state (for access logs), and the optional audit line, one
//! JSON object per decision in the shape of a Kubernetes audit event (`audit.k8s.io/v1`
//! `Event`, level `Metadata`).
//!
//! Neither ever holds a token: they are built from the [`DecisionLog`] (user, groups,
//! route, reason: no credentials), the method and path, and the `x-request-id` header.
//! The path's query string is left out, as in the text line.

use crate::gate::DecisionLog;
use crate::request_info;
use serde::Deserialize;
use std::fmt::Write as _;

/// `decision_log` in the configuration: how the one line per decision is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecisionLogFormat {
    /// `decision=allowed user="..." method="..." path="..." route="..." reason="..."`.
    #[default]
    Text,
    /// One JSON object per decision, shaped like a Kubernetes audit event.
    AuditJson,
}

/// The filter state keys kubegate sets on every decision (Envoy stores each under
/// `wasm.<key>`: `%FILTER_STATE(wasm.kubegate.user:PLAIN)%` in an access log format).
pub const PROPERTY_USER: &str = "kubegate.user";
pub const PROPERTY_GROUPS: &str = "kubegate.groups";
pub const PROPERTY_DECISION: &str = "kubegate.decision";
pub const PROPERTY_REASON: &str = "kubegate.reason";
pub const PROPERTY_ROUTE: &str = "kubegate.route";

/// One decision as reported: the log, and the decision and reason to state (they differ
/// from the log's own when the glue turns a refusal into "unavailable").
#[derive(Clone, Copy, Debug)]
pub struct Reported<'a> {
    pub log: &'a DecisionLog,
    /// `allowed`, `unauthenticated`, `forbidden`, `not_found`, `unavailable` or
    /// `internal_error`.
    pub decision: &'a str,
    pub reason: &'a str,
}

impl<'a> Reported<'a> {
    /// The decision as the log states it.
    pub fn of(log: &'a DecisionLog) -> Reported<'a> {
        Reported {
            log,
            decision: log.kind.as_str(),
            reason: &log.reason,
        }
    }

    /// The filter state to set, `(key, value)`: user and route are empty when unknown (an
    /// access log prints `-` only when kubegate did not run), groups are joined by `,`.
    /// Control characters are escaped so that a value cannot start a new log line.
    pub fn properties(&self) -> [(&'static str, String); 5] {
        let user = self.log.user.as_deref().unwrap_or("");
        let route = self.log.route.as_deref().unwrap_or("");
        [
            (PROPERTY_USER, plain(user)),
            (PROPERTY_GROUPS, plain(&self.log.groups.join(","))),
            (PROPERTY_DECISION, plain(self.decision)),
            (PROPERTY_REASON, plain(self.reason)),
            (PROPERTY_ROUTE, plain(route)),
        ]
    }

    /// The text line (without the `kubegate: ` prefix the glue adds): the decision log's
    /// own line, or the same fields with another decision and reason. Debug formatting
    /// quotes and escapes client-controlled text.
    pub fn text_line(&self) -> String {
        let log = self.log;
        if self.decision == log.kind.as_str() && self.reason == log.reason {
            return log.to_string();
        }
        format!(
            "decision={} user={:?} method={:?} path={:?} route={:?} reason={:?}",
            self.decision,
            log.user.as_deref().unwrap_or("-"),
            log.method,
            log.path,
            log.route.as_deref().unwrap_or("-"),
            self.reason
        )
    }

    /// The audit line: one JSON object on one line. `path_and_query` is the request's
    /// `:path` (the resolver needs the query to tell `watch` from `list`; it is not
    /// written out), `request_id` its `x-request-id`.
    pub fn audit_line(&self, path_and_query: &str, request_id: Option<&str>) -> String {
        let log = self.log;
        let mut out = String::with_capacity(512);
        out.push_str(r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata""#);
        if let Some(id) = request_id.filter(|id| !id.is_empty()) {
            field(&mut out, "auditID", id);
        }
        field(&mut out, "stage", stage(self.decision));
        field(&mut out, "requestURI", &log.path);
        // The API server's own reading of the request; one it cannot read has no verb
        // and no object (kubegate refuses those when a policy needs them).
        let info = request_info::resolve(&log.method, path_and_query).ok();
        if let Some(info) = &info {
            field(&mut out, "verb", &info.verb);
        }
        if let Some(user) = &log.user {
            out.push_str(r#","user":{"username":"#);
            string(&mut out, user);
            if !log.groups.is_empty() {
                out.push_str(r#","groups":["#);
                for (i, group) in log.groups.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    string(&mut out, group);
                }
                out.push(']');
            }
            out.push('}');
        }
        if let Some(info) = info.as_ref().filter(|i| i.is_resource_request) {
            out.push_str(r#","objectRef":{"#);
            let mut first = true;
            for (key, value) in [
                ("resource", &info.resource),
                ("namespace", &info.namespace),
                ("name", &info.name),
                ("apiGroup", &info.api_group),
                ("apiVersion", &info.api_version),
                ("subresource", &info.subresource),
            ] {
                if value.is_empty() {
                    continue;
                }
                if !first {
                    out.push(',');
                }
                first = false;
                string(&mut out, key);
                out.push(':');
                string(&mut out, value);
            }
            out.push('}');
        }
        if let Some(code) = response_code(self.decision) {
            let _ = write!(out, r#","responseStatus":{{"code":{code}}}"#);
        }
        out.push_str(r#","annotations":{"#);
        // The API server's authorization annotations, for the decisions that are one.
        match self.decision {
            "allowed" => out.push_str(r#""authorization.k8s.io/decision":"allow","#),
            "forbidden" => out.push_str(r#""authorization.k8s.io/decision":"forbid","#),
            _ => {}
        }
        if matches!(self.decision, "allowed" | "forbidden") {
            string(&mut out, "authorization.k8s.io/reason");
            out.push(':');
            string(&mut out, self.reason);
            out.push(',');
        }
        string(&mut out, "kubegate.io/decision");
        out.push(':');
        string(&mut out, self.decision);
        out.push(',');
        string(&mut out, "kubegate.io/reason");
        out.push(':');
        string(&mut out, self.reason);
        if let Some(route) = &log.route {
            out.push(',');
            string(&mut out, "kubegate.io/route");
            out.push(':');
            string(&mut out, route);
        }
        out.push_str("}}");
        out
    }
}

/// Allowed requests are logged as they leave for the API server; refusals are complete
/// (kubegate answered them).
fn stage(decision: &str) -> &'static str {
    if decision == "allowed" {
        "RequestReceived"
    } else {
        "ResponseComplete"
    }
}

/// The status kubegate answered with; none for allowed requests (the API server answers).
fn response_code(decision: &str) -> Option<u16> {
    match decision {
        "unauthenticated" => Some(401),
        "forbidden" => Some(403),
        "not_found" => Some(404),
        "unavailable" => Some(503),
        "internal_error" => Some(500),
        _ => None,
    }
}

fn field(out: &mut String, key: &str, value: &str) {
    out.push(',');
    string(out, key);
    out.push(':');
    string(out, value);
}

/// A JSON string (RFC 8259): quotes, backslashes and control characters escaped; `<`, `>`
/// and `&` too, so the line can be embedded in HTML or a shell heredoc without surprises.
fn string(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\u{7f}' || matches!(c, '<' | '>' | '&') => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            // Line and paragraph separators end a line for some log readers.
            '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A filter state value: the text itself, with control characters escaped as Rust does
/// (`\n`, `\u{1b}`), so that a text access log line cannot be split or recoloured.
pub fn plain(value: &str) -> String {
    if !value.chars().any(char::is_control) {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::Kind;

    fn log(kind: Kind, user: Option<&str>, groups: &[&str], path: &str) -> DecisionLog {
        DecisionLog {
            kind,
            user: user.map(str::to_string),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            method: "GET".to_string(),
            path: path.split('?').next().unwrap().to_string(),
            route: Some("https://k8s.example.com".to_string()),
            reason: "allow rule 1".to_string(),
        }
    }

    fn parsed(line: &str) -> serde_json::Value {
        assert!(!line.contains('\n'), "{line}");
        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
    }

    #[test]
    fn allowed_list_is_an_audit_event_with_user_verb_and_object() {
        let path = "/api/v1/namespaces/default/pods?limit=500";
        let l = log(Kind::Allowed, Some("a@example.com"), &["dev", "ops"], path);
        let line = Reported::of(&l).audit_line(path, Some("req-1"));
        let v = parsed(&line);
        assert_eq!(v["kind"], "Event");
        assert_eq!(v["apiVersion"], "audit.k8s.io/v1");
        assert_eq!(v["level"], "Metadata");
        assert_eq!(v["auditID"], "req-1");
        assert_eq!(v["stage"], "RequestReceived");
        assert_eq!(v["verb"], "list");
        assert_eq!(v["requestURI"], "/api/v1/namespaces/default/pods");
        assert_eq!(v["user"]["username"], "a@example.com");
        assert_eq!(v["user"]["groups"], serde_json::json!(["dev", "ops"]));
        assert_eq!(
            v["objectRef"],
            serde_json::json!({"resource": "pods", "namespace": "default", "apiVersion": "v1"})
        );
        assert!(v.get("responseStatus").is_none());
        let a = &v["annotations"];
        assert_eq!(a["authorization.k8s.io/decision"], "allow");
        assert_eq!(a["authorization.k8s.io/reason"], "allow rule 1");
        assert_eq!(a["kubegate.io/decision"], "allowed");
        assert_eq!(a["kubegate.io/route"], "https://k8s.example.com");
    }

    #[test]
    fn watch_exec_and_named_objects_resolve_as_the_api_server_does() {
        let cases = [
            (
                "/api/v1/namespaces/ns/pods?watch=true",
                "watch",
                serde_json::json!({"resource": "pods", "namespace": "ns", "apiVersion": "v1"}),
            ),
            (
                "/api/v1/namespaces/ns/pods/web-1/exec?command=sh",
                "get",
                serde_json::json!({"resource": "pods", "namespace": "ns", "name": "web-1", "apiVersion": "v1", "subresource": "exec"}),
            ),
            (
                "/apis/apps/v1/namespaces/ns/deployments/web",
                "get",
                serde_json::json!({"resource": "deployments", "namespace": "ns", "name": "web", "apiGroup": "apps", "apiVersion": "v1"}),
            ),
        ];
        for (path, verb, object) in cases {
            let l = log(Kind::Allowed, Some("a"), &[], path);
            let v = parsed(&Reported::of(&l).audit_line(path, None));
            assert_eq!(v["verb"], verb, "{path}");
            assert_eq!(v["objectRef"], object, "{path}");
            assert!(v.get("auditID").is_none());
            assert!(v["user"].get("groups").is_none());
        }
        // A non-resource request has a verb and no object.
        let l = log(Kind::Allowed, Some("a"), &[], "/version");
        let v = parsed(&Reported::of(&l).audit_line("/version", None));
        assert_eq!(v["verb"], "get");
        assert!(v.get("objectRef").is_none());
    }

    #[test]
    fn refusals_carry_their_status_and_no_user_when_there_is_none() {
        let mut l = log(Kind::Unauthenticated, None, &[], "/api");
        l.reason = "kubegate: no session token".into();
        let v = parsed(&Reported::of(&l).audit_line("/api", Some("r")));
        assert_eq!(v["stage"], "ResponseComplete");
        assert_eq!(v["responseStatus"]["code"], 401);
        assert!(v.get("user").is_none());
        assert!(v["annotations"]
            .get("authorization.k8s.io/decision")
            .is_none());
        assert_eq!(v["annotations"]["kubegate.io/decision"], "unauthenticated");

        let l = log(Kind::Forbidden, Some("m@evil.example"), &["x"], "/api");
        let v = parsed(&Reported::of(&l).audit_line("/api", None));
        assert_eq!(v["responseStatus"]["code"], 403);
        assert_eq!(v["annotations"]["authorization.k8s.io/decision"], "forbid");
        assert_eq!(v["user"]["username"], "m@evil.example");

        let reported = Reported {
            log: &l,
            decision: "unavailable",
            reason: "no usable remote key set",
        };
        let v = parsed(&reported.audit_line("/api", None));
        assert_eq!(v["responseStatus"]["code"], 503);
        assert_eq!(
            v["annotations"]["kubegate.io/reason"],
            "no usable remote key set"
        );
    }

    #[test]
    fn client_text_cannot_break_the_json_or_add_a_line() {
        let nasty = "a\"b\\c\nd\re\u{1b}f\u{2028}g<h>&\u{7f}";
        let mut l = log(Kind::Forbidden, Some(nasty), &[nasty], nasty);
        l.route = Some(nasty.into());
        l.reason = nasty.into();
        l.method = nasty.into();
        let line = Reported::of(&l).audit_line(nasty, Some(nasty));
        assert!(!line.contains(['\n', '\r', '\u{1b}', '\u{2028}', '\u{7f}']));
        let v = parsed(&line);
        assert_eq!(v["user"]["username"], nasty);
        assert_eq!(v["auditID"], nasty);
        assert_eq!(v["annotations"]["kubegate.io/reason"], nasty);
        assert!(
            v.get("verb").is_none(),
            "an invalid method resolves to nothing"
        );
    }

    #[test]
    fn properties_are_one_per_fact_and_escape_control_characters() {
        let l = log(
            Kind::Allowed,
            Some("a@example.com"),
            &["dev", "ops"],
            "/api",
        );
        let props = Reported::of(&l).properties();
        assert_eq!(
            props.map(|(k, v)| format!("{k}={v}")),
            [
                "kubegate.user=a@example.com",
                "kubegate.groups=dev,ops",
                "kubegate.decision=allowed",
                "kubegate.reason=allow rule 1",
                "kubegate.route=https://k8s.example.com",
            ]
        );
        let mut l = log(Kind::NotFound, None, &[], "/");
        l.route = None;
        l.reason = "no route for host \"x\ny\"".into();
        let props = Reported::of(&l).properties();
        assert_eq!(props[0].1, "");
        assert_eq!(props[1].1, "");
        assert_eq!(props[2].1, "not_found");
        assert_eq!(props[3].1, "no route for host \"x\\ny\"");
        assert_eq!(props[4].1, "");
    }

    #[test]
    fn the_text_line_is_the_decision_logs_own() {
        let l = log(Kind::Forbidden, Some("m"), &["g"], "/api");
        assert_eq!(Reported::of(&l).text_line(), l.to_string());
        let reported = Reported {
            log: &l,
            decision: "unavailable",
            reason: "no usable remote key set",
        };
        assert!(reported
            .text_line()
            .starts_with("decision=unavailable user=\"m\""));
    }

    #[test]
    fn the_format_is_text_unless_audit_json_is_asked_for() {
        let parse = |s: &str| serde_json::from_str::<DecisionLogFormat>(s);
        assert_eq!(DecisionLogFormat::default(), DecisionLogFormat::Text);
        assert_eq!(parse("\"text\"").unwrap(), DecisionLogFormat::Text);
        assert_eq!(
            parse("\"audit_json\"").unwrap(),
            DecisionLogFormat::AuditJson
        );
        assert!(parse("\"json\"").is_err());
    }
}
