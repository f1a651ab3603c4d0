//! Verified claims -> the Kubernetes identity to impersonate: user, groups, uid, extra.
//!
//! The semantics are the API server's claim mappings (AuthenticationConfiguration
//! `claimMappings`, kubernetes/apiserver plugin/pkg/authenticator/token/oidc/oidc.go):
//! - username and groups come from a claim plus a prefix (prepended only when not empty),
//!   or from a CEL expression;
//! - when the username claim is `email`, `email_verified` must be absent or `true`; `false`,
//!   null and anything that is not a boolean (the string "true" included) are refused;
//! - a groups claim that is one string is one group; absent or null means none;
//! - a configured uid claim must be present and a string;
//! - a user name that comes out empty is refused.

use crate::expression::Expression;
use crate::Claims;
use serde_json::Value;

/// Where one identity field comes from.
#[derive(Debug)]
pub enum Mapping {
    /// A claim, with a prefix (empty: none).
    Claim { claim: String, prefix: String },
    /// A CEL expression over `claims` (kubegate-cel.wasm only).
    Expression(Expression),
}

/// `claimMappings`, compiled.
#[derive(Debug)]
pub struct ClaimMappings {
    pub username: Mapping,
    pub groups: Option<Mapping>,
    /// A `Mapping::Claim` here never has a prefix.
    pub uid: Option<Mapping>,
    /// `claimMappings.extra[]`: (key, valueExpression); keys are lower case.
    pub extra: Vec<(String, Expression)>,
    /// kubegate's `extra_claims`: (key, claim name), extra without CEL.
    pub extra_claims: Vec<(String, String)>,
}

impl ClaimMappings {
    /// User from `email`, groups from `groups`, no prefixes: the mapping most tests use.
    pub fn email_and_groups() -> ClaimMappings {
        ClaimMappings {
            username: Mapping::Claim {
                claim: "email".into(),
                prefix: String::new(),
            },
            groups: Some(Mapping::Claim {
                claim: "groups".into(),
                prefix: String::new(),
            }),
            uid: None,
            extra: Vec::new(),
            extra_claims: Vec::new(),
        }
    }
}

/// The identity the API server will apply RBAC to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub groups: Vec<String>,
    pub uid: Option<String>,
    pub extra: Vec<(String, Vec<String>)>,
    /// The groups before their prefix, as the token states them: PPL's `groups`
    /// criterion matches these (prefixes are a Kubernetes naming concern).
    pub unprefixed_groups: Vec<String>,
}

/// Why the claims give no identity that may be impersonated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityError {
    /// The username claim is missing (or the expression gave nothing usable).
    MissingUser(String),
    /// The user name comes out empty.
    EmptyUser,
    /// `email_verified` is false or null.
    EmailNotVerified,
    /// `email_verified` is present but not a boolean (e.g. the string "false").
    EmailVerifiedNotBoolean,
    /// A claim is missing or has the wrong JSON type.
    WrongType(String),
    /// An expression failed or gave the wrong type.
    Expression(String),
    /// A value cannot be sent as a header (control characters).
    IllegalValue(String),
    /// A `system:` name: reserved for the cluster itself. (A 403: such a token could
    /// otherwise grant `system:masters`, i.e. cluster-admin.)
    Reserved(String),
}

impl IdentityError {
    /// Reserved names are a policy matter (403); the rest make the token unusable (401).
    pub fn is_forbidden(&self) -> bool {
        matches!(self, IdentityError::Reserved(_))
    }
}

impl std::fmt::Display for IdentityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IdentityError::MissingUser(claim) => {
                write!(f, "token has no usable \"{claim}\" claim for the user name")
            }
            IdentityError::EmptyUser => f.write_str("the user name is empty"),
            IdentityError::EmailNotVerified => f.write_str(
                "token's email is not verified (email_verified is not true), so it cannot be the user name",
            ),
            IdentityError::EmailVerifiedNotBoolean => f.write_str(
                "token's email_verified claim is not a boolean, so the email cannot be the user name",
            ),
            IdentityError::WrongType(claim) => {
                write!(f, "token's \"{claim}\" claim is missing or has the wrong type")
            }
            IdentityError::Expression(problem) => f.write_str(problem),
            IdentityError::IllegalValue(claim) => {
                write!(f, "token's \"{claim}\" claim holds characters not allowed in a header")
            }
            IdentityError::Reserved(name) => write!(
                f,
                "the name {name:?} is reserved for the cluster and cannot be impersonated through the gateway"
            ),
        }
    }
}

