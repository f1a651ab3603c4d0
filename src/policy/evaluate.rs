//! Deciding a request: deny over allow over refuse (reference.md, "Decision order").

use super::criteria::Criterion;
use super::rules::{Block, Operator, Rule};
use super::verdict::{Reason, Verdict};
use super::Facts;

/// Any deny true -> refuse; else any allow true -> allow; else refuse. Rules
/// are walked in order and the first match names the reason; criteria
/// short-circuit. Nothing here allocates.
pub(crate) fn decide(rules: &[Rule], facts: &Facts<'_>) -> Verdict {
    if rules.is_empty() {
        return refuse(Reason::EmptyPolicy);
    }
    if let Some(rule) = first_matching(rules, |rule| rule.deny.as_ref(), facts) {
        return refuse(Reason::DenyRuleMatched(rule.location));
    }
    if let Some(rule) = first_matching(rules, |rule| rule.allow.as_ref(), facts) {
        return Verdict {
            allowed: true,
            reason: Reason::AllowRuleMatched(rule.location),
        };
    }
    refuse(Reason::NoAllowRuleMatched)
}

fn refuse(reason: Reason) -> Verdict {
    Verdict {
        allowed: false,
        reason,
    }
}

fn first_matching<'r>(
    rules: &'r [Rule],
    block: impl Fn(&'r Rule) -> Option<&'r Block>,
    facts: &Facts<'_>,
) -> Option<&'r Rule> {
    rules
        .iter()
        .find(|rule| block(rule).is_some_and(|block| block.matches(facts)))
}

impl Block {
    /// The operators of one block are OR-ed.
    fn matches(&self, facts: &Facts<'_>) -> bool {
        self.conditions
            .iter()
            .any(|condition| condition.operator.holds(&condition.criteria, facts))
    }
}

