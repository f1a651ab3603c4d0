//! The compiled form of a policy: what `parse` builds and `evaluate` walks.

use super::criteria::Criterion;
use super::verdict::RuleLocation;

#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) location: RuleLocation,
    pub(crate) allow: Option<Block>,
    pub(crate) deny: Option<Block>,
}

/// The value of `allow` or `deny`: its operators are OR-ed (Pomerium docs, "Policy Language":
/// "several operators in one rule are OR-ed").
#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub(crate) conditions: Box<[Condition]>,
}

/// One operator over its criteria; the parser guarantees at least one criterion.
#[derive(Debug, Clone)]
pub(crate) struct Condition {
    pub(crate) operator: Operator,
    pub(crate) criteria: Box<[Criterion]>,
}

/// PPL's logical operators, with Pomerium's deliberately unusual meanings
/// (Pomerium docs, "Policy Language" operators): `not` is NOR and `nor` is NAND.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operator {
    /// All criteria true.
    And,
    /// Any criterion true.
    Or,
    /// NONE of the criteria true: NOR, not a negation of a single criterion.
    Not,
    /// NOT ALL criteria true: NAND, despite the name.
    Nor,
}

impl Operator {
    pub(crate) const NAMES: &'static str = "and, or, not, nor";

    /// The operator's key in a block.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Operator::And => "and",
            Operator::Or => "or",
            Operator::Not => "not",
            Operator::Nor => "nor",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "and" => Some(Operator::And),
            "or" => Some(Operator::Or),
            "not" => Some(Operator::Not),
            "nor" => Some(Operator::Nor),
            _ => None,
        }
    }
}
