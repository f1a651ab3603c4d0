//! `kubernetes_exec_class: true | false`: whether the request can run a command in a
//! container or open a connection to a backend of the client's choosing.
//!
//! ```yaml
//! - deny: {and: [{groups: {has: contractors}}, {kubernetes_exec_class: true}]}
//! ```
//!
//! It holds (`true`) for:
//! - every request the API server authorizes as one of those, whatever its verb
//!   ([`RequestInfo::is_exec_class`]): `pods/exec`, `pods/attach`, `pods/portforward` (as a
//!   WebSocket `GET` or an SPDY `POST`), any `*/proxy` subresource (`pods/proxy`,
//!   `services/proxy`, `nodes/proxy` and the kubelet paths below it such as
//!   `nodes/N/proxy/exec/...` and `nodes/N/proxy/run/...`), and the deprecated `/api/v1/proxy/`
//!   prefix;
//! - every request that asks to switch protocols, on any path ([`asks_for_protocol_upgrade`]):
//!   once upgraded, the connection is a byte stream no policy sees again.
//!
//! Why a criterion of its own: `kubernetes_verb` is what the API server authorizes, and it
//! authorizes `nodes/proxy`, `pods/proxy` and `services/proxy` as `get` for a WebSocket `GET`,
//! so "only get, list and watch" does not mean "read-only". RBAC's built-in `view` role grants
//! none of these subresources (its rules leave them out); `edit` grants them.
//!
//! `kubernetes_exec_class: false` holds for a resolved request that is none of the above. Both
//! values are false for a request the resolver could not read and that asks for no upgrade
//! (the filter refuses such requests when a policy has a `kubernetes_*` criterion).

use super::error::JsonPath;
use super::{PolicyError, RequestContext};

pub(crate) const NAME: &str = "kubernetes_exec_class";

/// `kubernetes_exec_class: true | false`.
pub(crate) fn parse(value: &serde_json::Value, path: &JsonPath<'_>) -> Result<bool, PolicyError> {
    value.as_bool().ok_or_else(|| {
        path.wrong_type(
            "true (exec, attach, port-forward, proxy or a protocol upgrade) or false (anything \
             else)",
            value,
        )
    })
}

/// Whether the request is exec-class; `None` when that is unknown (not resolved, no upgrade).
pub(crate) fn of(context: &RequestContext<'_>) -> Option<bool> {
    if context.protocol_upgrade {
        return Some(true);
    }
    context.kubernetes.map(|info| info.is_exec_class())
}

/// Whether a request asks to switch protocols, from its method and headers (names in any
/// letter case, as the proxy hands them over): an `Upgrade` header (WebSocket, SPDY/3.1, h2c,
/// anything), a `Connection` header listing `upgrade`, an HTTP/2 or HTTP/3 extended CONNECT
/// (`:protocol`, RFC 8441 and RFC 9220), or the `CONNECT` method.
///
/// Any one of them counts. Envoy upgrades a request only with both headers, and hands the
/// filters an HTTP/2 extended CONNECT in its HTTP/1 form (`Upgrade` plus `Connection: upgrade`;
/// Envoy docs, "HTTP upgrades"), so asking for less than Envoy needs can only refuse more,
/// never less; ordinary kubectl requests carry none of them.
pub fn asks_for_protocol_upgrade(method: &str, headers: &[(String, String)]) -> bool {
    method == "CONNECT"
        || headers.iter().any(|(name, value)| {
            name.eq_ignore_ascii_case("upgrade")
                || name == ":protocol"
                || (name.eq_ignore_ascii_case("connection")
                    && value
                        .split(',')
                        .any(|option| option.trim().eq_ignore_ascii_case("upgrade")))
        })
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use serde_json::json;

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    #[test]
    fn upgrades_in_every_form() {
        for (method, pairs) in [
            (
                "GET",
                &[("upgrade", "websocket"), ("connection", "Upgrade")][..],
            ),
            ("GET", &[("Upgrade", "SPDY/3.1")][..]),
            ("POST", &[("UPGRADE", "")][..]),
            ("GET", &[("connection", "keep-alive, Upgrade ")][..]),
            ("GET", &[("Connection", "UPGRADE")][..]),
            ("CONNECT", &[(":protocol", "websocket")][..]),
            ("GET", &[(":protocol", "websocket")][..]),
            ("CONNECT", &[][..]),
        ] {
            assert!(
                asks_for_protocol_upgrade(method, &headers(pairs)),
                "{method} {pairs:?}"
            );
        }
        for (method, pairs) in [
            ("GET", &[][..]),
            ("GET", &[("connection", "keep-alive")][..]),
            ("GET", &[("connection", "upgraded, x-upgrade")][..]),
            (
                "POST",
                &[("x-upgrade", "websocket"), ("accept", "upgrade")][..],
            ),
            (
                "GET",
                &[("sec-websocket-protocol", "v5.channel.k8s.io")][..],
            ),
        ] {
            assert!(
                !asks_for_protocol_upgrade(method, &headers(pairs)),
                "{method} {pairs:?}"
            );
        }
    }

    #[test]
    fn parses_a_boolean() {
        assert_eq!(parse(&json!(true), &JsonPath::root()), Ok(true));
        assert_eq!(parse(&json!(false), &JsonPath::root()), Ok(false));
        assert_eq!(
            parse(&json!("exec"), &JsonPath::root())
                .expect_err("a string")
                .to_string(),
            "policy: expected true (exec, attach, port-forward, proxy or a protocol upgrade) or \
             false (anything else), found a string"
        );
    }
}
