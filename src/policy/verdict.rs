//! The outcome of evaluating a policy, and why.

use std::fmt;

/// Whether the request may pass, and the reason for the log line and the 403.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub allowed: bool,
    pub reason: Reason,
}

/// Why a policy decided as it did. `Copy` and allocation-free; `Display` gives
/// the text for logs and refusal messages, e.g.
/// `deny rule policy[1].deny matched (or[0] kubernetes_verb)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The first rule whose `deny` matched (deny wins over any allow), and what in its block
    /// made it match.
    DenyRuleMatched { rule: RuleLocation, cause: Cause },
    /// The first rule whose `allow` matched, with no deny matching.
    AllowRuleMatched(RuleLocation),
    /// Neither a deny nor an allow matched; `closest_allow` is the allow rule that came
    /// closest and why its first operator did not hold (where an operator looks first).
    NoAllowRuleMatched {
        closest_allow: Option<(RuleLocation, Miss)>,
    },
    /// The policy has no rules at all (`[]`).
    EmptyPolicy,
    /// The policy reads the request context (Kubernetes request, client address, clock) and
    /// was evaluated without one (`Policy::evaluate` instead of `Policy::evaluate_with`).
    MissingRequestContext,
}

/// What made a block match: the operator's key in the block, and for `or` the first
/// criterion that held, for `nor` the first that did not (their index in the operator's
/// list, which with the rule's location is the criterion's JSON path, and their name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cause {
    operator: &'static str,
    detail: Detail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detail {
    /// `and`: every criterion held.
    Every,
    /// `not`: no criterion held.
    NoCriterion,
    /// `or`: this criterion held; `nor`: it did not.
    Criterion {
        index: usize,
        name: &'static str,
        held: bool,
    },
}

impl Cause {
    pub(crate) const fn every(operator: &'static str) -> Self {
        Cause {
            operator,
            detail: Detail::Every,
        }
    }

    pub(crate) const fn no_criterion(operator: &'static str) -> Self {
        Cause {
            operator,
            detail: Detail::NoCriterion,
        }
    }

    pub(crate) const fn criterion(
        operator: &'static str,
        index: usize,
        name: &'static str,
        held: bool,
    ) -> Self {
        Cause {
            operator,
            detail: Detail::Criterion { index, name, held },
        }
    }

    /// The operator's key (`and`, `or`, `not`, `nor`).
    #[must_use]
    pub fn operator(&self) -> &'static str {
        self.operator
    }

    /// The index of the criterion that decided, in the operator's list (`or` and `nor`).
    #[must_use]
    pub fn criterion_index(&self) -> Option<usize> {
        match self.detail {
            Detail::Criterion { index, .. } => Some(index),
            Detail::Every | Detail::NoCriterion => None,
        }
    }
}

/// Why an operator did not hold: for `and` the first criterion that did not hold, for `not`
/// the first that did (with its index in the operator's list); `or` (none held) and `nor`
/// (all held) name no criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Miss {
    operator: &'static str,
    criterion: Option<(usize, &'static str)>,
}

