//! What a policy decides on: the session and the request, borrowed for one
//! evaluation so deciding copies nothing.

use crate::Claims;

/// The facts of one request.
///
/// More facts will be added (Kubernetes verb/resource/namespace, source IP, time),
/// so build it with `..Facts::default()` for the fields you do not set; adding
/// a field then breaks no caller.
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

impl<'a> Facts<'a> {
    /// The session's claims, `None` without an authenticated session.
    pub(crate) fn session(&self) -> Option<&'a Claims> {
        self.claims
    }

    /// The part of the email after its last `@`. The last one, because an RFC 5321
    /// local part may itself contain a quoted `@`; the domain never does.
    /// (Pomerium takes the piece after the first `@`; they agree for every
    /// ordinary address.)
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
