//! PPL criteria: one-key objects such as `{"domain": {"is": "example.com"}}`.
//!
//! Each criterion is a variant with its own parse and its own test; to add one, add a
//! variant, a name in [`CRITERION_NAMES`], an arm in `data_parser`, in
//! [`Criterion::holds`], [`Criterion::name`] and [`Criterion::needs_context`], and the fact
//! it needs to `Facts` (the session, the HTTP request line) or `RequestContext` (the
//! Kubernetes request, the client address, the clock).

use super::claim::{claim_values, ClaimPath, ClaimScalar};
use super::error::{json_kind, JsonPath};
use super::exec_class;
use super::kubernetes::{self, Field};
use super::matchers::{string_element, ListMatcher, StringMatcher};
use super::source_ip::SourceIpMatcher;
use super::time::{DateMatcher, DayOfWeekMatcher, TimeOfDayMatcher};
use super::{Facts, PolicyError, RequestContext};
use serde_json::{Map, Value};

/// The criteria kubegate knows, for the "unknown criterion" message.
const CRITERION_NAMES: &str = "accept, reject, authenticated_user, domain, email, user, \
     groups, claim/NAME, http_method, http_path, source_ip, date, day_of_week, time_of_day, \
     kubernetes_verb, kubernetes_resource, kubernetes_subresource, kubernetes_namespace, \
     kubernetes_api_group, kubernetes_name, kubernetes_resource_request, \
     kubernetes_non_resource_path, kubernetes_exec_class";

#[derive(Debug, Clone)]
pub(crate) enum Criterion {
    /// Always true.
    Accept,
    /// Always false.
    Reject,
    /// True when there is a session.
    AuthenticatedUser,
    /// The email's domain (see `Facts::email_domain`), compared ignoring ASCII case.
    Domain(StringMatcher),
    /// The email: the local part exactly, the domain ignoring ASCII case.
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
    /// The client address (`RequestContext::source_ip`) is in one of the ranges.
    SourceIp(SourceIpMatcher),
    Date(DateMatcher),
    DayOfWeek(DayOfWeekMatcher),
    TimeOfDay(TimeOfDayMatcher),
    /// A field of the resolved Kubernetes request (see `kubernetes`).
    Kubernetes {
        field: Field,
        matcher: StringMatcher,
    },
    /// Whether the resolved request is a resource request (`true`) or not (`false`).
    KubernetesResourceRequest(bool),
    /// Whether the request can run a command in a container or reach a backend of the
    /// client's choosing (`true`), or not (`false`); see `exec_class`.
    KubernetesExecClass(bool),
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
    pub(crate) fn holds(&self, facts: &Facts<'_>, context: &RequestContext<'_>) -> bool {
        match self {
            Criterion::Accept => true,
            Criterion::Reject => false,
            Criterion::AuthenticatedUser => facts.session().is_some(),
            Criterion::Domain(matcher) => session_string(facts, facts.email_domain(), |domain| {
                matcher.matches_domain(domain)
            }),
            Criterion::Email(matcher) => {
                session_string(facts, facts.email, |email| matcher.matches_email(email))
            }
            Criterion::User(matcher) => {
                session_string(facts, facts.user_id, |user| matcher.matches(user))
            }
            Criterion::Groups(matcher) => {
                facts.session().is_some()
                    && matcher.matches(facts.groups, |expected, group| **expected == **group)
            }
            Criterion::Claim { path, matcher } => facts.session().is_some_and(|claims| {
                matcher.matches(claim_values(path.lookup(claims)), ClaimScalar::equals)
            }),
            Criterion::HttpMethod(matcher) => matcher.matches(facts.method),
            Criterion::HttpPath(matcher) => matcher.matches(facts.path),
            Criterion::SourceIp(matcher) => matcher.matches(context.source_ip),
            Criterion::Date(matcher) => matcher.matches(context.now_unix_seconds),
            Criterion::DayOfWeek(matcher) => matcher.matches(context.now_unix_seconds),
            Criterion::TimeOfDay(matcher) => matcher.matches(context.now_unix_seconds),
            Criterion::Kubernetes { field, matcher } => context
                .kubernetes
                .and_then(|info| field.of(info))
                .is_some_and(|value| matcher.matches(value)),
            Criterion::KubernetesResourceRequest(wanted) => context
                .kubernetes
                .is_some_and(|info| info.is_resource_request == *wanted),
            Criterion::KubernetesExecClass(wanted) => exec_class::of(context) == Some(*wanted),
        }
    }

