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
                "the name {name:?} is reserved for the cluster (system:) and cannot be impersonated through the gateway"
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
    if name.len() >= 7
        && name
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("system:"))
    {
        return Err(IdentityError::Reserved(name.to_string()));
    }
    Ok(())
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

    #[test]
    fn defaults_take_email_and_groups() {
        let c = claims(json!({"sub": "123", "email": "a@example.com", "groups": ["dev", "ops"]}));
        let id = map(&c, &IdentityRules::default()).unwrap();
        assert_eq!(id.user, "a@example.com");
        assert_eq!(id.groups, vec!["dev", "ops"]);
        assert_eq!(id.uid, None);
        assert!(id.extra.is_empty());
    }

    #[test]
    fn single_string_group_and_missing_groups() {
        let rules = IdentityRules::default();
        let c = claims(json!({"email": "a@example.com", "groups": "dev"}));
        assert_eq!(map(&c, &rules).unwrap().groups, vec!["dev"]);
        let c = claims(json!({"email": "a@example.com"}));
        assert!(map(&c, &rules).unwrap().groups.is_empty());
        let c = claims(json!({"email": "a@example.com", "groups": [1]}));
        assert_eq!(
            map(&c, &rules),
            Err(IdentityError::WrongType("groups".into()))
        );
        let c = claims(json!({"email": "a@example.com", "groups": {"a": 1}}));
        assert!(map(&c, &rules).is_err());
    }

    #[test]
    fn prefixes_uid_and_extra() {
        let rules = IdentityRules {
            user_claim: "sub".into(),
            groups_claim: "roles".into(),
            user_prefix: "oidc:".into(),
            group_prefix: "oidc:".into(),
            uid_claim: Some("sub".into()),
            extra_claims: vec![("acme.com/project".into(), "project".into())],
            require_email_verified: false,
        };
        let c = claims(json!({"sub": "u-1", "roles": ["admin"], "project": ["a", "b"]}));
        let id = map(&c, &rules).unwrap();
        assert_eq!(id.user, "oidc:u-1");
        assert_eq!(id.groups, vec!["oidc:admin"]);
        assert_eq!(id.uid.as_deref(), Some("u-1"));
        assert_eq!(
            id.extra,
            vec![("acme.com/project".to_string(), vec!["a".into(), "b".into()])]
        );
    }

    #[test]
    fn missing_or_non_string_user_is_refused() {
        let rules = IdentityRules::default();
        for c in [
            json!({"sub": "x"}),
            json!({"email": ""}),
            json!({"email": "  "}),
            json!({"email": 5}),
            json!({"email": ["a@b"]}),
        ] {
            assert_eq!(
                map(&claims(c.clone()), &rules),
                Err(IdentityError::MissingUser("email".into())),
                "{c}"
            );
        }
    }

    #[test]
    fn email_verified_is_enforced_when_configured() {
        let rules = IdentityRules {
            require_email_verified: true,
            ..IdentityRules::default()
        };
        for (c, ok) in [
            (json!({"email": "a@b.c", "email_verified": true}), true),
            (json!({"email": "a@b.c", "email_verified": "true"}), true),
            (json!({"email": "a@b.c", "email_verified": false}), false),
            (json!({"email": "a@b.c", "email_verified": "yes"}), false),
            (json!({"email": "a@b.c"}), false),
        ] {
            assert_eq!(map(&claims(c.clone()), &rules).is_ok(), ok, "{c}");
        }
        // Only when the user comes from email.
        let rules = IdentityRules {
            user_claim: "sub".into(),
            require_email_verified: true,
            ..IdentityRules::default()
        };
        assert!(map(&claims(json!({"sub": "x"})), &rules).is_ok());
    }

    #[test]
    fn reserved_system_names_are_refused_in_any_case() {
        let rules = IdentityRules::default();
        let c = claims(json!({"email": "a@b.c", "groups": ["dev", "system:masters"]}));
        let err = map(&c, &rules).unwrap_err();
        assert_eq!(err, IdentityError::Reserved("system:masters".into()));
        assert!(err.is_forbidden());
        let c = claims(json!({"email": "SYSTEM:admin"}));
        assert!(map(&c, &rules).unwrap_err().is_forbidden());
        let c = claims(json!({"email": "system:serviceaccount:kube-system:default"}));
        assert!(map(&c, &rules).is_err());
        // A prefix makes the name safe.
        let prefixed = IdentityRules {
            group_prefix: "idp:".into(),
            ..IdentityRules::default()
        };
        let c = claims(json!({"email": "a@b.c", "groups": ["system:masters"]}));
        assert_eq!(
            map(&c, &prefixed).unwrap().groups,
            vec!["idp:system:masters"]
        );
    }

    #[test]
    fn header_injection_through_claims_is_refused() {
        let rules = IdentityRules {
            uid_claim: Some("sub".into()),
            extra_claims: vec![("k".into(), "x".into())],
            ..IdentityRules::default()
        };
        for c in [
            json!({"email": "a@b.c\r\nImpersonate-Group: system:masters"}),
            json!({"email": "a@b.c", "groups": ["ok", "bad\n"]}),
            json!({"email": "a@b.c", "sub": "u\u{0}"}),
            json!({"email": "a@b.c", "x": ["v\r"]}),
            json!({"email": "a@b.c", "groups": [""]}),
        ] {
            assert!(map(&claims(c.clone()), &rules).is_err(), "{c}");
        }
    }
}
