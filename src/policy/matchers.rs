//! PPL's value matchers: the string matcher and the string-list matcher
//! (Pomerium docs, "Policy Language": string and string-list matchers).

use super::error::JsonPath;
use super::PolicyError;
use serde_json::Value;

/// Refuses a configured string that could never match (with the reason), or accepts it.
pub(crate) type StringCheckFn = fn(&str) -> Result<(), String>;

const STRING_OPERATORS: &str = "is, not, contains, starts_with, ends_with, in";
const LIST_OPERATORS: &str = "has, is, exclude";

/// Matches one string. A bare string means `is`; an object's operators must all
/// hold (Pomerium pkg/policy/criteria: several operators in one matcher object must all hold).
#[derive(Debug, Clone)]
pub(crate) struct StringMatcher {
    checks: Box<[StringCheck]>,
}

#[derive(Debug, Clone)]
enum StringCheck {
    Is(Box<str>),
    /// PPL's `not`: "is not equal", not a negated matcher.
    IsNot(Box<str>),
    Contains(Box<str>),
    StartsWith(Box<str>),
    EndsWith(Box<str>),
    In(Box<[Box<str>]>),
}

impl StringCheck {
    fn holds(&self, subject: &str) -> bool {
        match self {
            StringCheck::Is(expected) => subject == &**expected,
            StringCheck::IsNot(unwanted) => subject != &**unwanted,
            StringCheck::Contains(part) => subject.contains(&**part),
            StringCheck::StartsWith(prefix) => subject.starts_with(&**prefix),
            StringCheck::EndsWith(suffix) => subject.ends_with(&**suffix),
            StringCheck::In(choices) => choices.iter().any(|choice| subject == &**choice),
        }
    }
}

impl StringCheck {
    /// Like [`StringCheck::holds`], but the subject's bytes from `fold_from` on compare
    /// ignoring ASCII case (the domain of an email address; all of a domain name).
    fn holds_folding(&self, subject: &str, fold_from: usize) -> bool {
        let subject = subject.as_bytes();
        let equals = |expected: &str| {
            subject.len() == expected.len() && equal_at(subject, 0, expected, fold_from)
        };
        match self {
            StringCheck::Is(expected) => equals(expected),
            StringCheck::IsNot(unwanted) => !equals(unwanted),
            StringCheck::Contains(part) => {
                subject.len().checked_sub(part.len()).is_some_and(|last| {
                    (0..=last).any(|start| equal_at(subject, start, part, fold_from))
                })
            }
            StringCheck::StartsWith(prefix) => equal_at(subject, 0, prefix, fold_from),
            StringCheck::EndsWith(suffix) => subject
                .len()
                .checked_sub(suffix.len())
                .is_some_and(|start| equal_at(subject, start, suffix, fold_from)),
            StringCheck::In(choices) => choices.iter().any(|choice| equals(choice)),
        }
    }
}

/// Whether `pattern` appears in `subject` at `start`, the subject's bytes at index `fold_from`
/// and later comparing ignoring ASCII case (non-ASCII bytes always compare exactly).
fn equal_at(subject: &[u8], start: usize, pattern: &str, fold_from: usize) -> bool {
    let Some(window) = start
        .checked_add(pattern.len())
        .and_then(|end| subject.get(start..end))
    else {
        return false;
    };
    window
        .iter()
        .zip(pattern.as_bytes())
        .enumerate()
        .all(|(offset, (given, wanted))| {
            if start.saturating_add(offset) >= fold_from {
                given.eq_ignore_ascii_case(wanted)
            } else {
                given == wanted
            }
        })
}

impl StringMatcher {
    /// Parses a string matcher whose strings may be anything.
    pub(crate) fn parse(value: &Value, path: &JsonPath<'_>) -> Result<Self, PolicyError> {
        Self::parse_checked(value, path, |_| Ok(()))
    }

