//! Authentication as the API server does it with structured authentication: one JWT
//! authenticator per issuer, each with its own keys, audiences, claim rules and claim
//! mappings. A token's `iss` picks its authenticator, and only that authenticator's keys
//! may verify it, so a key of one identity provider can never vouch for a user of another
//! (kubernetes/apiserver plugin/pkg/authenticator/token/oidc/oidc.go builds one verifier
//! per issuer for the same reason).
//!
//! `load.rs` reads and validates the configuration; this file is what runs per token.

mod keys;
pub(crate) mod load;
mod sources;

use crate::expression::{Expression, UserView};
use crate::identity::{self, ClaimMappings, Identity, IdentityError};
use crate::jwks::settings::RemoteJwksSettings;
use crate::jwt::{ClaimRules, KeySet};
use crate::Claims;
use serde_json::Value;

/// One issuer's authenticator, compiled.
pub struct Authenticator {
    /// The exact `iss` value this authenticator accepts (`issuer.url`).
    pub issuer: String,
    /// Issuer, audiences, leeway, max age and required claims, as the JWT layer checks them.
    pub claim_rules: ClaimRules,
    pub claim_validation: Vec<ClaimRule>,
    pub mappings: ClaimMappings,
    pub user_validation: Vec<UserRule>,
    /// The configured keys (the glue adds a fetched remote set to these).
    pub keys: KeySet,
    pub remote: Option<RemoteJwksSettings>,
    /// Indices into `Config::token_sources`: where this issuer's tokens may arrive.
    pub sources: Vec<usize>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("issuer", &self.issuer)
            .field("audiences", &self.claim_rules.audiences)
            .field("keys", &self.keys.len())
            .field("remote", &self.remote)
            .field("sources", &self.sources)
            .finish_non_exhaustive()
    }
}

/// `claimValidationRules[]`.
#[derive(Debug)]
pub enum ClaimRule {
    /// The claim must be a string equal to `required_value`.
    Equals {
        claim: String,
        required_value: String,
    },
    /// The expression must evaluate to `true`.
    Expression {
        expression: Expression,
        message: Option<String>,
    },
}

/// `userValidationRules[]`: the expression over `user` must evaluate to `true`.
#[derive(Debug)]
pub struct UserRule {
    pub expression: Expression,
    pub message: Option<String>,
}

/// The authenticator for a token's `iss` (exact match, as the API server compares).
pub fn for_issuer<'a>(
    authenticators: &'a [Authenticator],
    claims: &Claims,
) -> Result<&'a Authenticator, AuthnError> {
    match claims.get("iss") {
        Some(Value::String(iss)) => authenticators
            .iter()
            .find(|a| a.issuer == *iss)
            .ok_or_else(|| AuthnError::UnknownIssuer(shorten(iss))),
        Some(_) => Err(AuthnError::UnknownIssuer("(not a string)".into())),
        None => Err(AuthnError::UnknownIssuer("(none)".into())),
    }
}

/// Why verified claims do not authenticate a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthnError {
    /// No authenticator is configured for the token's `iss`.
    UnknownIssuer(String),
    /// The token arrived in a header or cookie its authenticator does not read.
    WrongSource(String),
    /// A `claimValidationRules` entry did not hold.
    ClaimRule(String),
    /// The claims give no usable identity.
    Identity(IdentityError),
    /// A `userValidationRules` entry did not hold.
    UserRule(String),
}

impl AuthnError {
    /// Reserved names are a policy matter (403); everything else is a 401.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, AuthnError::Identity(e) if e.is_forbidden())
    }
}

impl std::fmt::Display for AuthnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthnError::UnknownIssuer(iss) => {
                write!(f, "no authenticator for the token's issuer {iss:?}")
            }
            AuthnError::WrongSource(iss) => write!(
                f,
                "a token of issuer {iss:?} is not accepted in the header or cookie it came in"
            ),
            AuthnError::ClaimRule(message) | AuthnError::UserRule(message) => f.write_str(message),
            AuthnError::Identity(e) => e.fmt(f),
        }
    }
}

impl Authenticator {
    /// From verified claims to the identity to impersonate: claim validation rules, claim
    /// mappings (with the API server's `email_verified` rule), then user validation rules.
    pub fn authenticate(&self, claims: &Claims) -> Result<Identity, AuthnError> {
        for rule in &self.claim_validation {
            check_claim_rule(rule, claims)?;
        }
        let identity = identity::map(claims, &self.mappings).map_err(AuthnError::Identity)?;
        for rule in &self.user_validation {
            let view = UserView {
                username: &identity.user,
                uid: identity.uid.as_deref(),
                groups: &identity.groups,
                extra: &identity.extra,
            };
            match rule.expression.eval_user(view) {
                Ok(Value::Bool(true)) => {}
                Ok(Value::Bool(false)) => {
                    return Err(AuthnError::UserRule(rule.message.clone().unwrap_or_else(
                        || format!("user validation rule ({}) failed", rule.expression.source()),
                    )))
                }
                Ok(_) => {
                    return Err(AuthnError::UserRule(format!(
                        "user validation rule ({}) did not give a boolean",
                        rule.expression.source()
                    )))
                }
                Err(e) => return Err(AuthnError::UserRule(format!("user validation rule: {e}"))),
            }
        }
        Ok(identity)
    }
}

fn check_claim_rule(rule: &ClaimRule, claims: &Claims) -> Result<(), AuthnError> {
    match rule {
        // As the API server: present, a string, and equal (oidc.go only supports string
        // values for required claims).
        ClaimRule::Equals {
            claim,
            required_value,
        } => match claims.get(claim) {
            None => Err(AuthnError::ClaimRule(format!(
                "required claim {claim:?} is not present in the token"
            ))),
            Some(Value::String(value)) if value == required_value => Ok(()),
            // Go decodes null into a string as "", and the API server compares that.
            Some(Value::Null) if required_value.is_empty() => Ok(()),
            Some(Value::String(_) | Value::Null) => Err(AuthnError::ClaimRule(format!(
                "required claim {claim:?} does not have the required value"
            ))),
            Some(_) => Err(AuthnError::ClaimRule(format!(
                "required claim {claim:?} is not a string"
            ))),
        },
        ClaimRule::Expression {
            expression,
            message,
        } => match expression.eval_claims(claims) {
            Ok(Value::Bool(true)) => Ok(()),
            Ok(Value::Bool(false)) => Err(AuthnError::ClaimRule(message.clone().unwrap_or_else(
                || format!("claim validation rule ({}) failed", expression.source()),
            ))),
            Ok(_) => Err(AuthnError::ClaimRule(format!(
                "claim validation rule ({}) did not give a boolean",
                expression.source()
            ))),
            Err(e) => Err(AuthnError::ClaimRule(format!("claim validation rule: {e}"))),
        },
    }
}

/// A client-chosen value in a message: bounded, so a refusal cannot be made huge.
fn shorten(value: &str) -> String {
    const MAX: usize = 80;
    match value.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", value.get(..end).unwrap_or_default()),
        None => value.to_string(),
    }
}
