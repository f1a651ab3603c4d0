//! Verified claims -> the Kubernetes identity to impersonate: user, groups, uid, extra.
//!
//! Modelled on Kubernetes' structured AuthenticationConfiguration (reference.md): user and
//! groups from a claim plus an optional prefix, uid from a claim, extra from claims, and an
//! optional `email_verified` requirement when the user comes from `email`.

use crate::Claims;
use serde_json::Value;

/// How claims map to a Kubernetes identity (compiled from the `identity` config block).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityRules {
    pub user_claim: String,
    pub groups_claim: String,
    pub user_prefix: String,
    pub group_prefix: String,
    pub uid_claim: Option<String>,
    /// (extra key, claim name); keys are already lower case.
    pub extra_claims: Vec<(String, String)>,
    pub require_email_verified: bool,
}

impl Default for IdentityRules {
    fn default() -> Self {
        IdentityRules {
            user_claim: "email".into(),
            groups_claim: "groups".into(),
            user_prefix: String::new(),
            group_prefix: String::new(),
            uid_claim: None,
            extra_claims: Vec::new(),
            require_email_verified: false,
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
}

/// Why the claims give no identity that may be impersonated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityError {
    /// The user claim is missing, empty or not a string. (A 401: the token is unusable.)
    MissingUser(String),
    /// `email_verified` is required and is not `true`.
    EmailNotVerified,
    /// A claim has the wrong JSON type.
    WrongType(String),
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
            IdentityError::EmailNotVerified => f.write_str("token's email is not verified"),
            IdentityError::WrongType(claim) => {
                write!(f, "token's \"{claim}\" claim has the wrong type")
            }
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

/// The raw group names in `claims` (before any prefix): policy matches on these.
/// A single string counts as one group; absent means none.
pub fn raw_groups(claims: &Claims, rules: &IdentityRules) -> Result<Vec<String>, IdentityError> {
    string_list(claims.get(&rules.groups_claim), &rules.groups_claim)
}

/// Maps verified claims to the identity to impersonate.
pub fn map(claims: &Claims, rules: &IdentityRules) -> Result<Identity, IdentityError> {
    let user_value = match claims.get(&rules.user_claim) {
        Some(Value::String(s)) if !s.trim().is_empty() => s.as_str(),
        _ => return Err(IdentityError::MissingUser(rules.user_claim.clone())),
    };
    if rules.require_email_verified && rules.user_claim == "email" {
        // Kubernetes accepts the boolean or the string "true" (some IdPs send strings).
        let verified = match claims.get("email_verified") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        };
        if !verified {
            return Err(IdentityError::EmailNotVerified);
        }
    }
    let user = format!("{}{}", rules.user_prefix, user_value);
    check_name(&user, &rules.user_claim)?;

    let groups = raw_groups(claims, rules)?
        .into_iter()
        .map(|g| format!("{}{}", rules.group_prefix, g))
        .collect::<Vec<_>>();
    for group in &groups {
        check_name(group, &rules.groups_claim)?;
    }

    let uid = match &rules.uid_claim {
        None => None,
        Some(claim) => match claims.get(claim) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => return Err(IdentityError::WrongType(claim.clone())),
        },
    };
    if let (Some(uid), Some(claim)) = (&uid, &rules.uid_claim) {
        check_header_value(uid, claim)?;
    }

    let mut extra = Vec::new();
    for (key, claim) in &rules.extra_claims {
        let values = string_list(claims.get(claim), claim)?;
        for value in &values {
            check_header_value(value, claim)?;
        }
        if !values.is_empty() {
            extra.push((key.clone(), values));
        }
    }

    Ok(Identity {
        user,
        groups,
        uid,
        extra,
    })
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
