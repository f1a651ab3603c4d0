//! PPL criteria: one-key objects such as `{"domain": {"is": "example.com"}}`.
//!
//! Each criterion is a variant with its own parse and its own test; to add one
//! (`kubernetes_verb`, `source_ip`, `day_of_week`, ...), add a variant, a name in
//! [`CRITERION_NAMES`], an arm in `data_parser` and one in
//! [`Criterion::matches`], and the fact it needs to `Facts`.

use super::claim::{claim_values, ClaimPath, ClaimScalar};
use super::error::{json_kind, JsonPath};
use super::matchers::{string_element, ListMatcher, StringMatcher};
use super::{Facts, PolicyError};
use serde_json::{Map, Value};

/// The criteria kubegate knows, for the "unknown criterion" message.
const CRITERION_NAMES: &str = "accept, reject, authenticated_user, domain, email, user, \
     groups, claim/NAME, http_method, http_path";

#[derive(Debug, Clone)]
pub(crate) enum Criterion {
    /// Always true.
    Accept,
    /// Always false.
    Reject,
    /// True when there is a session.
    AuthenticatedUser,
    /// The email's domain (see `Facts::email_domain`).
    Domain(StringMatcher),
    Email(StringMatcher),
    /// The user id, `sub`.
    User(StringMatcher),
    Groups(ListMatcher<Box<str>>),
    Claim {
        path: ClaimPath,
        matcher: ListMatcher<ClaimScalar>,
    },
    HttpMethod(StringMatcher),
    HttpPath(StringMatcher),
}