/// Maps verified claims to the identity to impersonate.
pub fn map(claims: &Claims, mappings: &ClaimMappings) -> Result<Identity, IdentityError> {
    let user = match &mappings.username {
        Mapping::Claim { claim, prefix } => {
            let value = match claims.get(claim) {
                Some(Value::String(s)) => s.as_str(),
                None | Some(Value::Null) => return Err(IdentityError::MissingUser(claim.clone())),
                Some(_) => return Err(IdentityError::WrongType(claim.clone())),
            };
            if value.is_empty() {
                return Err(IdentityError::EmptyUser);
            }
            if claim == "email" {
                check_email_verified(claims)?;
            }
            format!("{prefix}{value}")
        }
        Mapping::Expression(expression) => match eval(expression, claims, "username")? {
            Value::String(s) if s.is_empty() => return Err(IdentityError::EmptyUser),
            Value::String(s) => s,
            _ => {
                return Err(IdentityError::Expression(
                    "the username expression must give a string".into(),
                ))
            }
        },
    };
    check_name(&user, "username")?;

    let (unprefixed_groups, prefix) = match &mappings.groups {
        None => (Vec::new(), ""),
        Some(Mapping::Claim { claim, prefix }) => {
            (string_list(claims.get(claim), claim)?, prefix.as_str())
        }
        Some(Mapping::Expression(expression)) => {
            let value = eval(expression, claims, "groups")?;
            let groups = string_list(Some(&value), "groups").map_err(|_| {
                IdentityError::Expression(
                    "the groups expression must give a string or a list of strings".into(),
                )
            })?;
            (groups, "")
        }
    };
    let groups = unprefixed_groups
        .iter()
        .map(|g| format!("{prefix}{g}"))
        .collect::<Vec<_>>();
    for group in &groups {
        check_name(group, "groups")?;
    }

    let uid = match &mappings.uid {
        None => None,
        Some(Mapping::Claim { claim, .. }) => match claims.get(claim) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => return Err(IdentityError::WrongType(claim.clone())),
        },
        Some(Mapping::Expression(expression)) => match eval(expression, claims, "uid")? {
            Value::String(s) => Some(s),
            _ => {
                return Err(IdentityError::Expression(
                    "the uid expression must give a string".into(),
                ))
            }
        },
    };
    if let Some(uid) = &uid {
        check_header_value(uid, "uid")?;
    }

    let mut extra = Vec::new();
    for (key, expression) in &mappings.extra {
        let value = eval(expression, claims, key)?;
        let values = string_list(Some(&value), key).map_err(|_| {
            IdentityError::Expression(format!(
                "the extra {key:?} expression must give a string or a list of strings"
            ))
        })?;
        push_extra(&mut extra, key, values)?;
    }
    for (key, claim) in &mappings.extra_claims {
        let values = string_list(claims.get(claim), claim)?;
        push_extra(&mut extra, key, values)?;
    }

    Ok(Identity {
        user,
        groups,
        uid,
        extra,
        unprefixed_groups,
    })
}

/// The API server's rule for a username taken from `email` (oidc.go): an absent
/// `email_verified` passes; present, it must decode as a boolean and be true.
fn check_email_verified(claims: &Claims) -> Result<(), IdentityError> {
    match claims.get("email_verified") {
        None | Some(Value::Bool(true)) => Ok(()),
        // Go decodes null into a bool as false.
        Some(Value::Bool(false)) | Some(Value::Null) => Err(IdentityError::EmailNotVerified),
        Some(_) => Err(IdentityError::EmailVerifiedNotBoolean),
    }
}

fn eval(expression: &Expression, claims: &Claims, what: &str) -> Result<Value, IdentityError> {
    expression
        .eval_claims(claims)
        .map_err(|e| IdentityError::Expression(format!("the {what} expression failed: {e}")))
}

/// An empty string or list leaves the key out, as the API server does.
fn push_extra(
    extra: &mut Vec<(String, Vec<String>)>,
    key: &str,
    values: Vec<String>,
) -> Result<(), IdentityError> {
    let values: Vec<String> = values.into_iter().filter(|v| !v.is_empty()).collect();
    for value in &values {
        check_header_value(value, key)?;
    }
    if !values.is_empty() {
        extra.push((key.to_string(), values));
    }
    Ok(())
}