    /// Parses a string matcher, refusing any configured string that `check`
    /// rejects (e.g. a lower-case HTTP method that could never match).
    ///
    /// `check` is a function pointer rather than a generic so that every criterion shares
    /// one copy of this parser in the module (each generic instance cost ~2 KiB of .wasm).
    pub(crate) fn parse_checked(
        value: &Value,
        path: &JsonPath<'_>,
        check: StringCheckFn,
    ) -> Result<Self, PolicyError> {
        let operators = match value {
            Value::String(_) => {
                let expected = checked_string(value, path, check)?;
                return Ok(StringMatcher {
                    checks: Box::new([StringCheck::Is(expected)]),
                });
            }
            Value::Object(operators) => operators,
            other => return Err(path.wrong_type("a string or a string matcher object", other)),
        };
        if operators.is_empty() {
            return Err(path.error(format!(
                "empty string matcher: give at least one of {STRING_OPERATORS}"
            )));
        }
        let mut checks = Vec::with_capacity(operators.len());
        for (operator, operand) in operators {
            let operand_path = path.key(operator);
            let string = || checked_string(operand, &operand_path, check);
            checks.push(match operator.as_str() {
                "is" => StringCheck::Is(string()?),
                "not" => StringCheck::IsNot(string()?),
                "contains" => StringCheck::Contains(string()?),
                "starts_with" => StringCheck::StartsWith(string()?),
                "ends_with" => StringCheck::EndsWith(string()?),
                "in" => StringCheck::In(checked_string_list(operand, &operand_path, check)?),
                unknown => {
                    return Err(path.error(format!("unknown string matcher operator {unknown:?}")))
                }
            });
        }
        Ok(StringMatcher {
            checks: checks.into_boxed_slice(),
        })
    }

    pub(crate) fn matches(&self, subject: &str) -> bool {
        self.checks.iter().all(|check| check.holds(subject))
    }

    /// Matches a domain name: ASCII letters compare ignoring case, as DNS compares names
    /// (RFC 4343); other characters compare exactly.
    pub(crate) fn matches_domain(&self, domain: &str) -> bool {
        self.checks
            .iter()
            .all(|check| check.holds_folding(domain, 0))
    }

    /// Matches an email address: the local part (up to the last `@`) exactly, as RFC 5321
    /// leaves its case to the receiving host, and the domain after it as
    /// [`StringMatcher::matches_domain`] does. Without an `@`, exactly.
    pub(crate) fn matches_email(&self, email: &str) -> bool {
        let fold_from = email.rfind('@').map_or(usize::MAX, |at| at + 1);
        self.checks
            .iter()
            .all(|check| check.holds_folding(email, fold_from))
    }
}

fn checked_string(
    value: &Value,
    path: &JsonPath<'_>,
    check: StringCheckFn,
) -> Result<Box<str>, PolicyError> {
    let text = value
        .as_str()
        .ok_or_else(|| path.wrong_type("a string", value))?;
    check(text).map_err(|problem| path.error(problem))?;
    Ok(text.into())
}

fn checked_string_list(
    value: &Value,
    path: &JsonPath<'_>,
    check: StringCheckFn,
) -> Result<Box<[Box<str>]>, PolicyError> {
    let items = value
        .as_array()
        .ok_or_else(|| path.wrong_type("a list of strings", value))?;
    // `in: []` could never match: refuse it rather than run a rule that is
    // silently switched off.
    if items.is_empty() {
        return Err(path.error("empty list: \"in\" needs at least one string"));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| checked_string(item, &path.index(index), check))
        .collect()
}

/// Matches a list of values (a user's groups, a list-valued claim). A bare value
/// means `has`; an object's operators must all hold. Generic over the configured
/// value so groups compare strings and claims compare JSON scalars.
#[derive(Debug, Clone)]
pub(crate) struct ListMatcher<V> {
    checks: Box<[ListCheck<V>]>,
}

#[derive(Debug, Clone)]
enum ListCheck<V> {
    /// Some element equals the value.
    Has(V),
    /// The list is exactly one element, equal to the value.
    Is(V),
    /// No element equals the value.
    Exclude(V),
}

