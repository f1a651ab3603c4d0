//! Parsing a PPL document (a rule object or a list of rules) into rules.
//!
//! The shape follows Pomerium's parser (pkg/policy/parser): rule -> action ->
//! operators -> criteria, a fixed depth, so parsing never recurses on the input
//! and needs no depth guard. Where Pomerium is lenient we fail closed, because a
//! typo must never silently switch a rule off:
//! - unknown keys anywhere are errors (Pomerium ignores an `action` key inside a
//!   block; we refuse it);
//! - a rule needs `allow` or `deny` (Pomerium accepts `{}`);
//! - a block needs at least one operator and an operator at least one
//!   criterion. Pomerium skips empty operators, so `{"deny": {"or": []}}` would be
//!   a deny rule that never fires, and by their definitions `and: []` and
//!   `not: []` would be true, which would let everyone in. Neither is what
//!   anyone means.
//!
//! Only the short form `{"allow": {...}}` exists: Pomerium's parser reads each
//! key of a rule as an action and refuses `{"action": "allow", ...}`.

use super::criteria::Criterion;
use super::error::JsonPath;
use super::rules::{Block, Condition, Operator, Rule};
use super::verdict::RuleLocation;
use super::PolicyError;
use serde_json::Value;

pub(crate) fn parse_rules(value: &Value) -> Result<Box<[Rule]>, PolicyError> {
    let root = JsonPath::root();
    match value {
        Value::Array(rules) => rules
            .iter()
            .enumerate()
            .map(|(index, rule)| parse_rule(rule, &root.index(index), RuleLocation::listed(index)))
            .collect(),
        Value::Object(_) => Ok(Box::new([parse_rule(value, &root, RuleLocation::SINGLE)?])),
        other => Err(root.wrong_type("a rule object or a list of rules", other)),
    }
}

fn parse_rule(
    value: &Value,
    path: &JsonPath<'_>,
    location: RuleLocation,
) -> Result<Rule, PolicyError> {
    let object = value
        .as_object()
        .ok_or_else(|| path.wrong_type("a rule object", value))?;
    let mut rule = Rule {
        location,
        allow: None,
        deny: None,
    };
    for (key, body) in object {
        let body_path = path.key(key);
        match key.as_str() {
            "allow" => rule.allow = Some(parse_block(body, &body_path)?),
            "deny" => rule.deny = Some(parse_block(body, &body_path)?),
            "action" => {
                return Err(path.error(
                    "the form {\"action\": ...} is not PPL; write {\"allow\": {...}} or {\"deny\": {...}}",
                ))
            }
            unknown => {
                return Err(path.error(format!(
                    "unknown key {unknown:?} in a rule (expected \"allow\" or \"deny\")"
                )))
            }
        }
    }
    if rule.allow.is_none() && rule.deny.is_none() {
        return Err(path.error("a rule needs \"allow\" or \"deny\""));
    }
    Ok(rule)
}

fn parse_block(value: &Value, path: &JsonPath<'_>) -> Result<Block, PolicyError> {
    let object = value.as_object().ok_or_else(|| {
        path.wrong_type(
            &format!("an object of operators ({})", Operator::NAMES),
            value,
        )
    })?;
    if object.is_empty() {
        return Err(path.error(format!(
            "no operator: give at least one of {}",
            Operator::NAMES
        )));
    }
    let mut conditions = Vec::with_capacity(object.len());
    for (name, criteria) in object {
        let operator = Operator::from_name(name).ok_or_else(|| {
            path.error(format!(
                "unknown operator {name:?} (expected one of {})",
                Operator::NAMES
            ))
        })?;
        conditions.push(Condition {
            operator,
            criteria: parse_criteria(criteria, &path.key(name))?,
        });
    }
    Ok(Block {
        conditions: conditions.into_boxed_slice(),
    })
}