impl Operator {
    /// Pomerium's meanings (reference.md, "Operators"; pkg/policy/generator
    /// builds `not` as (NOT A) AND (NOT B) and `nor` as (NOT A) OR (NOT B)).
    fn holds(self, criteria: &[Criterion], facts: &Facts<'_>) -> bool {
        let mut results = criteria.iter().map(|criterion| criterion.matches(facts));
        match self {
            Operator::And => results.all(|result| result),
            Operator::Or => results.any(|result| result),
            // NOR: none true.
            Operator::Not => !results.any(|result| result),
            // NAND: not all true.
            Operator::Nor => !results.all(|result| result),
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use crate::policy::test_support::{claims, groups_of};
    use crate::policy::{Facts, Policy, Reason, RuleLocation, Verdict};
    use serde_json::{json, Value};

    fn policy(value: Value) -> Policy {
        Policy::parse(&value).expect("valid policy")
    }

    fn truth(value: bool) -> Value {
        if value {
            json!({"accept": true})
        } else {
            json!({"reject": true})
        }
    }

    /// `{"allow": {operator: [criteria with these truth values]}}`, evaluated.
    fn operator_allows(operator: &str, inputs: &[bool]) -> bool {
        let criteria: Vec<Value> = inputs.iter().map(|&input| truth(input)).collect();
        policy(json!({"allow": {operator: criteria}}))
            .evaluate(&Facts::default())
            .allowed
    }

    const PAIRS: [[bool; 2]; 4] = [[true, true], [true, false], [false, true], [false, false]];

    fn truth_table(operator: &str) -> Vec<bool> {
        let mut table: Vec<bool> = PAIRS
            .iter()
            .map(|pair| operator_allows(operator, pair))
            .collect();
        table.push(operator_allows(operator, &[true]));
        table.push(operator_allows(operator, &[false]));
        table.push(operator_allows(operator, &[true, true, false]));
        table
    }

    // Columns: TT, TF, FT, FF, T, F, TTF.
    #[test]
    fn and_is_all_true() {
        assert_eq!(
            truth_table("and"),
            [true, false, false, false, true, false, false]
        );
    }

    #[test]
    fn or_is_any_true() {
        assert_eq!(
            truth_table("or"),
            [true, true, true, false, true, false, true]
        );
    }

    #[test]
    fn not_is_nor_none_true() {
        assert_eq!(
            truth_table("not"),
            [false, false, false, true, false, true, false]
        );
    }

    #[test]
    fn nor_is_nand_not_all_true() {
        assert_eq!(
            truth_table("nor"),
            [false, true, true, true, false, true, true]
        );
    }

    #[test]
    fn operators_in_one_block_are_ored() {
        let either = policy(json!({"allow": {
            "and": [{"reject": true}],
            "not": [{"reject": true}],
        }}));
        assert!(either.evaluate(&Facts::default()).allowed);
        let neither = policy(json!({"allow": {
            "and": [{"reject": true}],
            "nor": [{"accept": true}],
        }}));
        assert!(!neither.evaluate(&Facts::default()).allowed);
    }

    #[test]
    fn empty_policy_denies() {
        assert_eq!(
            policy(json!([])).evaluate(&Facts::default()),
            Verdict {
                allowed: false,
                reason: Reason::EmptyPolicy
            }
        );
    }

    #[test]
    fn deny_wins_over_allow() {
        let verdict = policy(json!([
            {"allow": {"or": [{"accept": true}]}},
            {"deny": {"or": [{"accept": true}]}},
        ]))
        .evaluate(&Facts::default());
        assert!(!verdict.allowed);
        assert_eq!(
            verdict.reason,
            Reason::DenyRuleMatched(RuleLocation::listed(1))
        );
        assert_eq!(
            verdict.reason.to_string(),
            "deny rule policy[1].deny matched"
        );
    }

    #[test]
    fn deny_and_allow_in_one_rule() {
        let rule = policy(json!({
            "allow": {"or": [{"accept": true}]},
            "deny": {"or": [{"http_method": "DELETE"}]},
        }));
        let get = Facts {
            method: "GET",
            ..Facts::default()
        };
        let delete = Facts {
            method: "DELETE",
            ..Facts::default()
        };
        assert_eq!(
            rule.evaluate(&get).reason.to_string(),
            "allow rule policy.allow matched"
        );
        let refused = rule.evaluate(&delete);
        assert!(!refused.allowed);
        assert_eq!(refused.reason.to_string(), "deny rule policy.deny matched");
    }

    #[test]
    fn deny_that_does_not_match_leaves_allow() {
        let verdict = policy(json!([
            {"deny": {"or": [{"reject": true}]}},
            {"allow": {"or": [{"accept": true}]}},
        ]))
        .evaluate(&Facts::default());
        assert!(verdict.allowed);
        assert_eq!(
            verdict.reason,
            Reason::AllowRuleMatched(RuleLocation::listed(1))
        );
    }

    #[test]
    fn rules_with_the_same_action_are_ored() {
        let rules = policy(json!([
            {"allow": {"or": [{"http_method": "GET"}]}},
            {"allow": {"or": [{"http_path": "/healthz"}]}},
        ]));
        let get = Facts {
            method: "GET",
            path: "/api",
            ..Facts::default()
        };
        let post_health = Facts {
            method: "POST",
            path: "/healthz",
            ..Facts::default()
        };
        let post_api = Facts {
            method: "POST",
            path: "/api",
            ..Facts::default()
        };
        assert_eq!(
            rules.evaluate(&get).reason.to_string(),
            "allow rule policy[0].allow matched"
        );
        assert_eq!(
            rules.evaluate(&post_health).reason.to_string(),
            "allow rule policy[1].allow matched"
        );
        let refused = rules.evaluate(&post_api);
        assert!(!refused.allowed);
        assert_eq!(refused.reason.to_string(), "no allow rule matched");
    }

    #[test]
    fn deny_rules_are_ored() {
        let rules = policy(json!([
            {"allow": {"or": [{"accept": true}]}},
            {"deny": {"or": [{"http_method": "DELETE"}]}},
            {"deny": {"or": [{"http_path": {"contains": "/secrets"}}]}},
        ]));
        let secrets = Facts {
            method: "GET",
            path: "/api/v1/namespaces/x/secrets",
            ..Facts::default()
        };
        assert_eq!(
            rules.evaluate(&secrets).reason.to_string(),
            "deny rule policy[2].deny matched"
        );
        let delete = Facts {
            method: "DELETE",
            path: "/api/v1/namespaces/x/pods/p",
            ..Facts::default()
        };
        assert_eq!(
            rules.evaluate(&delete).reason.to_string(),
            "deny rule policy[1].deny matched"
        );
        let get = Facts {
            method: "GET",
            path: "/api/v1/namespaces/x/pods",
            ..Facts::default()
        };
        assert!(rules.evaluate(&get).allowed);
    }

    #[test]
    fn only_deny_rules_refuse_everything() {
        let verdict =
            policy(json!([{"deny": {"or": [{"reject": true}]}}])).evaluate(&Facts::default());
        assert!(!verdict.allowed);
        assert_eq!(verdict.reason, Reason::NoAllowRuleMatched);
    }

    #[test]
    fn users_example_verbatim() {
        let example = policy(json!([{"allow": {"or": [{"domain": {"is": "pomerium.com"}}]}}]));
        let session = |email: &str| claims(json!({"sub": "u", "email": email}));

        let inside = session("alice@pomerium.com");
        let verdict = example.evaluate(&Facts {
            claims: Some(&inside),
            email: Some("alice@pomerium.com"),
            method: "GET",
            path: "/api",
            ..Facts::default()
        });
        assert!(verdict.allowed);
        assert_eq!(
            verdict.reason.to_string(),
            "allow rule policy[0].allow matched"
        );

        let outside = session("alice@example.com");
        let verdict = example.evaluate(&Facts {
            claims: Some(&outside),
            email: Some("alice@example.com"),
            method: "GET",
            path: "/api",
            ..Facts::default()
        });
        assert!(!verdict.allowed);
        assert_eq!(verdict.reason.to_string(), "no allow rule matched");

        // No session, even with a matching email somehow supplied.
        let verdict = example.evaluate(&Facts {
            email: Some("alice@pomerium.com"),
            ..Facts::default()
        });
        assert!(!verdict.allowed);
    }

    #[test]
    fn missing_session_fails_session_criteria_but_not_request_criteria() {
        let rules = policy(json!([
            {"allow": {"and": [{"authenticated_user": true}, {"http_method": "GET"}]}},
            {"allow": {"and": [{"http_path": "/healthz"}]}},
        ]));
        let anonymous_get = Facts {
            method: "GET",
            path: "/api",
            ..Facts::default()
        };
        assert!(!rules.evaluate(&anonymous_get).allowed);
        let anonymous_health = Facts {
            method: "GET",
            path: "/healthz",
            ..Facts::default()
        };
        assert!(rules.evaluate(&anonymous_health).allowed);
        let session = claims(json!({"sub": "u"}));
        let signed_in = Facts {
            claims: Some(&session),
            user_id: Some("u"),
            ..anonymous_get
        };
        assert!(rules.evaluate(&signed_in).allowed);
    }

    #[test]
    fn not_over_session_criteria_without_session() {
        // `not` of a false session criterion is true: an anonymous request is
        // "not in group admins". Deny rules built this way refuse anonymous users.
        let rules = policy(json!([
            {"allow": {"or": [{"accept": true}]}},
            {"deny": {"not": [{"groups": "admins"}]}},
        ]));
        assert!(!rules.evaluate(&Facts::default()).allowed);
        let admin = claims(json!({"sub": "u", "groups": ["admins"]}));
        let groups = groups_of(&admin);
        assert!(
            rules
                .evaluate(&Facts {
                    claims: Some(&admin),
                    groups: &groups,
                    ..Facts::default()
                })
                .allowed
        );
    }

    #[test]
    fn realistic_policy() {
        let rules = policy(json!([
            {"allow": {"and": [
                {"domain": "example.com"},
                {"groups": {"has": "k8s-readers"}},
                {"http_method": {"in": ["GET", "HEAD"]}},
            ]}},
            {"allow": {"or": [{"groups": "k8s-admins"}, {"claim/role": "sre"}]}},
            {"deny": {"or": [{"email": {"ends_with": ".contractor@example.com"}}]}},
        ]));
        let check = |session: Value, method: &str| {
            let session = claims(session);
            let groups = groups_of(&session);
            rules.evaluate(&Facts {
                claims: Some(&session),
                user_id: session.get("sub").and_then(Value::as_str),
                email: session.get("email").and_then(Value::as_str),
                groups: &groups,
                method,
                path: "/api/v1/pods",
            })
        };
        let reader = json!({"sub": "1", "email": "r@example.com", "groups": ["k8s-readers"]});
        assert!(check(reader.clone(), "GET").allowed);
        assert!(!check(reader, "POST").allowed);
        let sre = json!({"sub": "2", "email": "s@other.org", "role": "sre"});
        assert_eq!(
            check(sre, "POST").reason.to_string(),
            "allow rule policy[1].allow matched"
        );
        let contractor = json!({
            "sub": "3", "email": "c.contractor@example.com", "groups": ["k8s-admins"],
        });
        assert_eq!(
            check(contractor, "GET").reason.to_string(),
            "deny rule policy[2].deny matched"
        );
    }
}