impl<V> ListMatcher<V> {
    /// `expected` describes what `parse_element` accepts, for error messages.
    pub(crate) fn parse(
        value: &Value,
        path: &JsonPath<'_>,
        expected: &str,
        parse_element: impl Fn(&Value) -> Option<V>,
    ) -> Result<Self, PolicyError> {
        let operators = match value {
            Value::Object(operators) => operators,
            bare => {
                let element = parse_element(bare).ok_or_else(|| {
                    path.wrong_type(&format!("{expected} or a string list matcher object"), bare)
                })?;
                return Ok(ListMatcher {
                    checks: Box::new([ListCheck::Has(element)]),
                });
            }
        };
        if operators.is_empty() {
            return Err(path.error(format!(
                "empty string list matcher: give at least one of {LIST_OPERATORS}"
            )));
        }
        let mut checks = Vec::with_capacity(operators.len());
        for (operator, operand) in operators {
            let element = || {
                parse_element(operand)
                    .ok_or_else(|| path.key(operator).wrong_type(expected, operand))
            };
            checks.push(match operator.as_str() {
                "has" => ListCheck::Has(element()?),
                "is" => ListCheck::Is(element()?),
                "exclude" => ListCheck::Exclude(element()?),
                unknown => {
                    return Err(
                        path.error(format!("unknown string list matcher operator {unknown:?}"))
                    )
                }
            });
        }
        Ok(ListMatcher {
            checks: checks.into_boxed_slice(),
        })
    }

    /// Whether every check holds for `items`, comparing with `equals`.
    pub(crate) fn matches<E>(&self, items: &[E], equals: impl Fn(&V, &E) -> bool) -> bool {
        let has = |value: &V| items.iter().any(|item| equals(value, item));
        self.checks.iter().all(|check| match check {
            ListCheck::Has(value) => has(value),
            ListCheck::Is(value) => matches!(items, [only] if equals(value, only)),
            ListCheck::Exclude(value) => !has(value),
        })
    }
}

