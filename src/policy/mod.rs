//! Pomerium Policy Language (PPL): parsed once at configure time, evaluated per
//! request without allocating.
//!
//! ```ignore
//! let policy = Policy::parse(&json_value)?; // Err names the JSON path and the problem
//! let verdict = policy.evaluate(&Facts { claims: Some(&claims), method, path, ..Facts::default() });
//! if !verdict.allowed { log!("forbidden: {}", verdict.reason) }
//! ```
//!
//! Semantics follow reference.md ("Pomerium's policy language") and Pomerium's
//! own parser and generator; where Pomerium is lenient this module refuses the
//! configuration instead (see `parse`), so a typo can never switch a rule off.

mod claim;
mod criteria;
mod error;
mod evaluate;
mod facts;
mod matchers;
mod parse;
mod rules;
#[cfg(test)]
mod test_support;
mod verdict;

pub use error::PolicyError;
pub use facts::Facts;
pub use verdict::{Reason, RuleLocation, Verdict};

/// A parsed policy: one rule or a list of rules, each with `allow` and/or `deny`.
#[derive(Debug, Clone)]
pub struct Policy {
    rules: Box<[rules::Rule]>,
}

impl Policy {
    /// Parses a policy from the plugin configuration: a rule object or a list
    /// of rules.
    ///
    /// # Errors
    /// Anything unknown, ill-typed or empty where PPL needs content: the error
    /// names its JSON path and the problem.
    pub fn parse(value: &serde_json::Value) -> Result<Policy, PolicyError> {
        Ok(Policy {
            rules: parse::parse_rules(value)?,
        })
    }

    /// Decides one request: any matching deny refuses, else any matching allow
    /// allows, else refuse (an empty policy refuses everything).
    #[must_use]
    pub fn evaluate(&self, facts: &Facts<'_>) -> Verdict {
        evaluate::decide(&self.rules, facts)
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
