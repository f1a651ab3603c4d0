//! Deciding a request: deny over allow over refuse (Pomerium pkg/policy/generator: any deny, then any allow).

use super::criteria::Criterion;
use super::rules::{Block, Condition, Operator, Rule};
use super::verdict::{Cause, Miss, Reason, RuleLocation, Verdict};
use super::{Facts, RequestContext};

/// Any deny true -> refuse; else any allow true -> allow; else refuse. Rules
/// are walked in order and the first match names the reason (for a deny, down to
/// the criterion that decided); criteria short-circuit. Nothing here allocates.
pub(crate) fn decide(rules: &[Rule], facts: &Facts<'_>, context: &RequestContext<'_>) -> Verdict {
    if rules.is_empty() {
        return refuse(Reason::EmptyPolicy);
    }
    let deny = rules.iter().find_map(|rule| {
        let cause = rule.deny.as_ref()?.cause(facts, context)?;
        Some(Reason::DenyRuleMatched {
            rule: rule.location,
            cause,
        })
    });
    if let Some(reason) = deny {
        return refuse(reason);
    }
    let allow = rules.iter().find(|rule| {
        rule.allow
            .as_ref()
            .is_some_and(|block| block.cause(facts, context).is_some())
    });
    if let Some(rule) = allow {
        return Verdict {
            allowed: true,
            reason: Reason::AllowRuleMatched(rule.location),
        };
    }
    // The allow rule that came closest: the one whose `and` got furthest before a criterion
    // failed (the first such rule on a tie), so the reason points at the line to look at.
    let mut closest: Option<(RuleLocation, Miss)> = None;
    for rule in rules {
        let Some(condition) = rule.allow.as_ref().and_then(|b| b.conditions.first()) else {
            continue;
        };
        let miss = condition.miss(facts, context);
        if closest.is_none_or(|(_, best)| miss.reached() > best.reached()) {
            closest = Some((rule.location, miss));
        }
    }
    refuse(Reason::NoAllowRuleMatched {
        closest_allow: closest,
    })
}

fn refuse(reason: Reason) -> Verdict {
    Verdict {
        allowed: false,
        reason,
    }
}

impl Block {
    /// The operators of one block are OR-ed: the first that holds is the cause.
    fn cause(&self, facts: &Facts<'_>, context: &RequestContext<'_>) -> Option<Cause> {
        self.conditions
            .iter()
            .find_map(|condition| condition.cause(facts, context))
    }
}

impl Condition {
    /// Why the operator did not hold (called only once it is known not to).
    fn miss(&self, facts: &Facts<'_>, context: &RequestContext<'_>) -> Miss {
        let find = |wanted: bool| {
            self.criteria
                .iter()
                .enumerate()
                .find(|(_, criterion)| criterion.holds(facts, context) == wanted)
                .map(|(index, criterion)| (index, criterion.name()))
        };
        let criterion = match self.operator {
            Operator::And => find(false),
            Operator::Not => find(true),
            Operator::Or | Operator::Nor => None,
        };
        Miss::new(self.operator.name(), criterion)
    }