    /// The criterion's name as the policy spells it (`claim` for every `claim/NAME`), for
    /// the reason a deny rule gives.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Criterion::Accept => "accept",
            Criterion::Reject => "reject",
            Criterion::AuthenticatedUser => "authenticated_user",
            Criterion::Domain(_) => "domain",
            Criterion::Email(_) => "email",
            Criterion::User(_) => "user",
            Criterion::Groups(_) => "groups",
            Criterion::Claim { .. } => "claim",
            Criterion::HttpMethod(_) => "http_method",
            Criterion::HttpPath(_) => "http_path",
            Criterion::SourceIp(_) => "source_ip",
            Criterion::Date(_) => "date",
            Criterion::DayOfWeek(_) => "day_of_week",
            Criterion::TimeOfDay(_) => "time_of_day",
            Criterion::Kubernetes { field, .. } => field.name(),
            Criterion::KubernetesResourceRequest(_) => "kubernetes_resource_request",
            Criterion::KubernetesExecClass(_) => exec_class::NAME,
        }
    }

    /// Whether the criterion reads the `RequestContext`.
    pub(crate) fn needs_context(&self) -> bool {
        match self {
            Criterion::Accept
            | Criterion::Reject
            | Criterion::AuthenticatedUser
            | Criterion::Domain(_)
            | Criterion::Email(_)
            | Criterion::User(_)
            | Criterion::Groups(_)
            | Criterion::Claim { .. }
            | Criterion::HttpMethod(_)
            | Criterion::HttpPath(_) => false,
            Criterion::SourceIp(_)
            | Criterion::Date(_)
            | Criterion::DayOfWeek(_)
            | Criterion::TimeOfDay(_)
            | Criterion::Kubernetes { .. }
            | Criterion::KubernetesResourceRequest(_)
            | Criterion::KubernetesExecClass(_) => true,
        }
    }

    /// Whether the criterion reads the resolved Kubernetes request.
    pub(crate) fn reads_kubernetes(&self) -> bool {
        matches!(
            self,
            Criterion::Kubernetes { .. }
                | Criterion::KubernetesResourceRequest(_)
                | Criterion::KubernetesExecClass(_)
        )
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
        "source_ip" => |data, path| SourceIpMatcher::parse(data, path).map(Criterion::SourceIp),
        "date" => |data, path| DateMatcher::parse(data, path).map(Criterion::Date),
        "day_of_week" => |data, path| DayOfWeekMatcher::parse(data, path).map(Criterion::DayOfWeek),
        "time_of_day" => |data, path| TimeOfDayMatcher::parse(data, path).map(Criterion::TimeOfDay),
        "kubernetes_verb" => |data, path| kubernetes_criterion(Field::Verb, data, path),
        "kubernetes_resource" => |data, path| kubernetes_criterion(Field::Resource, data, path),
        "kubernetes_subresource" => {
            |data, path| kubernetes_criterion(Field::Subresource, data, path)
        }
        "kubernetes_namespace" => |data, path| kubernetes_criterion(Field::Namespace, data, path),
        "kubernetes_api_group" => |data, path| kubernetes_criterion(Field::ApiGroup, data, path),
        "kubernetes_name" => |data, path| kubernetes_criterion(Field::Name, data, path),
        "kubernetes_non_resource_path" => {
            |data, path| kubernetes_criterion(Field::NonResourcePath, data, path)
        }
        "kubernetes_resource_request" => |data, path| {
            kubernetes::parse_resource_request(data, path).map(Criterion::KubernetesResourceRequest)
        },
        exec_class::NAME => {
            |data, path| exec_class::parse(data, path).map(Criterion::KubernetesExecClass)
        }
        _ => return None,
    };
    Some(parse)
}

