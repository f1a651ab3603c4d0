//! The header plan: what the API server receives instead of what the client sent.
//!
//! Removed: every credential and identity the client supplied (Authorization,
//! Proxy-Authorization, the token's own header and cookie, bearer WebSocket subprotocols,
//! every `impersonate-*` header and the API server's front-proxy identity headers
//! `X-Remote-User`, `X-Remote-Group`, `X-Remote-Extra-*`, in any letter case), plus the
//! configured `strip_request_headers`. Added: the service account's bearer token and the
//! impersonation headers for the verified identity, one `Impersonate-Group` per group
//! because the API server does not split comma-joined groups.
//!
//! The glue applies the plan with [`HeaderPlan::writes`] and then reads the request back
//! and asks [`HeaderPlan::check`] whether it is exactly what the plan says: a proxy write
//! that failed, or that reported success without changing the map, must never forward a
//! request with the client's credentials beside the gateway's.

use crate::identity::Identity;
use crate::token::{cookie_header_without, cookie_values, TokenSource};

/// Header operations for the proxy to apply: remove, then add.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderPlan {
    /// Names (lower case) whose every value is removed.
    pub remove: Vec<String>,
    /// Headers appended after the removals (a name may repeat). `authorization` is both
    /// removed and added: the glue does both with one replace (see [`HeaderPlan::writes`]).
    pub add: Vec<(String, String)>,
    /// Session cookie names: no Cookie header may carry them afterwards.
    pub session_cookies: Vec<String>,
}

/// One header-map write, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write<'p> {
    /// Drop every value of the name.
    Remove(&'p str),
    /// Leave exactly this one value (the proxy's replace).
    Replace(&'p str, &'p str),
    /// Append a value.
    Add(&'p str, &'p str),
}

/// Header names no client may send upstream, whatever the configuration.
const CLIENT_CREDENTIAL_HEADERS: [&str; 2] = ["authorization", "proxy-authorization"];
/// Set with one replace: exactly one value, whatever the client sent.
const REPLACED: &str = "authorization";
pub const IMPERSONATE_PREFIX: &str = "impersonate-";
/// The API server's request-header (front-proxy) authenticator reads the identity from
/// these when the caller presents a client certificate of `--requestheader-client-ca-file`
/// (the defaults of `--requestheader-username-headers`, `-group-headers` and
/// `-extra-headers-prefix`; kubernetes/apiserver pkg/authentication/request/headerrequest).
/// kubegate never authenticates that way, but if a gateway were ever given such a
/// certificate, a client's `X-Remote-User` would become the identity: they never go up.
const FRONT_PROXY_HEADERS: [&str; 2] = ["x-remote-user", "x-remote-group"];
const FRONT_PROXY_EXTRA_PREFIX: &str = "x-remote-extra-";
/// A bearer token sent as a WebSocket subprotocol: the API server authenticates it too
/// (k8s.io/apiserver's websocket ProtocolAuthenticator, for browsers that cannot set
/// Authorization), so it is a client credential like any other and never goes upstream.
const WEBSOCKET_BEARER_PROTOCOL: &str = "base64url.bearer.authorization.k8s.io.";

/// Whether the client sent any `Impersonate-*` header (any letter case).
pub fn has_client_impersonation(headers: &[(String, String)]) -> bool {
    headers.iter().any(|(name, _)| is_impersonation(name))
}

fn is_impersonation(name: &str) -> bool {
    starts_with_ignore_case(name, IMPERSONATE_PREFIX)
}

/// `X-Remote-User`, `X-Remote-Group`, `X-Remote-Extra-*` in any letter case.
pub fn is_front_proxy_header(name: &str) -> bool {
    FRONT_PROXY_HEADERS
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h))
        || starts_with_ignore_case(name, FRONT_PROXY_EXTRA_PREFIX)
}

fn starts_with_ignore_case(name: &str, prefix: &str) -> bool {
    name.get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// A header name kubegate writes itself (lower case): `authorization`, every
/// `impersonate-*`, and the two it rewrites (`cookie`, `sec-websocket-protocol`).
pub fn is_set_by_kubegate(lower: &str) -> bool {
    lower == REPLACED
        || lower == "cookie"
        || lower == "sec-websocket-protocol"
        || is_impersonation(lower)
}

/// An RFC 9110 field name: one or more `tchar`.
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_tchar)
}