    /// Whether the operator holds over its criteria, and why. Pomerium's meanings
    /// (Pomerium docs, "Policy Language" operators; pkg/policy/generator builds `not` as (NOT A) AND (NOT B)
    /// and `nor` as (NOT A) OR (NOT B)).
    fn cause(&self, facts: &Facts<'_>, context: &RequestContext<'_>) -> Option<Cause> {
        let operator = self.operator.name();
        let holds = |criterion: &Criterion| criterion.holds(facts, context);
        let first = |wanted: bool| {
            self.criteria
                .iter()
                .enumerate()
                .find(|(_, criterion)| holds(criterion) == wanted)
                .map(|(index, criterion)| {
                    Cause::criterion(operator, index, criterion.name(), wanted)
                })
        };
        match self.operator {
            // All true.
            Operator::And => self
                .criteria
                .iter()
                .all(holds)
                .then_some(Cause::every(operator)),
            // Any true: the first that is.
            Operator::Or => first(true),
            // NOR: none true.
            Operator::Not => {
                (!self.criteria.iter().any(holds)).then_some(Cause::no_criterion(operator))
            }
            // NAND: not all true; the first that is not.
            Operator::Nor => first(false),
        }
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use crate::policy::test_support::{claims, groups_of};
    use crate::policy::{Cause, Facts, Policy, Reason, RequestContext, RuleLocation, Verdict};
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
            Reason::DenyRuleMatched {
                rule: RuleLocation::listed(1),
                cause: Cause::criterion("or", 0, "accept", true),
            }
        );
        assert_eq!(
            verdict.reason.to_string(),
            "deny rule policy[1].deny matched (or[0] accept)"
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
        assert_eq!(
            refused.reason.to_string(),
            "deny rule policy.deny matched (or[0] http_method)"
        );
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
        assert_eq!(
            refused.reason.to_string(),
            "no allow rule matched (policy[0].allow: or: no criterion held)"
        );
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
            "deny rule policy[2].deny matched (or[0] http_path)"
        );
        let delete = Facts {
            method: "DELETE",
            path: "/api/v1/namespaces/x/pods/p",
            ..Facts::default()
        };
        assert_eq!(
            rules.evaluate(&delete).reason.to_string(),
            "deny rule policy[1].deny matched (or[0] http_method)"
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
        assert_eq!(
            verdict.reason,
            Reason::NoAllowRuleMatched {
                closest_allow: None
            }
        );
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
        assert_eq!(
            verdict.reason.to_string(),
            "no allow rule matched (policy[0].allow: or: no criterion held)"
        );

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
            "deny rule policy[2].deny matched (or[0] email)"
        );
    }

    // ---- The request context: Kubernetes request, client address, clock. ----

    use crate::request_info::{resolve, RequestInfo};
    use std::net::IpAddr;

    /// 2024-03-04T00:00:00Z, a Monday.
    const MONDAY: u64 = 1_709_510_400;
    const HOUR: u64 = 3600;

    fn request(method: &str, target: &str) -> RequestInfo {
        resolve(method, target).expect("resolvable request")
    }

    fn context<'a>(info: Option<&'a RequestInfo>, ip: &str, now: u64) -> RequestContext<'a> {
        RequestContext {
            kubernetes: info,
            protocol_upgrade: false,
            source_ip: Some(ip.parse::<IpAddr>().expect("test address")),
            now_unix_seconds: now,
        }
    }

    fn allows(policy: &Policy, context: &RequestContext<'_>) -> bool {
        policy.evaluate_with(&Facts::default(), context).allowed
    }

    #[test]
    fn new_criteria_under_every_operator() {
        let pods = request("GET", "/api/v1/namespaces/default/pods");
        let secrets = request("GET", "/api/v1/namespaces/default/secrets");
        let at_pods = context(Some(&pods), "10.1.2.3", MONDAY);
        let at_secrets = context(Some(&secrets), "10.1.2.3", MONDAY);
        let outside = context(Some(&pods), "192.0.2.1", MONDAY);
        let criteria = json!([
            {"kubernetes_resource": "pods"},
            {"source_ip": "10.0.0.0/8"},
            {"day_of_week": "mon"},
        ]);
        let under = |operator: &str| policy(json!({"allow": {operator: criteria.clone()}}));
        // and: all three hold only for pods from 10/8 on a Monday.
        assert!(allows(&under("and"), &at_pods));
        assert!(!allows(&under("and"), &at_secrets));
        assert!(!allows(&under("and"), &outside));
        // or: any.
        assert!(allows(&under("or"), &at_secrets));
        let none_hold = context(Some(&secrets), "192.0.2.1", MONDAY + 24 * HOUR);
        assert!(!allows(&under("or"), &none_hold));
        // not (NOR): none may hold.
        assert!(allows(&under("not"), &none_hold));
        assert!(!allows(&under("not"), &at_secrets));
        // nor (NAND): not all may hold.
        assert!(allows(&under("nor"), &at_secrets));
        assert!(!allows(&under("nor"), &at_pods));
    }

    #[test]
    fn each_new_criterion_inside_not_and_nor() {
        let exec = request("POST", "/api/v1/namespaces/prod/pods/web-0/exec");
        let version = request("GET", "/version");
        let subject = context(Some(&exec), "2001:db8::1", MONDAY + 10 * HOUR);
        let non_resource = context(Some(&version), "2001:db8::1", MONDAY + 10 * HOUR);
        // (criterion, holds for `subject`)
        let cases = [
            (json!({"kubernetes_verb": "create"}), true),
            (json!({"kubernetes_verb": "get"}), false),
            (json!({"kubernetes_resource": "pods"}), true),
            (json!({"kubernetes_resource": "secrets"}), false),
            (json!({"kubernetes_subresource": "exec"}), true),
            (json!({"kubernetes_subresource": ""}), false),
            (json!({"kubernetes_namespace": "prod"}), true),
            (
                json!({"kubernetes_namespace": {"in": ["dev", "test"]}}),
                false,
            ),
            (json!({"kubernetes_api_group": ""}), true),
            (json!({"kubernetes_api_group": "apps"}), false),
            (json!({"kubernetes_name": {"starts_with": "web-"}}), true),
            (json!({"kubernetes_name": {"ends_with": "-1"}}), false),
            (json!({"kubernetes_resource_request": true}), true),
            (json!({"kubernetes_resource_request": false}), false),
            (
                json!({"kubernetes_non_resource_path": {"starts_with": "/"}}),
                false,
            ),
            (json!({"source_ip": "2001:db8::/32"}), true),
            (json!({"source_ip": ["10.0.0.0/8", "::1"]}), false),
            (json!({"date": {"after": "2024-03-04T10:00:00Z"}}), true),
            (json!({"date": {"before": "2024-03-04T10:00:00Z"}}), false),
            (json!({"day_of_week": "mon-fri"}), true),
            // Monday 10:00 UTC is still Sunday 23:00 at -11:00, but Monday 01:00 at -09:00.
            (
                json!({"day_of_week": {"days": "sun", "timezone": "-11:00"}}),
                true,
            ),
            (
                json!({"day_of_week": {"days": "sun", "timezone": "-09:00"}}),
                false,
            ),
            (
                json!({"time_of_day": {"timezone": "UTC", "after": "10:00"}}),
                true,
            ),
            (
                json!({"time_of_day": {"timezone": "UTC", "before": "10:00"}}),
                false,
            ),
        ];
        for (criterion, expected) in cases {
            let alone = policy(json!({"allow": {"or": [criterion.clone()]}}));
            assert_eq!(allows(&alone, &subject), expected, "{criterion}");
            // `not` over one criterion is its negation; so is `nor`.
            for operator in ["not", "nor"] {
                let negated = policy(json!({"allow": {operator: [criterion.clone()]}}));
                assert_eq!(
                    allows(&negated, &subject),
                    !expected,
                    "{operator} {criterion}"
                );
            }
        }
        // Resource criteria never hold for /version, so `not` of them always does.
        let negated = policy(json!({"allow": {"not": [{"kubernetes_namespace": ""}]}}));
        assert!(allows(&negated, &non_resource));
        let path = policy(json!({"allow": {"or": [{"kubernetes_non_resource_path": "/version"}]}}));
        assert!(allows(&path, &non_resource));
    }

    #[test]
    fn unresolved_request_fails_kubernetes_criteria_but_not_others() {
        let unresolved = context(None, "10.0.0.1", MONDAY);
        let kubernetes = policy(json!({"allow": {"or": [
            {"kubernetes_verb": {"not": "delete"}},
            {"kubernetes_resource_request": false},
        ]}}));
        assert!(!allows(&kubernetes, &unresolved));
        let ip = policy(json!({"allow": {"or": [{"source_ip": "10.0.0.0/8"}]}}));
        assert!(allows(&ip, &unresolved));
        // `not` turns the false into true: such requests are refused by the filter before
        // the policy, which is why a deny rule need not name them.
        let negated = policy(json!({"allow": {"not": [{"kubernetes_verb": "delete"}]}}));
        assert!(allows(&negated, &unresolved));
    }

    #[test]
    fn deny_names_the_criterion_that_decided() {
        let rules = policy(json!([
            {"allow": {"or": [{"accept": true}]}},
            {"deny": {"or": [
                {"kubernetes_verb": "delete"},
                {"kubernetes_subresource": "exec"},
                {"source_ip": "192.0.2.0/24"},
            ]}},
            {"deny": {
                "and": [{"kubernetes_resource": "secrets"}, {"day_of_week": "sat,sun"}],
                "not": [{"source_ip": ["10.0.0.0/8", "192.0.2.0/24"]}],
                "nor": [{"kubernetes_namespace": {"not": "kube-system"}}, {"kubernetes_verb": {"not": "patch"}}],
            }},
        ]));
        let reason = |method: &str, target: &str, ip: &str, now: u64| {
            let info = request(method, target);
            rules
                .evaluate_with(&Facts::default(), &context(Some(&info), ip, now))
                .reason
                .to_string()
        };
        let pod = "/api/v1/namespaces/default/pods/p";
        assert_eq!(
            reason("DELETE", pod, "10.0.0.1", MONDAY),
            "deny rule policy[1].deny matched (or[0] kubernetes_verb)"
        );
        assert_eq!(
            reason(
                "GET",
                "/api/v1/namespaces/default/pods/p/exec",
                "10.0.0.1",
                MONDAY
            ),
            "deny rule policy[1].deny matched (or[1] kubernetes_subresource)"
        );
        assert_eq!(
            reason("GET", pod, "192.0.2.9", MONDAY),
            "deny rule policy[1].deny matched (or[2] source_ip)"
        );
        // The first rule wins even when a later one would match too.
        assert_eq!(
            reason("DELETE", pod, "198.51.100.1", MONDAY),
            "deny rule policy[1].deny matched (or[0] kubernetes_verb)"
        );
        let saturday = MONDAY + 5 * 24 * HOUR;
        assert_eq!(
            reason(
                "GET",
                "/api/v1/namespaces/default/secrets/s",
                "10.0.0.1",
                saturday
            ),
            "deny rule policy[2].deny matched (and: every criterion held)"
        );
        assert_eq!(
            reason("GET", pod, "198.51.100.1", MONDAY),
            "deny rule policy[2].deny matched (not: no criterion held)"
        );
        assert_eq!(
            reason(
                "PATCH",
                "/api/v1/namespaces/kube-system/pods/p",
                "10.0.0.1",
                MONDAY
            ),
            "deny rule policy[2].deny matched (nor[0] kubernetes_namespace did not hold)"
        );
        let allowed = rules.evaluate_with(
            &Facts::default(),
            &context(Some(&request("GET", pod)), "10.0.0.1", MONDAY),
        );
        assert!(allowed.allowed);
        assert_eq!(
            allowed.reason.to_string(),
            "allow rule policy[0].allow matched"
        );
    }

    #[test]
    fn nor_names_its_first_false_criterion() {
        let rules = policy(
            json!({"deny": {"nor": [{"accept": true}, {"reject": true}, {"reject": true}]}}),
        );
        assert_eq!(
            rules.evaluate(&Facts::default()).reason.to_string(),
            "deny rule policy.deny matched (nor[1] reject did not hold)"
        );
    }

    #[test]
    fn without_context_a_policy_that_needs_one_refuses() {
        for criterion in [
            json!({"kubernetes_verb": "get"}),
            json!({"source_ip": "0.0.0.0/0"}),
            json!({"date": {"after": "1970-01-01T00:00:00Z"}}),
            json!({"day_of_week": "*"}),
            json!({"time_of_day": {"timezone": "UTC", "after": "00:00"}}),
        ] {
            // Even in a deny rule that would never match: skipping it silently could let a
            // request through that the rule was written to stop.
            let rules = policy(json!([
                {"allow": {"or": [{"accept": true}]}},
                {"deny": {"and": [{"reject": true}, criterion.clone()]}},
            ]));
            assert!(rules.needs_context(), "{criterion}");
            let verdict = rules.evaluate(&Facts::default());
            assert!(!verdict.allowed, "{criterion}");
            assert_eq!(verdict.reason, Reason::MissingRequestContext);
            let everything = context(None, "192.0.2.1", MONDAY);
            assert!(rules.evaluate_with(&Facts::default(), &everything).allowed);
        }
        let classic = policy(json!([{"allow": {"or": [{"http_method": "GET"}]}}]));
        assert!(!classic.needs_context());
        let get = Facts {
            method: "GET",
            ..Facts::default()
        };
        assert!(classic.evaluate(&get).allowed);
        let everything = context(None, "192.0.2.1", MONDAY);
        assert_eq!(
            classic.evaluate(&get),
            classic.evaluate_with(&get, &everything)
        );
    }

    #[test]
    fn kubernetes_policy_example() {
        // Readers read everywhere but secrets; operators also write in their namespaces and
        // exec, from the office network, on weekdays during office hours (UTC+1).
        let rules = policy(json!([
            {"allow": {"and": [
                {"groups": "readers"},
                {"kubernetes_verb": {"in": ["get", "list", "watch"]}},
            ]}},
            {"allow": {"and": [
                {"groups": "operators"},
                {"kubernetes_namespace": {"starts_with": "team-"}},
                {"source_ip": ["10.0.0.0/8", "2001:db8::/32"]},
                {"day_of_week": {"days": "mon-fri", "timezone": "+01:00"}},
                {"time_of_day": {"timezone": "+01:00", "after": "08:00", "before": "18:00"}},
            ]}},
            {"allow": {"and": [
                {"kubernetes_resource_request": false},
                {"authenticated_user": true},
            ]}},
            {"deny": {"or": [
                {"kubernetes_resource": "secrets"},
            ], "and": [
                {"kubernetes_verb": "deletecollection"},
                {"kubernetes_namespace": ""},
            ]}},
        ]));
        let check = |groups: &[&str], method: &str, target: &str, ip: &str, now: u64| {
            let session = claims(json!({"sub": "u", "groups": groups}));
            let groups = groups_of(&session);
            let info = request(method, target);
            let facts = Facts {
                claims: Some(&session),
                groups: &groups,
                method,
                path: target,
                ..Facts::default()
            };
            rules
                .evaluate_with(&facts, &context(Some(&info), ip, now))
                .reason
                .to_string()
        };
        let ten_am = MONDAY + 9 * HOUR; // 10:00 at +01:00
        let list_pods = "/api/v1/namespaces/team-a/pods";
        assert_eq!(
            check(&["readers"], "GET", list_pods, "192.0.2.1", ten_am),
            "allow rule policy[0].allow matched"
        );
        assert_eq!(
            check(&["readers"], "POST", list_pods, "10.0.0.1", ten_am),
            "no allow rule matched (policy[0].allow: and[1] kubernetes_verb did not hold)"
        );
        assert_eq!(
            check(
                &["readers"],
                "GET",
                "/api/v1/namespaces/team-a/secrets",
                "10.0.0.1",
                ten_am
            ),
            "deny rule policy[3].deny matched (or[0] kubernetes_resource)"
        );
        let exec = "/api/v1/namespaces/team-a/pods/web-0/exec?command=sh";
        assert_eq!(
            check(&["operators"], "GET", exec, "10.0.0.1", ten_am),
            "allow rule policy[1].allow matched"
        );
        assert_eq!(
            check(&["operators"], "GET", exec, "192.0.2.1", ten_am),
            "no allow rule matched (policy[1].allow: and[2] source_ip did not hold)"
        );
        // 07:59:59 and 18:00:00 at +01:00 are outside office hours; Saturday is too.
        assert_eq!(
            check(
                &["operators"],
                "GET",
                exec,
                "10.0.0.1",
                MONDAY + 7 * HOUR - 1
            ),
            "no allow rule matched (policy[1].allow: and[4] time_of_day did not hold)"
        );
        assert_eq!(
            check(&["operators"], "GET", exec, "10.0.0.1", MONDAY + 17 * HOUR),
            "no allow rule matched (policy[1].allow: and[4] time_of_day did not hold)"
        );
        assert_eq!(
            check(
                &["operators"],
                "GET",
                exec,
                "10.0.0.1",
                ten_am + 5 * 24 * HOUR
            ),
            "no allow rule matched (policy[1].allow: and[3] day_of_week did not hold)"
        );
        assert_eq!(
            check(
                &["operators"],
                "GET",
                "/api/v1/namespaces/prod/pods",
                "10.0.0.1",
                ten_am
            ),
            "no allow rule matched (policy[1].allow: and[1] kubernetes_namespace did not hold)"
        );
        assert_eq!(
            check(
                &["operators"],
                "DELETE",
                "/api/v1/nodes",
                "10.0.0.1",
                ten_am
            ),
            "deny rule policy[3].deny matched (and: every criterion held)"
        );
        assert_eq!(
            check(&[], "GET", "/version?timeout=5s", "192.0.2.1", ten_am),
            "allow rule policy[2].allow matched"
        );
    }
}