fn string_list(value: Option<&Value>, claim: &str) -> Result<Vec<String>, IdentityError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(IdentityError::WrongType(claim.to_string())),
            })
            .collect(),
        Some(_) => Err(IdentityError::WrongType(claim.to_string())),
    }
}

fn check_name(name: &str, claim: &str) -> Result<(), IdentityError> {
    check_header_value(name, claim)?;
    // `system:masters` is cluster-admin; `system:serviceaccount:...` is a service account.
    // Kubernetes refuses such names from JWT authenticators; so do we.
    if has_prefix(name, SYSTEM_PREFIX) {
        return Err(IdentityError::Reserved(name.to_string()));
    }
    Ok(())
}

/// The cluster's own names: always reserved, whatever the configuration.
pub const SYSTEM_PREFIX: &str = "system:";

/// Whether `name` starts with `prefix`, ignoring ASCII case (so `System:Masters` is caught
/// even though the API server compares exactly: kubegate is stricter, never laxer).
fn has_prefix(name: &str, prefix: &str) -> bool {
    name.len() >= prefix.len()
        && name
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
}

/// User and group name prefixes no token may be impersonated as (`reserved_name_prefixes`).
/// Checked on the names as the API server will see them (after the claim mapping's prefix),
/// so an IdP group `kubeadm:cluster-admins` mapped with the prefix `oidc:` is harmless.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReservedNames {
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

impl ReservedNames {
    /// The defaults, for both lists:
    /// - `system:`: the cluster's own users and groups (`system:masters` is cluster-admin,
    ///   `system:serviceaccount:*` are service accounts, `system:node:*` are kubelets);
    /// - `kubeadm:`: kubeadm binds the group `kubeadm:cluster-admins` to cluster-admin (the
    ///   group of the admin.conf user since Kubernetes 1.29) and names its own bootstrap
    ///   roles and groups `kubeadm:*`.
    pub fn default_prefixes() -> Vec<String> {
        vec![SYSTEM_PREFIX.to_string(), "kubeadm:".to_string()]
    }

    /// Refuses (403) an identity whose user or any group starts with a reserved prefix.
    pub fn check(&self, identity: &Identity) -> Result<(), IdentityError> {
        if self.users.iter().any(|p| has_prefix(&identity.user, p)) {
            return Err(IdentityError::Reserved(identity.user.clone()));
        }
        for group in &identity.groups {
            if self.groups.iter().any(|p| has_prefix(group, p)) {
                return Err(IdentityError::Reserved(group.clone()));
            }
        }
        Ok(())
    }
}

impl Default for ReservedNames {
    fn default() -> ReservedNames {
        ReservedNames {
            users: ReservedNames::default_prefixes(),
            groups: ReservedNames::default_prefixes(),
        }
    }
}