fn parse_criteria(value: &Value, path: &JsonPath<'_>) -> Result<Box<[Criterion]>, PolicyError> {
    let items = value
        .as_array()
        .ok_or_else(|| path.wrong_type("a list of criteria", value))?;
    if items.is_empty() {
        return Err(path.error(
            "empty list: an operator needs at least one criterion (remove the operator instead)",
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| Criterion::parse(item, &path.index(index)))
        .collect()
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use serde_json::json;

    fn error(value: Value) -> String {
        parse_rules(&value).expect_err("invalid policy").to_string()
    }

    #[test]
    fn list_of_rules() {
        let rules = parse_rules(&json!([
            {"allow": {"or": [{"accept": true}]}},
            {"deny": {"and": [{"reject": true}]}, "allow": {"not": [{"reject": true}]}},
        ]))
        .expect("valid policy");
        assert_eq!(rules.len(), 2);
        assert_eq!(
            rules.first().map(|rule| rule.location),
            Some(RuleLocation::listed(0))
        );
        assert!(rules
            .first()
            .is_some_and(|rule| rule.allow.is_some() && rule.deny.is_none()));
        assert!(rules
            .get(1)
            .is_some_and(|rule| rule.allow.is_some() && rule.deny.is_some()));
    }

    #[test]
    fn single_rule_object() {
        let rules = parse_rules(&json!({"allow": {"or": [{"accept": true}]}})).expect("valid");
        assert_eq!(rules.len(), 1);
        assert_eq!(
            rules.first().map(|rule| rule.location),
            Some(RuleLocation::SINGLE)
        );
    }

    #[test]
    fn empty_list_is_an_empty_policy() {
        assert!(parse_rules(&json!([])).expect("valid").is_empty());
    }

    #[test]
    fn block_keeps_every_operator() {
        let rules = parse_rules(&json!({"allow": {
            "and": [{"accept": true}],
            "or": [{"accept": true}],
            "not": [{"reject": true}],
            "nor": [{"reject": true}, {"accept": true}],
        }}))
        .expect("valid");
        let operators: Vec<Operator> = rules
            .iter()
            .flat_map(|rule| rule.allow.iter())
            .flat_map(|block| block.conditions.iter())
            .map(|condition| condition.operator)
            .collect();
        assert_eq!(operators.len(), 4);
        for operator in [Operator::And, Operator::Or, Operator::Not, Operator::Nor] {
            assert!(operators.contains(&operator), "{operator:?} kept");
        }
    }

    #[test]
    fn error_path_reaches_the_matcher() {
        assert_eq!(
            error(json!([{"allow": {"or": [
                {"accept": true},
                {"email": "a@example.com"},
                {"domain": {"iz": "pomerium.com"}},
            ]}}])),
            "policy[0].allow.or[2].domain: unknown string matcher operator \"iz\""
        );
    }

    #[test]
    fn unknown_criterion() {
        assert_eq!(
            error(json!([
                {"allow": {"or": [{"accept": true}]}},
                {"deny": {"and": [{"domian": "example.com"}]}},
            ])),
            "policy[1].deny.and[0]: unknown criterion \"domian\" (known: accept, reject, \
             authenticated_user, domain, email, user, groups, claim/NAME, http_method, http_path, \
             source_ip, date, day_of_week, time_of_day, kubernetes_verb, kubernetes_resource, \
             kubernetes_subresource, kubernetes_namespace, kubernetes_api_group, kubernetes_name, \
             kubernetes_resource_request, kubernetes_non_resource_path, kubernetes_exec_class)"
        );
    }

    #[test]
    fn unknown_operator() {
        assert_eq!(
            error(json!([{"allow": {"xor": [{"accept": true}]}}])),
            "policy[0].allow: unknown operator \"xor\" (expected one of and, or, not, nor)"
        );
        assert_eq!(
            error(json!([{"allow": {"action": "allow", "or": [{"accept": true}]}}])),
            "policy[0].allow: unknown operator \"action\" (expected one of and, or, not, nor)"
        );
    }

    #[test]
    fn unknown_top_level_key() {
        assert_eq!(
            error(json!([{"alow": {"or": [{"accept": true}]}}])),
            "policy[0]: unknown key \"alow\" in a rule (expected \"allow\" or \"deny\")"
        );
        assert_eq!(
            error(
                json!({"allow": {"or": [{"accept": true}]}, "deny ": {"or": [{"accept": true}]}})
            ),
            "policy: unknown key \"deny \" in a rule (expected \"allow\" or \"deny\")"
        );
    }

    #[test]
    fn long_form_is_refused() {
        assert_eq!(
            error(json!([{"action": "allow", "or": [{"accept": true}]}])),
            "policy[0]: the form {\"action\": ...} is not PPL; write {\"allow\": {...}} or {\"deny\": {...}}"
        );
    }

    #[test]
    fn rule_without_allow_or_deny() {
        assert_eq!(
            error(json!([{}])),
            "policy[0]: a rule needs \"allow\" or \"deny\""
        );
        assert_eq!(
            error(json!({})),
            "policy: a rule needs \"allow\" or \"deny\""
        );
    }

    #[test]
    fn wrong_types() {
        assert_eq!(
            error(json!("allow everyone")),
            "policy: expected a rule object or a list of rules, found a string"
        );
        assert_eq!(
            error(json!([["allow"]])),
            "policy[0]: expected a rule object, found a list"
        );
        assert_eq!(
            error(json!([{"allow": [{"accept": true}]}])),
            "policy[0].allow: expected an object of operators (and, or, not, nor), found a list"
        );
        assert_eq!(
            error(json!([{"deny": {"or": {"accept": true}}}])),
            "policy[0].deny.or: expected a list of criteria, found an object"
        );
        assert_eq!(
            error(json!([{"deny": {"or": ["accept"]}}])),
            "policy[0].deny.or[0]: expected a criterion object, found a string"
        );
        assert_eq!(
            error(json!([{"allow": {"and": [{"domain": {"is": 1}}]}}])),
            "policy[0].allow.and[0].domain.is: expected a string, found a number"
        );
        assert_eq!(
            error(json!([{"allow": {"and": [{"groups": {"has": ["a"]}}]}}])),
            "policy[0].allow.and[0].groups.has: expected a string, found a list"
        );
    }

    #[test]
    fn empty_operator_list_is_refused() {
        for operator in ["and", "or", "not", "nor"] {
            assert_eq!(
                error(json!([{"deny": {operator: []}}])),
                format!(
                    "policy[0].deny.{operator}: empty list: an operator needs at least one \
                     criterion (remove the operator instead)"
                )
            );
        }
    }

    #[test]
    fn block_without_operator_is_refused() {
        assert_eq!(
            error(json!([{"allow": {}}])),
            "policy[0].allow: no operator: give at least one of and, or, not, nor"
        );
    }

    #[test]
    fn hostile_shapes_are_errors_not_panics() {
        let hostile = [
            json!(null),
            json!(0),
            json!([null]),
            json!([[[[[]]]]]),
            json!({"allow": null}),
            json!({"allow": {"or": null}}),
            json!({"allow": {"or": [null]}}),
            json!({"allow": {"or": [[]]}}),
            json!({"allow": {"or": [{"": ""}]}}),
            json!({"allow": {"or": [{"/": ""}]}}),
            json!({"allow": {"or": [{"claim//": {"": []}}]}}),
            json!({"allow": {"or": [{"domain": {"in": [[], {}]}}]}}),
            json!({"allow": {"or": [{"groups": {"is": null}}]}}),
            json!({"allow": {"or": [{"http_method": {"in": ["ǅ"]}}]}}),
            json!({"allow": {"or": [{"email\u{0}": "\u{202e}"}]}}),
            json!({"allow": {"or": [{"source_ip": [[]]}]}}),
            json!({"allow": {"or": [{"source_ip": null}]}}),
            json!({"allow": {"or": [{"date": {"after": null}}]}}),
            json!({"allow": {"or": [{"date": []}]}}),
            json!({"allow": {"or": [{"day_of_week": {}}]}}),
            json!({"allow": {"or": [{"day_of_week": "\u{0}"}]}}),
            json!({"allow": {"or": [{"time_of_day": {"timezone": "+99:99", "after": "1:00"}}]}}),
            json!({"allow": {"or": [{"time_of_day": {"timezone": "UTC", "after": "١:٠٠"}}]}}),
            json!({"allow": {"or": [{"kubernetes_verb": {"in": [null]}}]}}),
            json!({"allow": {"or": [{"kubernetes_resource_request": null}]}}),
            json!({"allow": {"or": [{"kubernetes_namespace": "ǅ"}]}}),
        ];
        for value in hostile {
            assert!(parse_rules(&value).is_err(), "{value} refused");
        }
    }

    #[test]
    fn errors_in_new_criteria_name_their_path() {
        assert_eq!(
            error(json!([
                {"allow": {"or": [{"accept": true}]}},
                {"deny": {"not": [
                    {"kubernetes_verb": "get"},
                    {"time_of_day": {"timezone": "UTC", "after": "9:00", "before": "25:00"}},
                ]}},
            ])),
            "policy[1].deny.not[1].time_of_day.before: \"25:00\" is not a time of day: hours go \
             to 23, minutes and seconds to 59"
        );
        assert_eq!(
            error(json!({"allow": {"and": [{"source_ip": ["10.0.0.0/8", "10.0.0.1/8"]}]}})),
            "policy.allow.and[0].source_ip[1]: \"10.0.0.1/8\" has host bits set: give the first \
             address of the range (as in \"10.0.0.0/8\") or a single address without a prefix \
             length"
        );
        assert_eq!(
            error(
                json!([{"allow": {"nor": [{"day_of_week": {"days": "mon", "timezone": "CET"}}]}}])
            ),
            "policy[0].allow.nor[0].day_of_week.timezone: time zone \"CET\": IANA time zone names \
             are not supported (the time zone database would add about 200 KiB to the filter); \
             give \"UTC\" or a fixed offset such as \"+02:00\" or \"-05:30\" (a fixed offset does \
             not follow daylight saving time)"
        );
        assert_eq!(
            error(json!([{"allow": {"or": [{"date": {"after": "2025-01-01T00:00:00"}}]}}])),
            "policy[0].allow.or[0].date.after: \"2025-01-01T00:00:00\" has no UTC offset: add \
             \"Z\" for UTC or an offset such as \"+01:00\""
        );
        assert_eq!(
            error(json!([{"deny": {"or": [{"kubernetes_verb": {"in": ["get", "Delete"]}}]}}])),
            "policy[0].deny.or[0].kubernetes_verb.in[1]: Kubernetes verbs are lower case: write \
             \"delete\", not \"Delete\""
        );
    }

    #[test]
    fn first_bad_rule_is_reported() {
        assert_eq!(
            error(json!([
                {"allow": {"or": [{"accept": true}]}},
                {"allow": {"or": [{"accept": true}]}},
                {"allow": {"or": [{"accept": false}]}},
            ])),
            "policy[2].allow.or[0].accept: expected true, found a boolean; to switch the \
             criterion off, remove it"
        );
    }
}