/// The element parser for lists of strings (groups).
pub(crate) fn string_element(value: &Value) -> Option<Box<str>> {
    value.as_str().map(Box::from)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use serde_json::json;

    fn string_matcher(value: Value) -> StringMatcher {
        StringMatcher::parse(&value, &JsonPath::root()).expect("valid string matcher")
    }

    fn string_matcher_error(value: Value) -> String {
        StringMatcher::parse(&value, &JsonPath::root())
            .expect_err("invalid string matcher")
            .to_string()
    }

    fn groups_matcher(value: Value) -> ListMatcher<Box<str>> {
        ListMatcher::parse(&value, &JsonPath::root(), "a string", string_element)
            .expect("valid list matcher")
    }

    fn groups_matcher_error(value: Value) -> String {
        ListMatcher::parse(&value, &JsonPath::root(), "a string", string_element)
            .expect_err("invalid list matcher")
            .to_string()
    }

    fn groups_match(matcher: &ListMatcher<Box<str>>, groups: &[&str]) -> bool {
        matcher.matches(groups, |expected, group| **expected == **group)
    }

    #[test]
    fn bare_string_means_is() {
        let matcher = string_matcher(json!("example.com"));
        assert!(matcher.matches("example.com"));
        assert!(!matcher.matches("example.co"));
        assert!(!matcher.matches("sub.example.com"));
        assert!(!matcher.matches("EXAMPLE.COM"));
    }

    #[test]
    fn is_operator() {
        let matcher = string_matcher(json!({"is": "a"}));
        assert!(matcher.matches("a"));
        assert!(!matcher.matches("ab"));
        assert!(!matcher.matches(""));
    }

    #[test]
    fn not_operator_means_not_equal() {
        let matcher = string_matcher(json!({"not": "a"}));
        assert!(!matcher.matches("a"));
        assert!(matcher.matches("ab"));
        assert!(matcher.matches(""));
    }

    #[test]
    fn contains_operator() {
        let matcher = string_matcher(json!({"contains": "mid"}));
        assert!(matcher.matches("amidst"));
        assert!(matcher.matches("mid"));
        assert!(!matcher.matches("mi d"));
    }

    #[test]
    fn starts_with_operator() {
        let matcher = string_matcher(json!({"starts_with": "/api/"}));
        assert!(matcher.matches("/api/v1"));
        assert!(!matcher.matches("/apis/apps"));
        assert!(!matcher.matches("x/api/"));
    }

    #[test]
    fn ends_with_operator() {
        let matcher = string_matcher(json!({"ends_with": "@example.com"}));
        assert!(matcher.matches("a@example.com"));
        assert!(!matcher.matches("a@example.com.evil"));
    }

    #[test]
    fn in_operator() {
        let matcher = string_matcher(json!({"in": ["GET", "LIST"]}));
        assert!(matcher.matches("GET"));
        assert!(matcher.matches("LIST"));
        assert!(!matcher.matches("POST"));
        assert!(!matcher.matches("GETLIST"));
    }

    #[test]
    fn domains_ignore_ascii_case() {
        let matcher = |value| string_matcher(value);
        assert!(matcher(json!("partner.example")).matches_domain("PARTNER.Example"));
        assert!(matcher(json!("Partner.EXAMPLE")).matches_domain("partner.example"));
        assert!(!matcher(json!("partner.example")).matches_domain("partner.example.org"));
        assert!(!matcher(json!({"not": "partner.example"})).matches_domain("PARTNER.EXAMPLE"));
        assert!(matcher(json!({"in": ["a.example", "partner.example"]}))
            .matches_domain("Partner.Example"));
        assert!(matcher(json!({"ends_with": ".example.COM"})).matches_domain("dev.EXAMPLE.com"));
        assert!(matcher(json!({"starts_with": "DEV."})).matches_domain("dev.example.com"));
        assert!(matcher(json!({"contains": "Ample"})).matches_domain("EXAMPLE.com"));
        assert!(!matcher(json!({"contains": "examples"})).matches_domain("example"));
        assert!(matcher(json!({"contains": ""})).matches_domain(""));
        // Only ASCII letters fold: other characters compare exactly.
        assert!(!matcher(json!("bücher.example")).matches_domain("BÜCHER.example"));
        assert!(matcher(json!("bücher.example")).matches_domain("BüCHER.example"));
        // The plain matcher stays exact.
        assert!(!matcher(json!("partner.example")).matches("PARTNER.EXAMPLE"));
    }

    #[test]
    fn emails_fold_the_domain_only() {
        let matcher = |value| string_matcher(value);
        let bob = matcher(json!("bob@partner.example"));
        assert!(bob.matches_email("bob@PARTNER.EXAMPLE"));
        assert!(bob.matches_email("bob@Partner.Example"));
        assert!(!bob.matches_email("Bob@partner.example"));
        assert!(!bob.matches_email("BOB@PARTNER.EXAMPLE"));
        assert!(matcher(json!("bob@PARTNER.example")).matches_email("bob@partner.EXAMPLE"));
        assert!(
            !matcher(json!({"not": "bob@partner.example"})).matches_email("bob@PARTNER.example")
        );
        assert!(matcher(json!({"in": ["x@y.z", "bob@partner.example"]}))
            .matches_email("bob@Partner.example"));
        let suffix = matcher(json!({"ends_with": "@partner.example"}));
        assert!(suffix.matches_email("anyone@PARTNER.EXAMPLE"));
        assert!(!suffix.matches_email("anyone@partner.example.org"));
        // The pattern's `@` must meet the address's own: a local part never folds.
        assert!(!matcher(json!({"ends_with": "B@partner.example"}))
            .matches_email("bob@partner.example"));
        assert!(matcher(json!({"starts_with": "bob@PART"})).matches_email("bob@partner.example"));
        assert!(!matcher(json!({"starts_with": "BOB"})).matches_email("bob@partner.example"));
        assert!(matcher(json!({"contains": "@PARTNER."})).matches_email("bob@partner.example"));
        // The last `@` starts the domain, as for the domain criterion.
        assert!(matcher(json!("\"a@B\"@example.com")).matches_email("\"a@B\"@EXAMPLE.COM"));
        assert!(!matcher(json!("\"a@b\"@example.com")).matches_email("\"a@B\"@example.com"));
        // No `@`: exact.
        assert!(!matcher(json!("bob")).matches_email("BOB"));
        assert!(matcher(json!("bob")).matches_email("bob"));
    }

    #[test]
    fn several_operators_must_all_hold() {
        let matcher = string_matcher(json!({"starts_with": "/api", "not": "/api/secret"}));
        assert!(matcher.matches("/api/pods"));
        assert!(!matcher.matches("/api/secret"));
        // A plain prefix, not a path segment: "/api" also covers "/apis".
        assert!(matcher.matches("/apis/apps"));
        assert!(!matcher.matches("/other"));

        let matcher =
            string_matcher(json!({"starts_with": "a", "ends_with": "z", "contains": "m"}));
        assert!(matcher.matches("amz"));
        assert!(!matcher.matches("az"));
        assert!(!matcher.matches("amy"));
        assert!(!matcher.matches("bmz"));
    }

    #[test]
    fn string_matcher_errors() {
        assert_eq!(
            string_matcher_error(json!({"iz": "a"})),
            "policy: unknown string matcher operator \"iz\""
        );
        assert_eq!(
            string_matcher_error(json!({})),
            "policy: empty string matcher: give at least one of is, not, contains, starts_with, ends_with, in"
        );
        assert_eq!(
            string_matcher_error(json!(5)),
            "policy: expected a string or a string matcher object, found a number"
        );
        assert_eq!(
            string_matcher_error(json!({"is": true})),
            "policy.is: expected a string, found a boolean"
        );
        assert_eq!(
            string_matcher_error(json!({"in": "GET"})),
            "policy.in: expected a list of strings, found a string"
        );
        assert_eq!(
            string_matcher_error(json!({"in": ["GET", 1]})),
            "policy.in[1]: expected a string, found a number"
        );
        assert_eq!(
            string_matcher_error(json!({"in": []})),
            "policy.in: empty list: \"in\" needs at least one string"
        );
    }

    #[test]
    fn checked_values_are_refused_at_their_path() {
        let no_x = |text: &str| {
            if text.contains('x') {
                Err(format!("{text:?} has an x"))
            } else {
                Ok(())
            }
        };
        let root = JsonPath::root();
        let error = StringMatcher::parse_checked(&json!({"in": ["a", "x"]}), &root, no_x)
            .expect_err("x refused");
        assert_eq!(error.to_string(), "policy.in[1]: \"x\" has an x");
        let error = StringMatcher::parse_checked(&json!("x"), &root, no_x).expect_err("x refused");
        assert_eq!(error.to_string(), "policy: \"x\" has an x");
        assert!(StringMatcher::parse_checked(&json!({"is": "a"}), &root, no_x).is_ok());
    }

    #[test]
    fn list_bare_value_means_has() {
        let matcher = groups_matcher(json!("admins"));
        assert!(groups_match(&matcher, &["devs", "admins"]));
        assert!(!groups_match(&matcher, &["devs"]));
        assert!(!groups_match(&matcher, &[]));
    }

    #[test]
    fn list_has() {
        let matcher = groups_matcher(json!({"has": "admins"}));
        assert!(groups_match(&matcher, &["admins"]));
        assert!(groups_match(&matcher, &["a", "admins", "b"]));
        assert!(!groups_match(&matcher, &["admin"]));
        assert!(!groups_match(&matcher, &[]));
    }

    #[test]
    fn list_is_means_exactly_that_one_element() {
        let matcher = groups_matcher(json!({"is": "admins"}));
        assert!(groups_match(&matcher, &["admins"]));
        assert!(!groups_match(&matcher, &["admins", "devs"]));
        assert!(!groups_match(&matcher, &["devs"]));
        assert!(!groups_match(&matcher, &[]));
    }

    #[test]
    fn list_exclude() {
        let matcher = groups_matcher(json!({"exclude": "contractors"}));
        assert!(groups_match(&matcher, &["devs"]));
        assert!(groups_match(&matcher, &[]));
        assert!(!groups_match(&matcher, &["devs", "contractors"]));
    }

    #[test]
    fn list_several_operators_must_all_hold() {
        let matcher = groups_matcher(json!({"has": "devs", "exclude": "contractors"}));
        assert!(groups_match(&matcher, &["devs"]));
        assert!(!groups_match(&matcher, &["devs", "contractors"]));
        assert!(!groups_match(&matcher, &["ops"]));
    }

    #[test]
    fn list_matcher_errors() {
        assert_eq!(
            groups_matcher_error(json!({"contains": "a"})),
            "policy: unknown string list matcher operator \"contains\""
        );
        assert_eq!(
            groups_matcher_error(json!({})),
            "policy: empty string list matcher: give at least one of has, is, exclude"
        );
        assert_eq!(
            groups_matcher_error(json!(["a"])),
            "policy: expected a string or a string list matcher object, found a list"
        );
        assert_eq!(
            groups_matcher_error(json!({"has": 1})),
            "policy.has: expected a string, found a number"
        );
    }
}