/// Header values may not carry control characters (CR/LF would split headers) and may
/// not be empty or padded: the API server would see something else than policy did.
fn check_header_value(value: &str, claim: &str) -> Result<(), IdentityError> {
    if value.is_empty() || value.trim() != value || value.chars().any(|c| c.is_control()) {
        return Err(IdentityError::IllegalValue(claim.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn claims(v: Value) -> Claims {
        match v {
            Value::Object(m) => m,
            _ => panic!("claims must be an object"),
        }
    }

    fn claim(claim: &str, prefix: &str) -> Mapping {
        Mapping::Claim {
            claim: claim.into(),
            prefix: prefix.into(),
        }
    }

    #[test]
    fn email_and_groups_without_prefixes() {
        let c = claims(json!({"sub": "123", "email": "a@example.com", "groups": ["dev", "ops"]}));
        let id = map(&c, &ClaimMappings::email_and_groups()).unwrap();
        assert_eq!(id.user, "a@example.com");
        assert_eq!(id.groups, vec!["dev", "ops"]);
        assert_eq!(id.unprefixed_groups, vec!["dev", "ops"]);
        assert_eq!(id.uid, None);
        assert!(id.extra.is_empty());
    }

    #[test]
    fn groups_as_string_array_absent_null_and_with_non_strings() {
        let rules = ClaimMappings::email_and_groups();
        let groups = |v: Value| {
            let mut c = claims(json!({"email": "a@example.com"}));
            c.insert("groups".into(), v);
            map(&c, &rules).map(|id| id.groups)
        };
        assert_eq!(groups(json!("dev")), Ok(vec!["dev".to_string()]));
        assert_eq!(
            groups(json!(["dev", "ops"])),
            Ok(vec!["dev".into(), "ops".into()])
        );
        assert_eq!(groups(json!(null)), Ok(vec![]));
        assert_eq!(groups(json!([])), Ok(vec![]));
        for bad in [
            json!([1]),
            json!(["dev", 2]),
            json!(["dev", null]),
            json!({"a": 1}),
            json!(true),
        ] {
            assert_eq!(
                groups(bad.clone()),
                Err(IdentityError::WrongType("groups".into())),
                "{bad}"
            );
        }
        let c = claims(json!({"email": "a@example.com"}));
        assert!(map(&c, &rules).unwrap().groups.is_empty());
        // No groups mapping at all: no groups, whatever the token says.
        let no_groups = ClaimMappings {
            groups: None,
            ..ClaimMappings::email_and_groups()
        };
        let c = claims(json!({"email": "a@example.com", "groups": ["dev"]}));
        assert!(map(&c, &no_groups).unwrap().groups.is_empty());
    }

    #[test]
    fn prefixes_apply_only_when_not_empty_and_policy_sees_unprefixed_groups() {
        let rules = ClaimMappings {
            username: claim("sub", "oidc:"),
            groups: Some(claim("roles", "oidc:")),
            uid: Some(claim("sub", "")),
            extra: Vec::new(),
            extra_claims: vec![("acme.com/project".into(), "project".into())],
        };
        let c = claims(json!({"sub": "u-1", "roles": ["admin"], "project": ["a", "b"]}));
        let id = map(&c, &rules).unwrap();
        assert_eq!(id.user, "oidc:u-1");
        assert_eq!(id.groups, vec!["oidc:admin"]);
        assert_eq!(id.unprefixed_groups, vec!["admin"]);
        assert_eq!(id.uid.as_deref(), Some("u-1"));
        assert_eq!(
            id.extra,
            vec![("acme.com/project".to_string(), vec!["a".into(), "b".into()])]
        );
        let empty_prefix = ClaimMappings {
            username: claim("sub", ""),
            groups: Some(claim("roles", "")),
            ..ClaimMappings::email_and_groups()
        };
        let id = map(&c, &empty_prefix).unwrap();
        assert_eq!(
            (id.user.as_str(), id.groups),
            ("u-1", vec!["admin".to_string()])
        );
    }

    #[test]
    fn a_missing_empty_or_non_string_user_is_refused() {
        let rules = ClaimMappings::email_and_groups();
        for (c, expected) in [
            (
                json!({"sub": "x"}),
                IdentityError::MissingUser("email".into()),
            ),
            (
                json!({"email": null}),
                IdentityError::MissingUser("email".into()),
            ),
            (json!({"email": ""}), IdentityError::EmptyUser),
            (
                json!({"email": 5}),
                IdentityError::WrongType("email".into()),
            ),
            (
                json!({"email": ["a@b"]}),
                IdentityError::WrongType("email".into()),
            ),
            (
                json!({"email": "  "}),
                IdentityError::IllegalValue("username".into()),
            ),
        ] {
            assert_eq!(map(&claims(c.clone()), &rules), Err(expected), "{c}");
        }
        // Empty stays refused when a prefix would make it non-empty.
        let prefixed = ClaimMappings {
            username: claim("email", "oidc:"),
            ..ClaimMappings::email_and_groups()
        };
        assert_eq!(
            map(&claims(json!({"email": ""})), &prefixed),
            Err(IdentityError::EmptyUser)
        );
    }

    #[test]
    fn email_verified_follows_the_api_server_when_the_user_is_the_email() {
        let rules = ClaimMappings::email_and_groups();
        let with = |v: Option<Value>| {
            let mut c = claims(json!({"email": "a@b.c"}));
            if let Some(v) = v {
                c.insert("email_verified".into(), v);
            }
            map(&c, &rules).map(|id| id.user)
        };
        assert_eq!(with(None), Ok("a@b.c".into()));
        assert_eq!(with(Some(json!(true))), Ok("a@b.c".into()));
        assert_eq!(
            with(Some(json!(false))),
            Err(IdentityError::EmailNotVerified)
        );
        assert_eq!(
            with(Some(json!(null))),
            Err(IdentityError::EmailNotVerified)
        );
        for not_boolean in [
            json!("false"),
            json!("true"),
            json!(1),
            json!(0),
            json!([true]),
        ] {
            assert_eq!(
                with(Some(not_boolean.clone())),
                Err(IdentityError::EmailVerifiedNotBoolean),
                "{not_boolean}"
            );
        }
        assert!(IdentityError::EmailNotVerified
            .to_string()
            .contains("not verified"));
        // Only when the user comes from the email claim.
        let by_sub = ClaimMappings {
            username: claim("sub", ""),
            ..ClaimMappings::email_and_groups()
        };
        let c = claims(json!({"sub": "x", "email": "a@b.c", "email_verified": false}));
        assert_eq!(map(&c, &by_sub).unwrap().user, "x");
    }

    #[test]
    fn a_configured_uid_claim_must_be_a_present_string() {
        let rules = ClaimMappings {
            uid: Some(claim("sub", "")),
            ..ClaimMappings::email_and_groups()
        };
        let uid = |sub: Option<Value>| {
            let mut c = claims(json!({"email": "a@b.c"}));
            if let Some(sub) = sub {
                c.insert("sub".into(), sub);
            }
            map(&c, &rules).map(|id| id.uid)
        };
        assert_eq!(uid(Some(json!("u-1"))), Ok(Some("u-1".into())));
        for bad in [None, Some(json!(7)), Some(json!(null)), Some(json!(["u"]))] {
            assert_eq!(uid(bad), Err(IdentityError::WrongType("sub".into())));
        }
    }

    #[test]
    fn reserved_system_names_are_refused_in_any_case() {
        let rules = ClaimMappings::email_and_groups();
        let c = claims(json!({"email": "a@b.c", "groups": ["dev", "system:masters"]}));
        let err = map(&c, &rules).unwrap_err();
        assert_eq!(err, IdentityError::Reserved("system:masters".into()));
        assert!(err.is_forbidden());
        let c = claims(json!({"email": "SYSTEM:admin"}));
        assert!(map(&c, &rules).unwrap_err().is_forbidden());
        let c = claims(json!({"email": "system:serviceaccount:kube-system:default"}));
        assert!(map(&c, &rules).is_err());
        // A prefix makes the name safe.
        let prefixed = ClaimMappings {
            groups: Some(claim("groups", "idp:")),
            ..ClaimMappings::email_and_groups()
        };
        let c = claims(json!({"email": "a@b.c", "groups": ["system:masters"]}));
        assert_eq!(
            map(&c, &prefixed).unwrap().groups,
            vec!["idp:system:masters"]
        );
    }

    #[test]
    fn header_injection_through_claims_is_refused() {
        let rules = ClaimMappings {
            uid: Some(claim("sub", "")),
            extra_claims: vec![("example.com/k".into(), "x".into())],
            ..ClaimMappings::email_and_groups()
        };
        for c in [
            json!({"email": "a@b.c\r\nImpersonate-Group: system:masters", "sub": "u"}),
            json!({"email": "a@b.c", "sub": "u", "groups": ["ok", "bad\n"]}),
            json!({"email": "a@b.c", "sub": "u\u{0}"}),
            json!({"email": "a@b.c", "sub": "u", "x": ["v\r"]}),
            json!({"email": "a@b.c", "sub": "u", "groups": [""]}),
        ] {
            assert!(map(&claims(c.clone()), &rules).is_err(), "{c}");
        }
    }

    #[test]
    fn reserved_prefixes_apply_to_the_names_the_api_server_sees() {
        let reserved = ReservedNames::default();
        let identity = |user: &str, groups: &[&str]| Identity {
            user: user.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            uid: None,
            extra: Vec::new(),
            unprefixed_groups: Vec::new(),
        };
        assert!(reserved.check(&identity("a@example.com", &["dev"])).is_ok());
        for (user, groups) in [
            ("a@example.com", &["kubeadm:cluster-admins"][..]),
            ("a@example.com", &["dev", "KUBEADM:cluster-admins"]),
            ("kubeadm:someone", &[]),
            ("System:admin", &[]),
        ] {
            let err = reserved.check(&identity(user, groups)).unwrap_err();
            assert!(err.is_forbidden(), "{user} {groups:?}");
        }
        // A prefix from the claim mapping makes the IdP's name harmless.
        assert!(reserved
            .check(&identity("a@example.com", &["oidc:kubeadm:cluster-admins"]))
            .is_ok());
    }
}
