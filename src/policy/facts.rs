//! What a policy decides on: the session and the request, borrowed for one
//! evaluation so deciding copies nothing.

use crate::request_info::RequestInfo;
use crate::Claims;
use std::net::IpAddr;

/// The facts of one request.
///
/// The Kubernetes request, the client address and the clock are in [`RequestContext`]. Build
/// `Facts` with `..Facts::default()` for the fields you do not set, so that adding a field
/// breaks no caller.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts<'a> {
    /// The verified token's claims; `None` when there is no authenticated session.
    /// Every session criterion is false without one.
    pub claims: Option<&'a Claims>,
    /// The user id (`sub`).
    pub user_id: Option<&'a str>,
    pub email: Option<&'a str>,
    /// From the configured groups claim, raw (before any prefix is added).
    pub groups: &'a [String],
    /// The HTTP method as received; methods are case-sensitive (RFC 9110).
    pub method: &'a str,
    /// The request path without the query string.
    pub path: &'a str,
}

/// Where and when the request happens: what it asks of Kubernetes, which address it comes
/// from, and the proxy's clock. The Kubernetes, `source_ip` and time criteria read it; give it
/// with [`Policy::evaluate_with`](super::Policy::evaluate_with).
///
/// It has no `Default` on purpose: a forgotten clock would judge every time criterion as of
/// 1970, so that `date: {before: ...}` would never expire. Set every field.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// The request as the API server will authorize it (`request_info::resolve`); `None` when
    /// it could not be resolved, which makes every `kubernetes_*` criterion false (the filter
    /// refuses such requests anyway).
    pub kubernetes: Option<&'a RequestInfo>,
    /// Whether the request asks to switch protocols (WebSocket, SPDY, HTTP/2 extended CONNECT):
    /// [`asks_for_protocol_upgrade`](super::asks_for_protocol_upgrade) over the request's method
    /// and headers. `kubernetes_exec_class` holds for every such request.
    pub protocol_upgrade: bool,
    /// The client's address (Envoy's `source.address` property through
    /// [`source_ip_from_address`](super::source_ip_from_address)); `None` makes `source_ip`
    /// false.
    pub source_ip: Option<IpAddr>,
    /// The proxy's clock (`proxy_get_current_time_nanoseconds` / 1e9), as for the JWT checks.
    pub now_unix_seconds: u64,
}

impl RequestContext<'static> {
    /// What `Policy::evaluate` judges with: only reached by policies that read none of it.
    pub(crate) const ABSENT: RequestContext<'static> = RequestContext {
        kubernetes: None,
        protocol_upgrade: false,
        source_ip: None,
        now_unix_seconds: 0,
    };
}

impl<'a> Facts<'a> {
    /// The session's claims, `None` without an authenticated session.
    pub(crate) fn session(&self) -> Option<&'a Claims> {
        self.claims
    }

    /// The part of the email after its last `@`. The last one, because an RFC 5321
    /// local part may itself contain a quoted `@`; the domain never does.
    /// (Pomerium takes the piece after the first `@`; they agree for every
    /// ordinary address.) The `domain` criterion compares it ignoring ASCII case, as DNS
    /// names compare, where Pomerium compares it exactly.
    pub(crate) fn email_domain(&self) -> Option<&'a str> {
        self.email
            .and_then(|email| email.rsplit_once('@'))
            .map(|(_, domain)| domain)
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn domain_is_after_the_last_at() {
        let domain = |email| {
            Facts {
                email,
                ..Facts::default()
            }
            .email_domain()
        };
        assert_eq!(domain(Some("a@example.com")), Some("example.com"));
        assert_eq!(
            domain(Some("\"a@evil.com\"@example.com")),
            Some("example.com")
        );
        assert_eq!(domain(Some("user@")), Some(""));
        assert_eq!(domain(Some("no-at-sign")), None);
        assert_eq!(domain(None), None);
    }

    #[test]
    fn default_facts_have_no_session() {
        let facts = Facts::default();
        assert!(facts.session().is_none());
        assert!(facts.groups.is_empty());
    }
}