/// Parses a criterion's value (everything after its name).
type ParseData = fn(&Value, &JsonPath<'_>) -> Result<Criterion, PolicyError>;

impl Criterion {
    /// Parses one criterion object; `path` is the object's own location.
    pub(crate) fn parse(value: &Value, path: &JsonPath<'_>) -> Result<Self, PolicyError> {
        let object = value
            .as_object()
            .ok_or_else(|| path.wrong_type("a criterion object", value))?;
        let (key, data) = only_entry(object).ok_or_else(|| {
            path.error(format!(
                "a criterion is an object with exactly one key, found {}",
                object.len()
            ))
        })?;
        let data_path = path.key(key);
        // Pomerium splits the key at the first `/` into name and sub-path
        // (pkg/policy/parser); only `claim` takes a sub-path.
        let (name, sub_path) = match key.split_once('/') {
            Some((name, sub_path)) => (name, Some(sub_path)),
            None => (key.as_str(), None),
        };
        if name == "claim" {
            let claim = sub_path
                .and_then(ClaimPath::parse)
                .ok_or_else(|| path.error("\"claim\" needs a claim name: \"claim/NAME\""))?;
            let matcher = ListMatcher::parse(
                data,
                &data_path,
                ClaimScalar::EXPECTED,
                ClaimScalar::from_json,
            )?;
            return Ok(Criterion::Claim {
                path: claim,
                matcher,
            });
        }
        let parse_data = data_parser(name).ok_or_else(|| {
            path.error(format!(
                "unknown criterion {key:?} (known: {CRITERION_NAMES})"
            ))
        })?;
        if sub_path.is_some() {
            return Err(path.error(format!(
                "criterion {name:?} takes no sub-path, found {key:?}"
            )));
        }
        parse_data(data, &data_path)
    }

    /// Whether the criterion holds for these facts. Allocates nothing.
    pub(crate) fn matches(&self, facts: &Facts<'_>) -> bool {
        match self {
            Criterion::Accept => true,
            Criterion::Reject => false,
            Criterion::AuthenticatedUser => facts.session().is_some(),
            Criterion::Domain(matcher) => session_string(facts, facts.email_domain(), matcher),
            Criterion::Email(matcher) => session_string(facts, facts.email, matcher),
            Criterion::User(matcher) => session_string(facts, facts.user_id, matcher),
            Criterion::Groups(matcher) => {
                facts.session().is_some()
                    && matcher.matches(facts.groups, |expected, group| **expected == **group)
            }
            Criterion::Claim { path, matcher } => facts.session().is_some_and(|claims| {
                matcher.matches(claim_values(path.lookup(claims)), ClaimScalar::equals)
            }),
            Criterion::HttpMethod(matcher) => matcher.matches(facts.method),
            Criterion::HttpPath(matcher) => matcher.matches(facts.path),
        }
    }
}

fn data_parser(name: &str) -> Option<ParseData> {
    let parse: ParseData = match name {
        "accept" => |data, path| expect_true(data, path).map(|()| Criterion::Accept),
        "reject" => |data, path| expect_true(data, path).map(|()| Criterion::Reject),
        "authenticated_user" => {
            |data, path| expect_true(data, path).map(|()| Criterion::AuthenticatedUser)
        }
        "domain" => |data, path| StringMatcher::parse(data, path).map(Criterion::Domain),
        "email" => |data, path| StringMatcher::parse(data, path).map(Criterion::Email),
        "user" => |data, path| StringMatcher::parse(data, path).map(Criterion::User),
        "groups" => |data, path| {
            ListMatcher::parse(data, path, "a string", string_element).map(Criterion::Groups)
        },
        "http_method" => |data, path| {
            StringMatcher::parse_checked(data, path, http_method_spelling)
                .map(Criterion::HttpMethod)
        },
        "http_path" => |data, path| StringMatcher::parse(data, path).map(Criterion::HttpPath),
        _ => return None,
    };
    Some(parse)
}

/// Pomerium ignores the value of `accept`, `reject` and `authenticated_user`,
/// so `accept: false` would still accept. Whoever writes false means something
/// else: refuse it.
fn expect_true(data: &Value, path: &JsonPath<'_>) -> Result<(), PolicyError> {
    if data == &Value::Bool(true) {
        Ok(())
    } else {
        Err(path.error(format!(
            "expected true, found {}; to switch the criterion off, remove it",
            json_kind(data)
        )))
    }
}

fn only_entry(object: &Map<String, Value>) -> Option<(&String, &Value)> {
    let mut entries = object.iter();
    match (entries.next(), entries.next()) {
        (Some(entry), None) => Some(entry),
        _ => None,
    }
}

/// A session criterion on a single string: false without a session, and false
/// when the session lacks the attribute (even for `not`), so a token without an
/// email never passes an email rule by accident.
fn session_string(facts: &Facts<'_>, subject: Option<&str>, matcher: &StringMatcher) -> bool {
    facts.session().is_some() && subject.is_some_and(|subject| matcher.matches(subject))
}

/// HTTP methods are case-sensitive (RFC 9110 section 9.1) and compared as
/// received, so a lower-case method in the config could never match the
/// upper-case methods clients send: refuse it instead of running a dead rule.
/// Likewise anything that is not an HTTP token (RFC 9110 section 5.6.2).
fn http_method_spelling(method: &str) -> Result<(), String> {
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        Err(format!("{method:?} is not an HTTP method"))
    } else if method.bytes().any(|byte| byte.is_ascii_lowercase()) {
        Err(format!(
            "HTTP methods are case-sensitive: write {:?}, not {method:?}",
            method.to_ascii_uppercase()
        ))
    } else {
        Ok(())
    }
}

fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::policy::test_support::{claims, groups_of};
    use crate::Claims;
    use serde_json::json;

    fn criterion(value: Value) -> Criterion {
        Criterion::parse(&value, &JsonPath::root()).expect("valid criterion")
    }

    fn error(value: Value) -> String {
        Criterion::parse(&value, &JsonPath::root())
            .expect_err("invalid criterion")
            .to_string()
    }

    /// A session with the usual claims, evaluated with `check`.
    fn with_session(session: Value, check: impl FnOnce(Facts<'_>)) {
        let session: Claims = claims(session);
        let groups = groups_of(&session);
        check(Facts {
            claims: Some(&session),
            user_id: session.get("sub").and_then(Value::as_str),
            email: session.get("email").and_then(Value::as_str),
            groups: &groups,
            method: "GET",
            path: "/api/v1/namespaces/default/pods",
        });
    }

    fn alice() -> Value {
        json!({
            "sub": "user-1",
            "email": "alice@example.com",
            "groups": ["devs", "admins"],
            "department": "eng",
            "level": 3,
            "verified": true,
            "teams": ["blue", "red"],
            "realm_access": {"roles": ["operator"]},
        })
    }

    fn no_session() -> Facts<'static> {
        Facts {
            method: "GET",
            path: "/api",
            ..Facts::default()
        }
    }

    fn holds_for_alice(value: Value) -> bool {
        let criterion = criterion(value);
        let mut result = None;
        with_session(alice(), |facts| result = Some(criterion.matches(&facts)));
        result.expect("evaluated")
    }

    #[test]
    fn accept_always_holds() {
        let accept = criterion(json!({"accept": true}));
        assert!(accept.matches(&no_session()));
        assert!(holds_for_alice(json!({"accept": true})));
    }

    #[test]
    fn reject_never_holds() {
        let reject = criterion(json!({"reject": true}));
        assert!(!reject.matches(&no_session()));
        assert!(!holds_for_alice(json!({"reject": true})));
    }

    #[test]
    fn authenticated_user_needs_a_session() {
        let authenticated = criterion(json!({"authenticated_user": true}));
        assert!(!authenticated.matches(&no_session()));
        assert!(holds_for_alice(json!({"authenticated_user": true})));
        // Any session counts, even one without the usual claims.
        with_session(json!({}), |facts| assert!(authenticated.matches(&facts)));
    }

    #[test]
    fn flags_must_be_true() {
        assert_eq!(
            error(json!({"accept": false})),
            "policy.accept: expected true, found a boolean; to switch the criterion off, remove it"
        );
        assert_eq!(
            error(json!({"reject": "yes"})),
            "policy.reject: expected true, found a string; to switch the criterion off, remove it"
        );
        assert_eq!(
            error(json!({"authenticated_user": {}})),
            "policy.authenticated_user: expected true, found an object; to switch the criterion off, remove it"
        );
    }

    #[test]
    fn domain() {
        assert!(holds_for_alice(json!({"domain": "example.com"})));
        assert!(holds_for_alice(
            json!({"domain": {"ends_with": "example.com"}})
        ));
        assert!(!holds_for_alice(json!({"domain": "example.org"})));
        assert!(!holds_for_alice(json!({"domain": "alice@example.com"})));
        assert!(!criterion(json!({"domain": {"not": "x"}})).matches(&no_session()));
    }

    #[test]
    fn domain_without_email_is_false() {
        let domain = criterion(json!({"domain": {"not": "example.org"}}));
        with_session(
            json!({"sub": "u"}),
            |facts| assert!(!domain.matches(&facts)),
        );
        with_session(json!({"email": "not-an-address"}), |facts| {
            assert!(!domain.matches(&facts))
        });
    }

    #[test]
    fn email() {
        assert!(holds_for_alice(json!({"email": "alice@example.com"})));
        assert!(holds_for_alice(
            json!({"email": {"in": ["bob@example.com", "alice@example.com"]}})
        ));
        assert!(!holds_for_alice(json!({"email": "bob@example.com"})));
        assert!(!criterion(json!({"email": {"not": "x"}})).matches(&no_session()));
        let not_bob = criterion(json!({"email": {"not": "bob@example.com"}}));
        with_session(json!({"sub": "u"}), |facts| {
            assert!(!not_bob.matches(&facts))
        });
    }

    #[test]
    fn user_is_the_subject() {
        assert!(holds_for_alice(json!({"user": "user-1"})));
        assert!(!holds_for_alice(json!({"user": "alice@example.com"})));
        assert!(!holds_for_alice(json!({"user": {"starts_with": "admin-"}})));
        assert!(!criterion(json!({"user": {"not": "x"}})).matches(&no_session()));
    }

    #[test]
    fn groups() {
        assert!(holds_for_alice(json!({"groups": "admins"})));
        assert!(holds_for_alice(json!({"groups": {"has": "devs"}})));
        assert!(!holds_for_alice(json!({"groups": "ops"})));
        assert!(!holds_for_alice(json!({"groups": {"is": "admins"}})));
        assert!(holds_for_alice(
            json!({"groups": {"exclude": "contractors"}})
        ));
        assert!(!holds_for_alice(json!({"groups": {"exclude": "devs"}})));
        let only_admins = criterion(json!({"groups": {"is": "admins"}}));
        with_session(json!({"groups": ["admins"]}), |facts| {
            assert!(only_admins.matches(&facts))
        });
    }

    #[test]
    fn groups_without_session_is_false_even_for_exclude() {
        assert!(!criterion(json!({"groups": {"exclude": "x"}})).matches(&no_session()));
    }

    #[test]
    fn groups_absent_is_an_empty_list() {
        let exclude = criterion(json!({"groups": {"exclude": "x"}}));
        let has = criterion(json!({"groups": "x"}));
        with_session(json!({"sub": "u"}), |facts| {
            assert!(exclude.matches(&facts));
            assert!(!has.matches(&facts));
        });
    }

    #[test]
    fn claim_string() {
        assert!(holds_for_alice(json!({"claim/department": "eng"})));
        assert!(holds_for_alice(json!({"claim/department": {"is": "eng"}})));
        assert!(!holds_for_alice(json!({"claim/department": "sales"})));
        assert!(!holds_for_alice(
            json!({"claim/department": {"exclude": "eng"}})
        ));
    }

    #[test]
    fn claim_number() {
        assert!(holds_for_alice(json!({"claim/level": 3})));
        assert!(holds_for_alice(json!({"claim/level": 3.0})));
        assert!(!holds_for_alice(json!({"claim/level": 4})));
        assert!(!holds_for_alice(json!({"claim/level": "3"})));
    }

    #[test]
    fn claim_bool() {
        assert!(holds_for_alice(json!({"claim/verified": true})));
        assert!(!holds_for_alice(json!({"claim/verified": false})));
        assert!(!holds_for_alice(json!({"claim/verified": "true"})));
    }

    #[test]
    fn claim_list_matches_any_element() {
        assert!(holds_for_alice(json!({"claim/teams": "red"})));
        assert!(holds_for_alice(json!({"claim/teams": {"has": "blue"}})));
        assert!(!holds_for_alice(json!({"claim/teams": "green"})));
        assert!(!holds_for_alice(json!({"claim/teams": {"is": "red"}})));
        assert!(holds_for_alice(
            json!({"claim/teams": {"exclude": "green"}})
        ));
        assert!(!holds_for_alice(json!({"claim/teams": {"exclude": "red"}})));
    }

    #[test]
    fn claim_nested_path() {
        assert!(holds_for_alice(
            json!({"claim/realm_access/roles": "operator"})
        ));
        assert!(holds_for_alice(
            json!({"claim/realm_access.roles": "operator"})
        ));
        assert!(!holds_for_alice(
            json!({"claim/realm_access/roles": "admin"})
        ));
    }

    #[test]
    fn claim_missing_is_an_empty_list() {
        assert!(!holds_for_alice(json!({"claim/missing": "x"})));
        assert!(!holds_for_alice(json!({"claim/missing": {"is": "x"}})));
        assert!(holds_for_alice(json!({"claim/missing": {"exclude": "x"}})));
    }

    #[test]
    fn claim_without_session_is_false() {
        assert!(!criterion(json!({"claim/department": "eng"})).matches(&no_session()));
        assert!(!criterion(json!({"claim/x": {"exclude": "y"}})).matches(&no_session()));
    }

    #[test]
    fn claim_errors() {
        assert_eq!(
            error(json!({"claim": "eng"})),
            "policy: \"claim\" needs a claim name: \"claim/NAME\""
        );
        assert_eq!(
            error(json!({"claim/": "eng"})),
            "policy: \"claim\" needs a claim name: \"claim/NAME\""
        );
        assert_eq!(
            error(json!({"claim/teams": ["red"]})),
            "policy.claim/teams: expected a string, number or boolean or a string list matcher object, found a list"
        );
        assert_eq!(
            error(json!({"claim/teams": null})),
            "policy.claim/teams: expected a string, number or boolean or a string list matcher object, found null"
        );
        assert_eq!(
            error(json!({"claim/teams": {"has": {}}})),
            "policy.claim/teams.has: expected a string, number or boolean, found an object"
        );
        assert_eq!(
            error(json!({"claim/teams": {"starts_with": "r"}})),
            "policy.claim/teams: unknown string list matcher operator \"starts_with\""
        );
    }

    #[test]
    fn http_method_is_case_sensitive() {
        let get = criterion(json!({"http_method": "GET"}));
        assert!(get.matches(&no_session()));
        let post = Facts {
            method: "POST",
            ..no_session()
        };
        assert!(!get.matches(&post));
        let lower = Facts {
            method: "get",
            ..no_session()
        };
        assert!(!get.matches(&lower));
        let writes = criterion(json!({"http_method": {"in": ["POST", "PUT", "PATCH", "DELETE"]}}));
        assert!(writes.matches(&post));
        assert!(!writes.matches(&no_session()));
    }

    #[test]
    fn http_method_refuses_lower_case_config() {
        assert_eq!(
            error(json!({"http_method": "get"})),
            "policy.http_method: HTTP methods are case-sensitive: write \"GET\", not \"get\""
        );
        assert_eq!(
            error(json!({"http_method": {"in": ["GET", "Post"]}})),
            "policy.http_method.in[1]: HTTP methods are case-sensitive: write \"POST\", not \"Post\""
        );
    }

    #[test]
    fn http_method_refuses_non_tokens() {
        assert_eq!(
            error(json!({"http_method": ""})),
            "policy.http_method: \"\" is not an HTTP method"
        );
        assert_eq!(
            error(json!({"http_method": {"not": "GET POST"}})),
            "policy.http_method.not: \"GET POST\" is not an HTTP method"
        );
        assert_eq!(
            error(json!({"http_method": "ǅ"})),
            "policy.http_method: \"ǅ\" is not an HTTP method"
        );
        assert!(Criterion::parse(&json!({"http_method": "M-SEARCH"}), &JsonPath::root()).is_ok());
    }

    #[test]
    fn http_path() {
        let pods = criterion(json!({"http_path": {"starts_with": "/api/v1/namespaces/default/"}}));
        let facts = no_session();
        assert!(!pods.matches(&facts));
        let in_default = Facts {
            path: "/api/v1/namespaces/default/pods",
            ..facts
        };
        assert!(pods.matches(&in_default));
        assert!(criterion(json!({"http_path": "/api"})).matches(&facts));
        assert!(!criterion(json!({"http_path": "/apis"})).matches(&facts));
    }

    #[test]
    fn request_criteria_need_no_session() {
        assert!(criterion(json!({"http_path": "/api"})).matches(&no_session()));
        assert!(criterion(json!({"http_method": "GET"})).matches(&no_session()));
    }

    #[test]
    fn criterion_shape_errors() {
        assert_eq!(
            error(json!({"domian": "example.com"})),
            "policy: unknown criterion \"domian\" (known: accept, reject, authenticated_user, \
             domain, email, user, groups, claim/NAME, http_method, http_path)"
        );
        assert_eq!(
            error(json!({"domain": "a", "email": "b"})),
            "policy: a criterion is an object with exactly one key, found 2"
        );
        assert_eq!(
            error(json!({})),
            "policy: a criterion is an object with exactly one key, found 0"
        );
        assert_eq!(
            error(json!("domain")),
            "policy: expected a criterion object, found a string"
        );
        assert_eq!(
            error(json!({"domain/sub": "a"})),
            "policy: criterion \"domain\" takes no sub-path, found \"domain/sub\""
        );
        assert_eq!(
            error(json!({"email/x": {"iz": 1}})),
            "policy: criterion \"email\" takes no sub-path, found \"email/x\""
        );
        assert_eq!(
            error(json!({"source_ip": "10.0.0.0/8"})),
            "policy: unknown criterion \"source_ip\" (known: accept, reject, authenticated_user, \
             domain, email, user, groups, claim/NAME, http_method, http_path)"
        );
        assert_eq!(
            error(json!({"domain": {"iz": "a"}})),
            "policy.domain: unknown string matcher operator \"iz\""
        );
        assert_eq!(
            error(json!({"email": 7})),
            "policy.email: expected a string or a string matcher object, found a number"
        );
        assert_eq!(
            error(json!({"groups": {"contains": "a"}})),
            "policy.groups: unknown string list matcher operator \"contains\""
        );
    }
}