fn is_tchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

/// Builds the plan for an allowed request. `headers` are all request pairs as received.
pub fn plan(
    headers: &[(String, String)],
    token_sources: &[TokenSource],
    identity: &Identity,
    service_account_token: &str,
) -> HeaderPlan {
    plan_with(headers, token_sources, &[], identity, service_account_token)
}

/// [`plan`], also removing every value of the `strip` names (lower case).
pub fn plan_with(
    headers: &[(String, String)],
    token_sources: &[TokenSource],
    strip: &[String],
    identity: &Identity,
    service_account_token: &str,
) -> HeaderPlan {
    let mut remove: Vec<String> = CLIENT_CREDENTIAL_HEADERS
        .iter()
        .map(|n| n.to_string())
        .collect();
    remove.extend(strip.iter().map(|n| n.to_ascii_lowercase()));
    let mut session_cookies: Vec<String> = Vec::new();
    for source in token_sources {
        match source {
            TokenSource::Header { name, .. } => remove.push(name.to_ascii_lowercase()),
            TokenSource::Cookie { name } => session_cookies.push(name.clone()),
        }
    }
    for (name, _) in headers {
        if is_impersonation(name) || is_front_proxy_header(name) {
            remove.push(name.to_ascii_lowercase());
        }
    }

    let mut add = Vec::new();
    if !session_cookies.is_empty() {
        // Rewrite every Cookie header without the session cookie; other cookies stay.
        let cookie_values: Vec<&str> = headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .map(|(_, v)| v.as_str())
            .collect();
        if !cookie_values.is_empty() {
            remove.push("cookie".to_string());
            for value in cookie_values {
                let kept = session_cookies
                    .iter()
                    .try_fold(value.to_string(), |acc, name| {
                        cookie_header_without(&acc, name)
                    });
                if let Some(kept) = kept {
                    add.push(("cookie".to_string(), kept));
                }
            }
        }
    }
    // Sec-WebSocket-Protocol keeps its other subprotocols (kubectl's channel versions).
    let protocols: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-protocol"))
        .map(|(_, v)| v.as_str())
        .collect();
    if protocols
        .iter()
        .any(|v| v.split(',').any(is_bearer_protocol))
    {
        remove.push("sec-websocket-protocol".to_string());
        for value in protocols {
            let kept: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty() && !is_bearer_protocol(p))
                .collect();
            if !kept.is_empty() {
                add.push(("sec-websocket-protocol".to_string(), kept.join(", ")));
            }
        }
    }
    remove.sort();
    remove.dedup();

    add.push((
        REPLACED.to_string(),
        format!("Bearer {service_account_token}"),
    ));
    add.push(("impersonate-user".to_string(), identity.user.clone()));
    for group in &identity.groups {
        add.push(("impersonate-group".to_string(), group.clone()));
    }
    if let Some(uid) = &identity.uid {
        add.push(("impersonate-uid".to_string(), uid.clone()));
    }
    for (key, values) in &identity.extra {
        let name = format!("impersonate-extra-{}", escape_extra_key(key));
        for value in values {
            add.push((name.clone(), value.clone()));
        }
    }
    HeaderPlan {
        remove,
        add,
        session_cookies,
    }
}