fn kubernetes_criterion(
    field: Field,
    data: &Value,
    path: &JsonPath<'_>,
) -> Result<Criterion, PolicyError> {
    let matcher = field.parse_matcher(data, path)?;
    Ok(Criterion::Kubernetes { field, matcher })
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
fn session_string(
    facts: &Facts<'_>,
    subject: Option<&str>,
    matches: impl FnOnce(&str) -> bool,
) -> bool {
    facts.session().is_some() && subject.is_some_and(matches)
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
    use crate::request_info::{resolve, RequestInfo};
    use crate::Claims;
    use serde_json::json;
    use std::net::IpAddr;

    impl Criterion {
        /// The session and HTTP criteria, which read no request context.
        fn matches(&self, facts: &Facts<'_>) -> bool {
            self.holds(facts, &RequestContext::ABSENT)
        }

        /// Any criterion against a request context alone (no session).
        fn holds_in(&self, context: &RequestContext<'_>) -> bool {
            self.holds(&no_session(), context)
        }
    }

    const KNOWN: &str = "accept, reject, authenticated_user, domain, email, user, groups, \
         claim/NAME, http_method, http_path, source_ip, date, day_of_week, time_of_day, \
         kubernetes_verb, kubernetes_resource, kubernetes_subresource, kubernetes_namespace, \
         kubernetes_api_group, kubernetes_name, kubernetes_resource_request, \
         kubernetes_non_resource_path, kubernetes_exec_class";

    /// 2024-03-04T00:00:00Z, a Monday.
    const MONDAY: u64 = 1_709_510_400;

    fn request(method: &str, target: &str) -> RequestInfo {
        resolve(method, target).expect("resolvable request")
    }

    fn resolved(info: &RequestInfo) -> RequestContext<'_> {
        RequestContext {
            kubernetes: Some(info),
            protocol_upgrade: false,
            source_ip: None,
            now_unix_seconds: MONDAY,
        }
    }

    fn from_ip(ip: &str) -> RequestContext<'static> {
        RequestContext {
            kubernetes: None,
            protocol_upgrade: false,
            source_ip: Some(ip.parse::<IpAddr>().expect("test address")),
            now_unix_seconds: MONDAY,
        }
    }

    fn at(now_unix_seconds: u64) -> RequestContext<'static> {
        RequestContext {
            kubernetes: None,
            protocol_upgrade: false,
            source_ip: None,
            now_unix_seconds,
        }
    }

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
    fn domain_and_email_domain_ignore_case() {
        let deny_partner = criterion(json!({"domain": "partner.example"}));
        let bob = criterion(json!({"email": "bob@partner.example"}));
        for email in [
            "bob@PARTNER.EXAMPLE",
            "bob@Partner.Example",
            "bob@partner.example",
        ] {
            with_session(json!({"sub": "u", "email": email}), |facts| {
                assert!(deny_partner.matches(&facts), "{email}");
                assert!(bob.matches(&facts), "{email}");
            });
        }
        with_session(
            json!({"sub": "u", "email": "BOB@partner.example"}),
            |facts| {
                assert!(deny_partner.matches(&facts));
                assert!(!bob.matches(&facts), "the local part stays exact");
            },
        );
        assert!(holds_for_alice(json!({"domain": "EXAMPLE.COM"})));
        assert!(!holds_for_alice(json!({"domain": {"not": "Example.com"}})));
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
            format!("policy: unknown criterion \"domian\" (known: {KNOWN})")
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
            error(json!({"kubernetes_verbs": "get"})),
            format!("policy: unknown criterion \"kubernetes_verbs\" (known: {KNOWN})")
        );
        assert_eq!(
            error(json!({"kubernetes": "get"})),
            format!("policy: unknown criterion \"kubernetes\" (known: {KNOWN})")
        );
        assert_eq!(
            error(json!({"kubernetes_verb/x": "get"})),
            "policy: criterion \"kubernetes_verb\" takes no sub-path, found \"kubernetes_verb/x\""
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

    #[test]
    fn every_known_name_parses() {
        for (value, name) in [
            (json!({"source_ip": "10.0.0.0/8"}), "source_ip"),
            (json!({"date": {"after": "2024-01-01T00:00:00Z"}}), "date"),
            (json!({"day_of_week": "mon-fri"}), "day_of_week"),
            (
                json!({"time_of_day": {"timezone": "UTC", "after": "9:00"}}),
                "time_of_day",
            ),
            (json!({"kubernetes_verb": "get"}), "kubernetes_verb"),
            (
                json!({"kubernetes_resource": "pods"}),
                "kubernetes_resource",
            ),
            (
                json!({"kubernetes_subresource": "exec"}),
                "kubernetes_subresource",
            ),
            (
                json!({"kubernetes_namespace": "default"}),
                "kubernetes_namespace",
            ),
            (json!({"kubernetes_api_group": ""}), "kubernetes_api_group"),
            (json!({"kubernetes_name": "web-0"}), "kubernetes_name"),
            (
                json!({"kubernetes_resource_request": true}),
                "kubernetes_resource_request",
            ),
            (
                json!({"kubernetes_non_resource_path": "/version"}),
                "kubernetes_non_resource_path",
            ),
            (
                json!({"kubernetes_exec_class": true}),
                "kubernetes_exec_class",
            ),
            (json!({"claim/a/b": "x"}), "claim"),
            (json!({"http_method": "GET"}), "http_method"),
        ] {
            let parsed = criterion(value);
            assert_eq!(parsed.name(), name);
            assert!(KNOWN.contains(name));
            let reads_context = !matches!(name, "claim" | "http_method");
            assert_eq!(parsed.needs_context(), reads_context, "{name}");
        }
    }

    #[test]
    fn kubernetes_verb_is_the_policy_verb() {
        let create = criterion(json!({"kubernetes_verb": "create"}));
        // Both attempts of kubectl exec: the WebSocket GET and the SPDY POST.
        let websocket = request(
            "GET",
            "/api/v1/namespaces/default/pods/web-0/exec?command=sh",
        );
        let spdy = request(
            "POST",
            "/api/v1/namespaces/default/pods/web-0/exec?command=sh",
        );
        assert!(create.holds_in(&resolved(&websocket)));
        assert!(create.holds_in(&resolved(&spdy)));
        let reads = criterion(json!({"kubernetes_verb": {"in": ["get", "list", "watch"]}}));
        assert!(!reads.holds_in(&resolved(&websocket)));
        let list = request("GET", "/api/v1/namespaces/default/pods?limit=500");
        assert!(reads.holds_in(&resolved(&list)));
        assert!(!create.holds_in(&resolved(&list)));
        let delete_all = request("DELETE", "/api/v1/namespaces/default/pods");
        assert!(criterion(json!({"kubernetes_verb": "deletecollection"}))
            .holds_in(&resolved(&delete_all)));
        assert!(!criterion(json!({"kubernetes_verb": "delete"})).holds_in(&resolved(&delete_all)));
        // Non-resource requests: the method in lower case.
        let version = request("GET", "/version");
        assert!(criterion(json!({"kubernetes_verb": "get"})).holds_in(&resolved(&version)));
        let post = request("POST", "/healthz");
        assert!(criterion(json!({"kubernetes_verb": "post"})).holds_in(&resolved(&post)));
        assert!(!criterion(json!({"kubernetes_verb": "create"})).holds_in(&resolved(&post)));
    }

    #[test]
    fn kubernetes_resource_fields() {
        let secret = request("GET", "/api/v1/namespaces/team-a/secrets/db-password");
        let context = resolved(&secret);
        let holds = |value: Value| criterion(value).holds_in(&context);
        assert!(holds(json!({"kubernetes_resource": "secrets"})));
        assert!(!holds(json!({"kubernetes_resource": "configmaps"})));
        assert!(holds(json!({"kubernetes_resource": {"not": "configmaps"}})));
        assert!(holds(json!({"kubernetes_subresource": ""})));
        assert!(!holds(json!({"kubernetes_subresource": "status"})));
        assert!(holds(
            json!({"kubernetes_namespace": {"starts_with": "team-"}})
        ));
        assert!(!holds(json!({"kubernetes_namespace": ""})));
        assert!(holds(json!({"kubernetes_api_group": ""})));
        assert!(holds(json!({"kubernetes_api_group": {"is": ""}})));
        assert!(!holds(json!({"kubernetes_api_group": "apps"})));
        assert!(holds(json!({"kubernetes_name": "db-password"})));
        assert!(!holds(json!({"kubernetes_name": {"contains": "token"}})));
        assert!(holds(json!({"kubernetes_resource_request": true})));
        assert!(!holds(json!({"kubernetes_resource_request": false})));
        assert!(!holds(
            json!({"kubernetes_non_resource_path": {"starts_with": "/"}})
        ));

        let logs = request("GET", "/api/v1/namespaces/team-a/pods/web-0/log");
        let logs = resolved(&logs);
        assert!(criterion(json!({"kubernetes_resource": "pods"})).holds_in(&logs));
        assert!(criterion(json!({"kubernetes_subresource": "log"})).holds_in(&logs));

        let nodes = request("GET", "/api/v1/nodes");
        let nodes = resolved(&nodes);
        assert!(criterion(json!({"kubernetes_namespace": ""})).holds_in(&nodes));
        let deployments = request("GET", "/apis/apps/v1/namespaces/x/deployments");
        let deployments = resolved(&deployments);
        assert!(criterion(json!({"kubernetes_api_group": "apps"})).holds_in(&deployments));
        assert!(!criterion(json!({"kubernetes_api_group": ""})).holds_in(&deployments));
    }

    #[test]
    fn resource_criteria_are_false_for_non_resource_requests() {
        let healthz = request("GET", "/healthz/etcd");
        let context = resolved(&healthz);
        for value in [
            json!({"kubernetes_resource": {"not": "secrets"}}),
            json!({"kubernetes_subresource": ""}),
            json!({"kubernetes_namespace": ""}),
            json!({"kubernetes_api_group": ""}),
            json!({"kubernetes_name": {"not": "x"}}),
            json!({"kubernetes_resource_request": true}),
        ] {
            assert!(!criterion(value.clone()).holds_in(&context), "{value}");
        }
        assert!(criterion(json!({"kubernetes_resource_request": false})).holds_in(&context));
        assert!(
            criterion(json!({"kubernetes_non_resource_path": {"starts_with": "/healthz"}}))
                .holds_in(&context)
        );
        // The decoded path, as the API server sees it.
        let encoded = request("GET", "/healthz%2Fetcd");
        assert!(
            criterion(json!({"kubernetes_non_resource_path": "/healthz/etcd"}))
                .holds_in(&resolved(&encoded))
        );
    }

    #[test]
    fn kubernetes_criteria_without_a_resolved_request_are_false() {
        let unresolved = at(MONDAY);
        for value in [
            json!({"kubernetes_verb": {"not": "get"}}),
            json!({"kubernetes_resource": {"not": "pods"}}),
            json!({"kubernetes_subresource": ""}),
            json!({"kubernetes_namespace": ""}),
            json!({"kubernetes_api_group": ""}),
            json!({"kubernetes_name": {"not": "x"}}),
            json!({"kubernetes_resource_request": true}),
            json!({"kubernetes_resource_request": false}),
            json!({"kubernetes_non_resource_path": {"not": "/"}}),
        ] {
            assert!(!criterion(value.clone()).holds_in(&unresolved), "{value}");
        }
    }

    #[test]
    fn kubernetes_errors_name_their_path() {
        assert_eq!(
            error(json!({"kubernetes_verb": {"in": ["get", "LIST"]}})),
            "policy.kubernetes_verb.in[1]: Kubernetes verbs are lower case: write \"list\", not \
             \"LIST\""
        );
        assert_eq!(
            error(json!({"kubernetes_resource": "pods/exec"})),
            "policy.kubernetes_resource: \"pods/exec\": match the subresource on its own: \
             kubernetes_resource: \"pods\" and kubernetes_subresource: \"exec\""
        );
        assert_eq!(
            error(json!({"kubernetes_api_group": "core"})),
            "policy.kubernetes_api_group: \"core\": the core API group is \"\" (write \
             kubernetes_api_group: \"\" or {\"is\": \"\"})"
        );
        assert_eq!(
            error(json!({"kubernetes_namespace": {"iz": "x"}})),
            "policy.kubernetes_namespace: unknown string matcher operator \"iz\""
        );
        assert_eq!(
            error(json!({"kubernetes_resource_request": "yes"})),
            "policy.kubernetes_resource_request: expected true (a resource request) or false (a \
             non-resource request), found a string"
        );
        assert_eq!(
            error(json!({"kubernetes_name": 3})),
            "policy.kubernetes_name: expected a string or a string matcher object, found a number"
        );
    }

    #[test]
    fn kubernetes_exec_class() {
        let exec_class = criterion(json!({"kubernetes_exec_class": true}));
        let not_exec_class = criterion(json!({"kubernetes_exec_class": false}));
        let get = criterion(json!({"kubernetes_verb": "get"}));
        for (method, target, verb_is_get) in [
            (
                "GET",
                "/api/v1/namespaces/ns/pods/web-0/exec?command=sh",
                false,
            ),
            (
                "POST",
                "/api/v1/namespaces/ns/pods/web-0/exec?command=sh",
                false,
            ),
            ("POST", "/api/v1/namespaces/ns/pods/web-0/attach", false),
            ("GET", "/api/v1/namespaces/ns/pods/web-0/portforward", false),
            ("GET", "/api/v1/namespaces/ns/pods/web-0/proxy/", true),
            (
                "GET",
                "/api/v1/namespaces/ns/services/web:80/proxy/admin",
                true,
            ),
            (
                "GET",
                "/api/v1/nodes/n1/proxy/exec/ns/web-0/c?command=sh",
                true,
            ),
            ("POST", "/api/v1/nodes/n1/proxy/run/ns/web-0/c", false),
            ("GET", "/api/v1/proxy/namespaces/ns/pods/web-0/", false),
        ] {
            let info = request(method, target);
            let context = resolved(&info);
            assert!(exec_class.holds_in(&context), "{method} {target}");
            assert!(!not_exec_class.holds_in(&context), "{method} {target}");
            // kubernetes_verb keeps what the API server authorizes: a proxy GET is `get`.
            assert_eq!(get.holds_in(&context), verb_is_get, "{method} {target}");
        }
        let list = request("GET", "/api/v1/namespaces/ns/pods");
        assert!(!exec_class.holds_in(&resolved(&list)));
        assert!(not_exec_class.holds_in(&resolved(&list)));
        // Any upgrade is exec-class, on any path, resolved or not.
        let upgraded = RequestContext {
            protocol_upgrade: true,
            ..resolved(&list)
        };
        assert!(exec_class.holds_in(&upgraded));
        assert!(!not_exec_class.holds_in(&upgraded));
        let unresolved_upgrade = RequestContext {
            protocol_upgrade: true,
            ..at(MONDAY)
        };
        assert!(exec_class.holds_in(&unresolved_upgrade));
        // Unknown without an upgrade: neither value holds.
        assert!(!exec_class.holds_in(&at(MONDAY)));
        assert!(!not_exec_class.holds_in(&at(MONDAY)));
        assert!(exec_class.reads_kubernetes() && exec_class.needs_context());
        assert_eq!(
            error(json!({"kubernetes_exec_class": "yes"})),
            "policy.kubernetes_exec_class: expected true (exec, attach, port-forward, proxy or a \
             protocol upgrade) or false (anything else), found a string"
        );
    }

    #[test]
    fn source_ip_criterion() {
        let office = criterion(json!({"source_ip": ["192.0.2.0/24", "2001:db8::/32"]}));
        assert!(office.holds_in(&from_ip("192.0.2.200")));
        assert!(office.holds_in(&from_ip("::ffff:192.0.2.200")));
        assert!(office.holds_in(&from_ip("2001:db8::1")));
        assert!(!office.holds_in(&from_ip("198.51.100.1")));
        assert!(!office.holds_in(&at(MONDAY)), "no client address");
        assert_eq!(
            error(json!({"source_ip": ["192.0.2.0/24", "192.0.2.0/40"]})),
            "policy.source_ip[1]: \"192.0.2.0/40\" is not an IP address or CIDR range (such as \
             \"192.0.2.7\", \"10.0.0.0/8\" or \"2001:db8::/32\")"
        );
    }

    #[test]
    fn time_criteria() {
        let january = criterion(json!({"date": {
            "after": "2024-01-01T00:00:00Z",
            "before": "2024-02-01T00:00:00Z",
        }}));
        assert!(!january.holds_in(&at(MONDAY)));
        assert!(january.holds_in(&at(1_704_067_200)));
        let weekdays = criterion(json!({"day_of_week": "mon-fri"}));
        assert!(weekdays.holds_in(&at(MONDAY)));
        assert!(!weekdays.holds_in(&at(MONDAY - 1)));
        let office_hours = criterion(json!({"time_of_day": {
            "timezone": "+01:00", "after": "08:00", "before": "18:00",
        }}));
        assert!(!office_hours.holds_in(&at(MONDAY + 7 * 3600 - 1)));
        assert!(office_hours.holds_in(&at(MONDAY + 7 * 3600)));
        assert_eq!(
            error(json!({"time_of_day": {"timezone": "Europe/Berlin", "after": "08:00"}})),
            "policy.time_of_day.timezone: time zone \"Europe/Berlin\": IANA time zone names are \
             not supported (the time zone database would add about 200 KiB to the filter); give \
             \"UTC\" or a fixed offset such as \"+02:00\" or \"-05:30\" (a fixed offset does not \
             follow daylight saving time)"
        );
        assert_eq!(
            error(json!({"date": {"after": "2024-01-01"}})),
            "policy.date.after: \"2024-01-01\" is not an RFC 3339 timestamp such as \
             \"2025-01-31T18:00:00Z\" or \"2025-01-31T18:00:00+01:00\""
        );
        assert_eq!(
            error(json!({"day_of_week": "mon-fry"})),
            "policy.day_of_week: \"mon-fry\" in \"mon-fry\" is not a day or a range of days: \
             give \"*\", days or ranges separated by commas such as \"mon-fri\" or \"sat,sun\", \
             with English day names or their first three letters"
        );
    }

    #[test]
    fn session_criteria_ignore_the_context() {
        let info = request("DELETE", "/api/v1/namespaces/x/pods/y");
        let context = RequestContext {
            kubernetes: Some(&info),
            protocol_upgrade: false,
            source_ip: Some(IpAddr::from([192, 0, 2, 1])),
            now_unix_seconds: MONDAY,
        };
        let domain = criterion(json!({"domain": "example.com"}));
        with_session(alice(), |facts| {
            assert!(domain.holds(&facts, &context));
            assert!(domain.holds(&facts, &RequestContext::ABSENT));
        });
        assert!(!domain.holds(&no_session(), &context));
    }
}
