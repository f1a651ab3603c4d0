//! Pomerium Policy Language (PPL): parsed once at configure time, evaluated per
//! request without allocating.
//!
//! ```ignore
//! let policy = Policy::parse(&json_value)?; // Err names the JSON path and the problem
//! let facts = Facts { claims: Some(&claims), method, path, ..Facts::default() };
//! let info = request_info::resolve(method, path_and_query).ok(); // the filter refuses None
//! let context = RequestContext {
//!     kubernetes: info.as_ref(),
//!     protocol_upgrade: asks_for_protocol_upgrade(method, &headers),
//!     source_ip: source_ip_from_address(&source_address),
//!     now_unix_seconds,
//! };
//! let verdict = policy.evaluate_with(&facts, &context);
//! if !verdict.allowed { log!("forbidden: {}", verdict.reason) }
//! ```
//!
//! Criteria: the session (`accept`, `reject`, `authenticated_user`, `domain`, `email`,
//! `user`, `groups`, `claim/NAME`), the HTTP request line (`http_method`, `http_path`), the
//! Kubernetes request (`kubernetes_*`, see `kubernetes.rs`; `kubernetes_exec_class`, see
//! `exec_class.rs`), the client address
//! (`source_ip`, see `source_ip.rs`) and the clock (`date`, `day_of_week`, `time_of_day`, see
//! `time.rs`).
//!
//! Semantics follow Pomerium's policy language docs and Pomerium's
//! own parser and generator; where Pomerium is lenient this module refuses the
//! configuration instead (see `parse`), so a typo can never switch a rule off.

mod claim;
mod criteria;
mod error;
mod evaluate;
mod exec_class;
mod facts;
mod kubernetes;
mod matchers;
mod parse;
mod rules;
mod source_ip;
#[cfg(test)]
mod test_support;
mod time;
mod verdict;

pub use error::PolicyError;
pub use exec_class::asks_for_protocol_upgrade;
pub use facts::{Facts, RequestContext};
pub use source_ip::source_ip_from_address;
pub use verdict::{Cause, Miss, Reason, RuleLocation, Verdict};

/// A parsed policy: one rule or a list of rules, each with `allow` and/or `deny`.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Box<[rules::Rule]>,
    /// Whether any criterion reads the `RequestContext`.
    needs_context: bool,
    /// Whether any criterion reads the resolved Kubernetes request.
    reads_kubernetes: bool,
}

impl Policy {
    /// Parses a policy from the plugin configuration: a rule object or a list
    /// of rules.
    ///
    /// # Errors
    /// Anything unknown, ill-typed or empty where PPL needs content: the error
    /// names its JSON path and the problem.
    pub fn parse(value: &serde_json::Value) -> Result<Policy, PolicyError> {
        let rules = parse::parse_rules(value)?;
        let any = |test: fn(&criteria::Criterion) -> bool| {
            rules
                .iter()
                .flat_map(|rule| rule.allow.iter().chain(rule.deny.iter()))
                .flat_map(|block| block.conditions.iter())
                .flat_map(|condition| condition.criteria.iter())
                .any(test)
        };
        let needs_context = any(criteria::Criterion::needs_context);
        let reads_kubernetes = any(criteria::Criterion::reads_kubernetes);
        Ok(Policy {
            rules,
            needs_context,
            reads_kubernetes,
        })
    }

    /// Decides one request on the session and the HTTP request line alone: any matching
    /// deny refuses, else any matching allow allows, else refuse (an empty policy refuses
    /// everything).
    ///
    /// A policy that reads the request context (any `kubernetes_*`, `source_ip`, `date`,
    /// `day_of_week` or `time_of_day` criterion) refuses every request here with
    /// [`Reason::MissingRequestContext`]: such criteria must never be skipped silently. Use
    /// [`Policy::evaluate_with`].
    #[must_use]
    pub fn evaluate(&self, facts: &Facts<'_>) -> Verdict {
        if self.needs_context {
            return Verdict {
                allowed: false,
                reason: Reason::MissingRequestContext,
            };
        }
        evaluate::decide(&self.rules, facts, &RequestContext::ABSENT)
    }

    /// Decides one request on the session, the HTTP request line and the request context
    /// (the resolved Kubernetes request, the client address, the clock), in the same order
    /// as [`Policy::evaluate`]. Allocates nothing.
    #[must_use]
    pub fn evaluate_with(&self, facts: &Facts<'_>, context: &RequestContext<'_>) -> Verdict {
        evaluate::decide(&self.rules, facts, context)
    }

    /// Whether the policy reads the request context, so [`Policy::evaluate_with`] is needed.
    #[must_use]
    pub fn needs_context(&self) -> bool {
        self.needs_context
    }

    /// Whether the policy has `kubernetes_*` criteria, so the request is worth resolving
    /// (`request_info::resolve`).
    #[must_use]
    pub fn reads_kubernetes(&self) -> bool {
        self.reads_kubernetes
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use serde_json::json;

    #[test]
    fn public_interface_round_trip() {
        let policy =
            Policy::parse(&json!([{"allow": {"or": [{"domain": {"is": "pomerium.com"}}]}}]))
                .expect("the user's example parses");
        let claims = test_support::claims(json!({"sub": "u1", "email": "me@pomerium.com"}));
        let groups = Vec::new();
        let facts = Facts {
            claims: Some(&claims),
            user_id: Some("u1"),
            email: Some("me@pomerium.com"),
            groups: &groups,
            method: "GET",
            path: "/api/v1/pods",
        };
        let verdict = policy.evaluate(&facts);
        assert!(verdict.allowed);
        assert_eq!(
            verdict.reason.to_string(),
            "allow rule policy[0].allow matched"
        );
        let copy = policy.clone();
        assert!(format!("{copy:?}").contains("Domain"));
    }

    #[test]
    fn policy_error_is_a_std_error() {
        let error: Box<dyn std::error::Error> = Box::new(
            Policy::parse(&json!([{"allow": {"or": [{"domain": {"iz": "pomerium.com"}}]}}]))
                .expect_err("unknown operator"),
        );
        assert_eq!(
            error.to_string(),
            "policy[0].allow.or[0].domain: unknown string matcher operator \"iz\""
        );
    }
}