impl HeaderPlan {
    /// The writes that apply the plan: every removal (except `authorization`), then
    /// `authorization` with one replace (never remove-then-add, so no moment and no
    /// failure leaves the client's value or no value), then the additions.
    pub fn writes(&self) -> Vec<Write<'_>> {
        let mut writes: Vec<Write<'_>> = self
            .remove
            .iter()
            .filter(|name| name.as_str() != REPLACED)
            .map(|name| Write::Remove(name))
            .collect();
        for (name, value) in &self.add {
            if name == REPLACED {
                writes.push(Write::Replace(name, value));
            }
        }
        for (name, value) in &self.add {
            if name != REPLACED {
                writes.push(Write::Add(name, value));
            }
        }
        writes
    }

    /// Whether `after` (every request header pair, read back from the proxy once the plan
    /// was applied) is what the plan says: each name the plan touches holds exactly the
    /// plan's values, in order (none for a removed name; one `authorization`, the
    /// gateway's); no `impersonate-*` name the plan did not add, no front-proxy header, no
    /// session cookie, no bearer WebSocket subprotocol. The error names the header, never
    /// a value.
    pub fn check(&self, after: &[(String, String)]) -> Result<(), String> {
        let planned = |name: &str| -> Vec<&str> {
            self.add
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let present = |name: &str| -> Vec<&str> {
            after
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect()
        };
        let controlled = self
            .remove
            .iter()
            .map(String::as_str)
            .chain(self.add.iter().map(|(n, _)| n.as_str()));
        for name in controlled {
            let (want, have) = (planned(name), present(name));
            if want != have {
                return Err(format!(
                    "{name}: {} value(s) where the plan has {}",
                    have.len(),
                    want.len()
                ));
            }
        }
        for (name, value) in after {
            if is_impersonation(name) && !self.add.iter().any(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                return Err(format!(
                    "{}: not added by kubegate",
                    name.to_ascii_lowercase()
                ));
            }
            if is_front_proxy_header(name) {
                return Err(format!(
                    "{}: a front-proxy identity header",
                    name.to_ascii_lowercase()
                ));
            }
            if name.eq_ignore_ascii_case("sec-websocket-protocol")
                && value.split(',').any(is_bearer_protocol)
            {
                return Err(
                    "sec-websocket-protocol: a bearer subprotocol is still there".to_string(),
                );
            }
        }
        if self
            .session_cookies
            .iter()
            .any(|c| !cookie_values(after, c).is_empty())
        {
            return Err("cookie: the session cookie is still there".to_string());
        }
        Ok(())
    }
}

fn is_bearer_protocol(protocol: &str) -> bool {
    let protocol = protocol.trim();
    protocol
        .get(..WEBSOCKET_BEARER_PROTOCOL.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(WEBSOCKET_BEARER_PROTOCOL))
}