impl Miss {
    pub(crate) const fn new(
        operator: &'static str,
        criterion: Option<(usize, &'static str)>,
    ) -> Self {
        Miss {
            operator,
            criterion,
        }
    }
}

impl Miss {
    /// How far the operator got: criteria before the failing one, plus one (0 when no
    /// criterion is named).
    pub(crate) fn reached(&self) -> usize {
        self.criterion.map_or(0, |(index, _)| index + 1)
    }
}

impl fmt::Display for Miss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operator = self.operator;
        match (operator, self.criterion) {
            ("not", Some((index, name))) => write!(f, "{operator}[{index}] {name} held"),
            (_, Some((index, name))) => write!(f, "{operator}[{index}] {name} did not hold"),
            ("nor", None) => write!(f, "{operator}: every criterion held"),
            (_, None) => write!(f, "{operator}: no criterion held"),
        }
    }
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

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let operator = self.operator;
        match self.detail {
            Detail::Every => write!(f, "{operator}: every criterion held"),
            Detail::NoCriterion => write!(f, "{operator}: no criterion held"),
            Detail::Criterion {
                index,
                name,
                held: true,
            } => write!(f, "{operator}[{index}] {name}"),
            Detail::Criterion {
                index,
                name,
                held: false,
            } => write!(f, "{operator}[{index}] {name} did not hold"),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::DenyRuleMatched { rule, cause } => {
                write!(f, "deny rule {rule}.deny matched ({cause})")
            }
            Reason::AllowRuleMatched(rule) => write!(f, "allow rule {rule}.allow matched"),
            Reason::NoAllowRuleMatched {
                closest_allow: None,
            } => f.write_str("no allow rule matched (the policy has none)"),
            Reason::NoAllowRuleMatched {
                closest_allow: Some((rule, miss)),
            } => write!(f, "no allow rule matched ({rule}.allow: {miss})"),
            Reason::EmptyPolicy => f.write_str("empty policy denies"),
            Reason::MissingRequestContext => f.write_str(
                "the policy reads the Kubernetes request, the client address or the clock, \
                 which were not given to it",
            ),
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
            Reason::DenyRuleMatched {
                rule: RuleLocation::listed(1),
                cause: Cause::criterion("or", 0, "kubernetes_verb", true),
            }
            .to_string(),
            "deny rule policy[1].deny matched (or[0] kubernetes_verb)"
        );
        assert_eq!(
            Reason::DenyRuleMatched {
                rule: RuleLocation::SINGLE,
                cause: Cause::criterion("nor", 2, "groups", false),
            }
            .to_string(),
            "deny rule policy.deny matched (nor[2] groups did not hold)"
        );
        assert_eq!(
            Reason::DenyRuleMatched {
                rule: RuleLocation::listed(0),
                cause: Cause::every("and"),
            }
            .to_string(),
            "deny rule policy[0].deny matched (and: every criterion held)"
        );
        assert_eq!(
            Reason::DenyRuleMatched {
                rule: RuleLocation::listed(3),
                cause: Cause::no_criterion("not"),
            }
            .to_string(),
            "deny rule policy[3].deny matched (not: no criterion held)"
        );
        assert_eq!(
            Reason::MissingRequestContext.to_string(),
            "the policy reads the Kubernetes request, the client address or the clock, which \
             were not given to it"
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
            Reason::NoAllowRuleMatched {
                closest_allow: None
            }
            .to_string(),
            "no allow rule matched (the policy has none)"
        );
        let first = |operator, criterion| Reason::NoAllowRuleMatched {
            closest_allow: Some((RuleLocation::listed(0), Miss::new(operator, criterion))),
        };
        assert_eq!(
            first("and", Some((1, "source_ip"))).to_string(),
            "no allow rule matched (policy[0].allow: and[1] source_ip did not hold)"
        );
        assert_eq!(
            first("not", Some((0, "groups"))).to_string(),
            "no allow rule matched (policy[0].allow: not[0] groups held)"
        );
        assert_eq!(
            first("or", None).to_string(),
            "no allow rule matched (policy[0].allow: or: no criterion held)"
        );
        assert_eq!(
            first("nor", None).to_string(),
            "no allow rule matched (policy[0].allow: nor: every criterion held)"
        );
        assert_eq!(Reason::EmptyPolicy.to_string(), "empty policy denies");
    }

    #[test]
    fn cause_accessors() {
        let or = Cause::criterion("or", 4, "source_ip", true);
        assert_eq!(or.operator(), "or");
        assert_eq!(or.criterion_index(), Some(4));
        let and = Cause::every("and");
        assert_eq!(and.operator(), "and");
        assert_eq!(and.criterion_index(), None);
        assert_eq!(Cause::no_criterion("not").criterion_index(), None);
    }

    #[test]
    fn rule_location_index() {
        assert_eq!(RuleLocation::listed(3).index(), Some(3));
        assert_eq!(RuleLocation::SINGLE.index(), None);
    }
}
