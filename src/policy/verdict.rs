//! The outcome of evaluating a policy, and why.

use std::fmt;

/// Whether the request may pass, and the reason for the log line and the 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub reason: Reason,
}

/// Why a policy decided as it did. `Copy` and allocation-free; `Display` gives
/// the text for logs and refusal messages, e.g. `deny rule policy[1].deny matched`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The first rule whose `deny` matched (deny wins over any allow).
    DenyRuleMatched(RuleLocation),
    /// The first rule whose `allow` matched, with no deny matching.
    AllowRuleMatched(RuleLocation),
    /// Neither a deny nor an allow matched.
    NoAllowRuleMatched,
    /// The policy has no rules at all (`[]`).
    EmptyPolicy,
}

/// Which rule of the policy document: `policy[1]`, or `policy` when the policy
/// is a single rule object rather than a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleLocation {
    index: Option<usize>,
}

impl RuleLocation {
    pub(crate) const SINGLE: RuleLocation = RuleLocation { index: None };

    pub(crate) const fn listed(index: usize) -> Self {
        RuleLocation { index: Some(index) }
    }

    /// The rule's index in the policy list; `None` for a single-rule policy.
    #[must_use]
    pub fn index(&self) -> Option<usize> {
        self.index
    }
}

impl fmt::Display for RuleLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.index {
            Some(index) => write!(f, "policy[{index}]"),
            None => f.write_str("policy"),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::DenyRuleMatched(rule) => write!(f, "deny rule {rule}.deny matched"),
            Reason::AllowRuleMatched(rule) => write!(f, "allow rule {rule}.allow matched"),
            Reason::NoAllowRuleMatched => f.write_str("no allow rule matched"),
            Reason::EmptyPolicy => f.write_str("empty policy denies"),
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn reasons_read_as_text() {
        assert_eq!(
            Reason::DenyRuleMatched(RuleLocation::listed(1)).to_string(),
            "deny rule policy[1].deny matched"
        );
        assert_eq!(
            Reason::AllowRuleMatched(RuleLocation::listed(0)).to_string(),
            "allow rule policy[0].allow matched"
        );
        assert_eq!(
            Reason::AllowRuleMatched(RuleLocation::SINGLE).to_string(),
            "allow rule policy.allow matched"
        );
        assert_eq!(
            Reason::NoAllowRuleMatched.to_string(),
            "no allow rule matched"
        );
        assert_eq!(Reason::EmptyPolicy.to_string(), "empty policy denies");
    }

    #[test]
    fn rule_location_index() {
        assert_eq!(RuleLocation::listed(3).index(), Some(3));
        assert_eq!(RuleLocation::SINGLE.index(), None);
    }
}