/// Lower-cases an extra key (ASCII only: the API server lower-cases the header name, in
/// which anything else arrives percent-encoded) and percent-encodes every byte that is not legal in a header
/// name token (RFC 9110 `tchar`), and `%` itself, as client-go does, so the API server's
/// unescaping gives back the key.
pub fn escape_extra_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.to_ascii_lowercase().bytes() {
        let legal = byte.is_ascii_alphanumeric() || b"!#$&'*+-.^_`|~".contains(&byte);
        if legal {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn identity() -> Identity {
        Identity {
            user: "a@example.com".into(),
            groups: vec!["dev".into(), "ops".into()],
            uid: Some("u-1".into()),
            extra: vec![("acme.com/Project".into(), vec!["x".into(), "y".into()])],
            unprefixed_groups: vec!["dev".into(), "ops".into()],
        }
    }

    /// Applies a plan the way the proxy does, to check what the API server receives.
    fn apply(headers: &[(String, String)], plan: &HeaderPlan) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = headers
            .iter()
            .filter(|(n, _)| !plan.remove.contains(&n.to_ascii_lowercase()))
            .cloned()
            .collect();
        out.extend(plan.add.iter().cloned());
        out
    }

    #[test]
    fn client_credentials_and_impersonation_are_removed_in_any_case() {
        let headers = h(&[
            (":method", "GET"),
            ("Authorization", "Bearer client"),
            ("PROXY-AUTHORIZATION", "Basic x"),
            ("Impersonate-User", "admin"),
            ("impersonate-group", "system:masters"),
            ("IMPERSONATE-GROUP", "system:masters"),
            ("iMpErSoNaTe-UiD", "0"),
            ("Impersonate-Extra-scopes", "all"),
            ("accept", "application/json"),
        ]);
        let plan = plan(&headers, &TokenSource::default_sources(), &identity(), "sa");
        let out = apply(&headers, &plan);
        let client_values: Vec<&str> = out.iter().map(|(_, v)| v.as_str()).collect();
        for smuggled in [
            "Bearer client",
            "Basic x",
            "admin",
            "system:masters",
            "0",
            "all",
        ] {
            assert!(!client_values.contains(&smuggled), "{smuggled} survived");
        }
        assert!(out.contains(&("accept".into(), "application/json".into())));
        assert!(out.contains(&(":method".into(), "GET".into())));
    }

    #[test]
    fn service_account_and_impersonation_are_added() {
        let plan = plan(
            &[],
            &TokenSource::default_sources(),
            &identity(),
            "sa-token",
        );
        assert_eq!(
            plan.add,
            vec![
                ("authorization".into(), "Bearer sa-token".into()),
                ("impersonate-user".into(), "a@example.com".into()),
                ("impersonate-group".into(), "dev".into()),
                ("impersonate-group".into(), "ops".into()),
                ("impersonate-uid".into(), "u-1".into()),
                ("impersonate-extra-acme.com%2Fproject".into(), "x".into()),
                ("impersonate-extra-acme.com%2Fproject".into(), "y".into()),
            ]
        );
        let authorizations = plan
            .add
            .iter()
            .filter(|(n, _)| n == "authorization")
            .count();
        assert_eq!(authorizations, 1);
    }

    #[test]
    fn session_cookie_is_removed_other_cookies_stay() {
        let sources = vec![
            TokenSource::Header {
                name: "X-Token".into(),
                prefix: String::new(),
            },
            TokenSource::Cookie {
                name: "_session".into(),
            },
        ];
        let headers = h(&[
            ("cookie", "a=1; _session=jwt"),
            ("cookie", "_session=jwt"),
            ("x-token", "jwt"),
        ]);
        let plan = plan(&headers, &sources, &identity(), "sa");
        let out = apply(&headers, &plan);
        let cookies: Vec<&str> = out
            .iter()
            .filter(|(n, _)| n == "cookie")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(cookies, vec!["a=1"]);
        assert!(!out.iter().any(|(n, _)| n == "x-token"));
    }

    #[test]
    fn websocket_bearer_subprotocols_are_removed_other_subprotocols_stay() {
        // Regression: a token in Sec-WebSocket-Protocol is a credential the API server
        // accepts (base64url.bearer.authorization.k8s.io.<token>); it reached the upstream.
        let headers = h(&[
            (
                "Sec-WebSocket-Protocol",
                "v5.channel.k8s.io, base64url.bearer.authorization.k8s.io.c2VjcmV0, v4.channel.k8s.io",
            ),
            ("sec-websocket-protocol", "BASE64URL.Bearer.Authorization.K8S.IO.eA"),
        ]);
        let first = plan(&headers, &TokenSource::default_sources(), &identity(), "sa");
        let out = apply(&headers, &first);
        let protocols: Vec<&str> = out
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("sec-websocket-protocol"))
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(protocols, vec!["v5.channel.k8s.io, v4.channel.k8s.io"]);
        // Without a bearer subprotocol the header is left alone.
        let headers = h(&[("sec-websocket-protocol", "v5.channel.k8s.io")]);
        let plan = plan(&headers, &TokenSource::default_sources(), &identity(), "sa");
        assert!(!plan.remove.contains(&"sec-websocket-protocol".to_string()));
        assert_eq!(apply(&headers, &plan)[0].1, "v5.channel.k8s.io");
    }

    #[test]
    fn no_cookie_header_means_no_cookie_rewrite() {
        let sources = vec![TokenSource::Cookie {
            name: "_session".into(),
        }];
        let plan = plan(&h(&[("accept", "*/*")]), &sources, &identity(), "sa");
        assert!(!plan.remove.contains(&"cookie".to_string()));
        assert!(!plan.add.iter().any(|(n, _)| n == "cookie"));
    }

    #[test]
    fn front_proxy_and_configured_headers_are_removed_in_any_case() {
        let headers = h(&[
            ("X-Remote-User", "admin"),
            ("x-remote-group", "system:masters"),
            ("X-REMOTE-EXTRA-Scopes", "all"),
            ("x-remote-other", "kept"),
            ("X-Debug", "1"),
        ]);
        let plan = plan_with(
            &headers,
            &TokenSource::default_sources(),
            &["x-debug".to_string()],
            &identity(),
            "sa",
        );
        let out = apply(&headers, &plan);
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert!(names.contains(&"x-remote-other"));
        for gone in [
            "X-Remote-User",
            "x-remote-group",
            "X-REMOTE-EXTRA-Scopes",
            "X-Debug",
        ] {
            assert!(!names.contains(&gone), "{gone}");
        }
        assert_eq!(plan.check(&out), Ok(()));
    }

    #[test]
    fn writes_replace_authorization_once_and_never_remove_it() {
        let plan = plan(&[], &TokenSource::default_sources(), &identity(), "sa");
        let writes = plan.writes();
        assert!(!writes.contains(&Write::Remove("authorization")));
        let replaces: Vec<&Write> = writes
            .iter()
            .filter(|w| matches!(w, Write::Replace(..)))
            .collect();
        assert_eq!(
            replaces,
            vec![&Write::Replace("authorization", "Bearer sa")]
        );
        assert!(!writes
            .iter()
            .any(|w| matches!(w, Write::Add("authorization", _))));
    }

    #[test]
    fn the_read_back_must_be_exactly_the_plan() {
        let sources = vec![
            TokenSource::Header {
                name: "authorization".into(),
                prefix: "Bearer ".into(),
            },
            TokenSource::Cookie {
                name: "_session".into(),
            },
        ];
        let headers = h(&[
            (":path", "/api"),
            ("authorization", "Bearer client"),
            ("proxy-authorization", "Basic x"),
            ("impersonate-user", "admin"),
            ("x-remote-user", "admin"),
            ("cookie", "a=1; _session=jwt"),
        ]);
        let plan = plan(&headers, &sources, &identity(), "sa");
        let good = apply(&headers, &plan);
        assert_eq!(plan.check(&good), Ok(()));
        let with = |extra: (&str, &str)| {
            let mut out = good.clone();
            out.push((extra.0.to_string(), extra.1.to_string()));
            out
        };
        let without = |name: &str, value: &str| -> Vec<(String, String)> {
            good.iter()
                .filter(|(n, v)| !(n == name && v == value))
                .cloned()
                .collect()
        };
        for (what, bad) in [
            (
                "client authorization left",
                with(("authorization", "Bearer client")),
            ),
            ("sa bearer twice", with(("authorization", "Bearer sa"))),
            ("sa bearer missing", without("authorization", "Bearer sa")),
            (
                "proxy-authorization left",
                with(("Proxy-Authorization", "Basic x")),
            ),
            (
                "client impersonation left",
                with(("impersonate-user", "admin")),
            ),
            (
                "a group too many",
                with(("impersonate-group", "system:masters")),
            ),
            ("a group missing", without("impersonate-group", "ops")),
            (
                "an unplanned impersonation",
                with(("impersonate-extra-x", "y")),
            ),
            ("front proxy left", with(("X-Remote-Group", "g"))),
            ("front proxy extra", with(("x-remote-extra-a", "b"))),
            ("session cookie left", with(("cookie", "_session=jwt"))),
            (
                "bearer subprotocol",
                with((
                    "sec-websocket-protocol",
                    "base64url.bearer.authorization.k8s.io.eA",
                )),
            ),
            ("user missing", without("impersonate-user", "a@example.com")),
        ] {
            let error = plan.check(&bad).expect_err(what);
            assert!(
                !error.contains("jwt") && !error.contains("Bearer"),
                "{what}: {error}"
            );
        }
        // An unrelated header the proxy adds is not the plan's business.
        assert_eq!(plan.check(&with(("x-request-id", "1"))), Ok(()));
    }

    #[test]
    fn header_names_and_names_kubegate_sets() {
        for name in ["x-debug", "X-Forwarded-Client-Cert", "a!#$%&'*+-.^_`|~1"] {
            assert!(is_header_name(name), "{name}");
        }
        for name in ["", ":path", "a b", "a:b", "é", "a\r"] {
            assert!(!is_header_name(name), "{name}");
        }
        for name in [
            "authorization",
            "impersonate-user",
            "impersonate-",
            "cookie",
            "sec-websocket-protocol",
        ] {
            assert!(is_set_by_kubegate(name), "{name}");
        }
        assert!(!is_set_by_kubegate("proxy-authorization"));
    }

    #[test]
    fn extra_keys_are_escaped_like_client_go() {
        assert_eq!(escape_extra_key("acme.com/project"), "acme.com%2Fproject");
        assert_eq!(escape_extra_key("Scopes"), "scopes");
        assert_eq!(escape_extra_key("a%b c"), "a%25b%20c");
        assert_eq!(escape_extra_key("ü"), "%C3%BC");
        assert_eq!(escape_extra_key("a:b"), "a%3Ab");
    }
}
