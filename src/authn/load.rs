//! The `jwt` list of the configuration: each entry is a JWT authenticator in the shape of
//! Kubernetes' AuthenticationConfiguration (`apiserver.config.k8s.io/v1`, `jwt[]`), so a
//! platform team can paste the entries of its API server's file, plus kubegate's own
//! parts beside them (snake_case: `keys`, `from`, `leeway_seconds`, `max_age_seconds`,
//! `required_claims`, `extra_claims`, `issuer_host_only`).
//!
//! Load-time rules are the API server's (kubernetes/apiserver
//! pkg/apis/apiserver/validation/validation.go, `validateJWTAuthenticator`), applied to
//! the same fields with the same meaning; kubegate adds only refusals, never permissions.

use super::keys::{inline_keys, remote_settings, RawKeys};
use super::sources::{token_sources, RawTokenSource};
use super::{Authenticator, ClaimRule, UserRule};
use crate::config::{error, ConfigError, EnvLookup};
use crate::expression::Expression;
use crate::identity::{ClaimMappings, Mapping};
use crate::jwt::ClaimRules;
use crate::token::TokenSource;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The API server's limit on JWT authenticators.
pub const MAX_AUTHENTICATORS: usize = 64;
/// Clock skew beyond this is not a leeway.
const MAX_LEEWAY_SECONDS: u64 = 600;
/// go-oidc's (and so the API server's) tolerance for `nbf`/`iat` skew; kubegate's default
/// leeway, so a token the API server would accept is not refused for a second of skew.
const DEFAULT_LEEWAY_SECONDS: u64 = 60;

// ---- Kubernetes' fields (camelCase, as in AuthenticationConfiguration) --------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuthenticator {
    issuer: RawIssuer,
    #[serde(default, rename = "claimValidationRules")]
    claim_validation_rules: Vec<RawClaimValidationRule>,
    #[serde(rename = "claimMappings")]
    claim_mappings: RawClaimMappings,
    #[serde(default, rename = "userValidationRules")]
    user_validation_rules: Vec<RawUserValidationRule>,

    // kubegate's own parts.
    /// Where the verification keys come from; every key belongs to this issuer only.
    keys: RawKeys,
    /// Where the token is read from (default: `Authorization: Bearer`).
    #[serde(default)]
    from: Option<Vec<RawTokenSource>>,
    #[serde(default)]
    leeway_seconds: Option<u64>,
    #[serde(default)]
    max_age_seconds: Option<u64>,
    #[serde(default)]
    required_claims: Vec<String>,
    /// Impersonate-Extra from claims without CEL: extra key -> claim name.
    #[serde(default)]
    extra_claims: BTreeMap<String, String>,
    /// The issuer is a bare host name (Pomerium's default `iss`), not an https URL.
    #[serde(default)]
    issuer_host_only: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIssuer {
    url: String,
    #[serde(default, rename = "discoveryURL")]
    discovery_url: Option<String>,
    /// TLS to the IdP is the Envoy cluster's (its transport socket's trusted CA); the
    /// field is accepted so pasted entries load, and a log line says where it belongs.
    #[serde(default, rename = "certificateAuthority")]
    certificate_authority: Option<String>,
    audiences: Vec<String>,
    #[serde(default, rename = "audienceMatchPolicy")]
    audience_match_policy: Option<String>,
    /// The API server's egress path; the fetch here goes through `keys.remote.cluster`.
    #[serde(default, rename = "egressSelectorType")]
    egress_selector_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaimValidationRule {
    #[serde(default)]
    claim: Option<String>,
    #[serde(default, rename = "requiredValue")]
    required_value: Option<String>,
    #[serde(default)]
    expression: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaimMappings {
    username: RawPrefixedClaimOrExpression,
    #[serde(default)]
    groups: Option<RawPrefixedClaimOrExpression>,
    #[serde(default)]
    uid: Option<RawClaimOrExpression>,
    #[serde(default)]
    extra: Vec<RawExtraMapping>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrefixedClaimOrExpression {
    #[serde(default)]
    claim: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    expression: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaimOrExpression {
    #[serde(default)]
    claim: Option<String>,
    #[serde(default)]
    expression: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExtraMapping {
    key: String,
    #[serde(rename = "valueExpression")]
    value_expression: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUserValidationRule {
    expression: String,
    #[serde(default)]
    message: Option<String>,
}

// ---- Compiling --------------------------------------------------------------------------------

/// The authenticators and the union of their token sources (`Authenticator::sources`
/// index into it).
pub(crate) struct Loaded {
    pub authenticators: Vec<Authenticator>,
    pub token_sources: Vec<TokenSource>,
    /// Things worth a log line that do not refuse the configuration.
    pub notes: Vec<String>,
}

pub(crate) fn load(
    raw: Vec<RawAuthenticator>,
    max_token_bytes: usize,
    env: EnvLookup,
) -> Result<Loaded, ConfigError> {
    if raw.is_empty() {
        return Err(error("jwt", "at least one authenticator is required"));
    }
    if raw.len() > MAX_AUTHENTICATORS {
        return Err(error(
            "jwt",
            format!("at most {MAX_AUTHENTICATORS} authenticators (as the API server allows)"),
        ));
    }
    let mut loaded = Loaded {
        authenticators: Vec::with_capacity(raw.len()),
        token_sources: Vec::new(),
        notes: Vec::new(),
    };
    let mut discovery_urls: Vec<String> = Vec::new();
    for (i, entry) in raw.into_iter().enumerate() {
        let at = format!("jwt[{i}]");
        if let Some(url) = &entry.issuer.discovery_url {
            if discovery_urls.contains(url) {
                return Err(error(
                    format!("{at}.issuer.discoveryURL"),
                    format!("duplicate value {url:?}: another authenticator uses it"),
                ));
            }
            discovery_urls.push(url.clone());
        }
        let authenticator = compile_one(entry, &at, max_token_bytes, env, &mut loaded)?;
        if loaded
            .authenticators
            .iter()
            .any(|other| other.issuer == authenticator.issuer)
        {
            return Err(error(
                format!("{at}.issuer.url"),
                format!(
                    "duplicate value {:?}: each issuer has exactly one authenticator",
                    authenticator.issuer
                ),
            ));
        }
        loaded.authenticators.push(authenticator);
    }
    Ok(loaded)
}

fn compile_one(
    raw: RawAuthenticator,
    at: &str,
    max_token_bytes: usize,
    env: EnvLookup,
    loaded: &mut Loaded,
) -> Result<Authenticator, ConfigError> {
    let field = |name: &str| format!("{at}.{name}");

    // issuer
    let issuer = raw.issuer.url;
    if raw.issuer_host_only {
        check_host_only_issuer(&issuer).map_err(|p| error(field("issuer.url"), p))?;
    } else {
        check_https_url(&issuer).map_err(|p| error(field("issuer.url"), p))?;
    }
    if let Some(url) = &raw.issuer.discovery_url {
        check_https_url(url).map_err(|p| error(field("issuer.discoveryURL"), p))?;
        if url.trim_end_matches('/') == issuer.trim_end_matches('/') {
            return Err(error(
                field("issuer.discoveryURL"),
                "must be different from issuer.url",
            ));
        }
    }
    let audiences = raw.issuer.audiences;
    if audiences.is_empty() {
        return Err(error(
            field("issuer.audiences"),
            "at least one audience is required",
        ));
    }
    for (j, audience) in audiences.iter().enumerate() {
        if audience.is_empty() {
            return Err(error(
                field(&format!("issuer.audiences[{j}]")),
                "must not be empty",
            ));
        }
        if audiences.iter().take(j).any(|a| a == audience) {
            return Err(error(
                field(&format!("issuer.audiences[{j}]")),
                format!("duplicate value {audience:?}"),
            ));
        }
    }
    match raw.issuer.audience_match_policy.as_deref() {
        None | Some("") if audiences.len() > 1 => {
            return Err(error(
                field("issuer.audienceMatchPolicy"),
                "must be MatchAny when there is more than one audience",
            ))
        }
        None | Some("") | Some("MatchAny") => {}
        Some(other) => {
            return Err(error(
                field("issuer.audienceMatchPolicy"),
                format!("{other:?} is not supported (MatchAny is)"),
            ))
        }
    }
    if raw.issuer.certificate_authority.is_some() {
        loaded.notes.push(format!(
            "{at}.issuer.certificateAuthority is not used: the keys are fetched through an Envoy cluster, whose TLS settings name the trusted CA"
        ));
    }
    if raw.issuer.egress_selector_type.is_some() {
        loaded.notes.push(format!(
            "{at}.issuer.egressSelectorType is not used: the keys are fetched through keys.remote.cluster"
        ));
    }

    // claim validation rules
    let mut claim_rules = Vec::with_capacity(raw.claim_validation_rules.len());
    for (j, rule) in raw.claim_validation_rules.into_iter().enumerate() {
        let at = field(&format!("claimValidationRules[{j}]"));
        let compiled = match (rule.claim, rule.expression) {
            (Some(claim), None) => {
                if rule.message.is_some() {
                    return Err(error(
                        format!("{at}.message"),
                        "may not be specified when claim is set",
                    ));
                }
                if claim.is_empty() {
                    return Err(error(format!("{at}.claim"), "must not be empty"));
                }
                if claim_rules
                    .iter()
                    .any(|r| matches!(r, ClaimRule::Equals { claim: c, .. } if *c == claim))
                {
                    return Err(error(
                        format!("{at}.claim"),
                        format!("duplicate value {claim:?}"),
                    ));
                }
                ClaimRule::Equals {
                    claim,
                    required_value: rule.required_value.unwrap_or_default(),
                }
            }
            (None, Some(expression)) => {
                if rule.required_value.is_some() {
                    return Err(error(
                        format!("{at}.requiredValue"),
                        "may not be specified when expression is set",
                    ));
                }
                ClaimRule::Expression {
                    expression: compile(&expression, &format!("{at}.expression"))?,
                    message: rule.message,
                }
            }
            (Some(_), Some(_)) => {
                return Err(error(at, "claim and expression cannot both be specified"))
            }
            (None, None) => return Err(error(at, "claim or expression is required")),
        };
        claim_rules.push(compiled);
    }

    // claim mappings
    let mappings = raw.claim_mappings;
    let username = prefixed_mapping(mappings.username, &field("claimMappings.username"))?
        .ok_or_else(|| {
            error(
                field("claimMappings.username"),
                "claim or expression is required",
            )
        })?;
    let groups = match mappings.groups {
        None => None,
        Some(groups) => prefixed_mapping(groups, &field("claimMappings.groups"))?,
    };
    let uid = match mappings.uid {
        None => None,
        Some(uid) => {
            let at = field("claimMappings.uid");
            match (uid.claim, uid.expression) {
                (Some(claim), None) if !claim.is_empty() => Some(Mapping::Claim {
                    claim,
                    prefix: String::new(),
                }),
                (Some(_), None) => return Err(error(format!("{at}.claim"), "must not be empty")),
                (None, Some(expression)) => Some(Mapping::Expression(compile(
                    &expression,
                    &format!("{at}.expression"),
                )?)),
                (Some(_), Some(_)) => {
                    return Err(error(at, "claim and expression cannot both be specified"))
                }
                (None, None) => None,
            }
        }
    };
    let mut extra = Vec::with_capacity(mappings.extra.len());
    for (j, mapping) in mappings.extra.into_iter().enumerate() {
        let at = field(&format!("claimMappings.extra[{j}]"));
        check_extra_key(&mapping.key).map_err(|p| error(format!("{at}.key"), p))?;
        if extra.iter().any(|(key, _)| *key == mapping.key) {
            return Err(error(
                format!("{at}.key"),
                format!("duplicate value {:?}", mapping.key),
            ));
        }
        let expression = compile(&mapping.value_expression, &format!("{at}.valueExpression"))?;
        extra.push((mapping.key, expression));
    }
    let mut extra_claims = Vec::with_capacity(raw.extra_claims.len());
    for (key, claim) in raw.extra_claims {
        let at = field(&format!("extra_claims.{key}"));
        check_extra_key(&key).map_err(|p| error(&at, p))?;
        if claim.is_empty() {
            return Err(error(at, "the claim name must not be empty"));
        }
        if extra.iter().any(|(k, _)| *k == key) {
            return Err(error(at, "also set in claimMappings.extra"));
        }
        extra_claims.push((key, claim));
    }
    // The API server: a username expression that reads claims.email must also check
    // claims.email_verified somewhere, or an unverified address becomes a user name.
    if let Mapping::Expression(expression) = &username {
        let checks_verified = expression.reads_claim("email_verified")
            || extra.iter().any(|(_, e)| e.reads_claim("email_verified"))
            || claim_rules.iter().any(|rule| match rule {
                ClaimRule::Expression { expression, .. } => {
                    expression.reads_claim("email_verified")
                }
                ClaimRule::Equals { claim, .. } => claim == "email_verified",
            });
        if expression.reads_claim("email") && !checks_verified {
            return Err(error(
                field("claimMappings.username.expression"),
                "claims.email_verified must be used in claimMappings.username.expression, claimMappings.extra[*].valueExpression or claimValidationRules[*].expression when the username expression uses claims.email",
            ));
        }
    }

    // user validation rules
    let mut user_rules = Vec::with_capacity(raw.user_validation_rules.len());
    for (j, rule) in raw.user_validation_rules.into_iter().enumerate() {
        let at = field(&format!("userValidationRules[{j}]"));
        user_rules.push(UserRule {
            expression: compile(&rule.expression, &format!("{at}.expression"))?,
            message: rule.message,
        });
    }

    // kubegate's parts
    let keys = inline_keys(&raw.keys, &field("keys"), env)?;
    let remote = raw
        .keys
        .remote
        .map(|r| {
            remote_settings(
                r,
                &field("keys.remote"),
                &issuer,
                raw.issuer.discovery_url.as_deref(),
                raw.issuer_host_only,
            )
        })
        .transpose()?;
    if keys.is_empty() && remote.is_none() {
        return Err(error(
            field("keys"),
            "no usable verification key: set jwks, pem, hmac or remote",
        ));
    }
    let leeway_seconds = raw.leeway_seconds.unwrap_or(DEFAULT_LEEWAY_SECONDS);
    if leeway_seconds > MAX_LEEWAY_SECONDS {
        return Err(error(
            field("leeway_seconds"),
            format!("more than {MAX_LEEWAY_SECONDS} seconds of clock skew is not a leeway"),
        ));
    }
    if raw.required_claims.iter().any(String::is_empty) {
        return Err(error(field("required_claims"), "a claim name is empty"));
    }
    let sources = token_sources(raw.from, &field("from"), &mut loaded.token_sources)?;

    Ok(Authenticator {
        issuer: issuer.clone(),
        claim_rules: ClaimRules {
            issuers: vec![issuer],
            audiences,
            leeway_seconds,
            max_age_seconds: raw.max_age_seconds,
            required_claims: raw.required_claims,
            max_token_bytes,
        },
        claim_validation: claim_rules,
        mappings: ClaimMappings {
            username,
            groups,
            uid,
            extra,
            extra_claims,
        },
        user_validation: user_rules,
        keys,
        remote,
        sources,
    })
}

fn compile(source: &str, at: &str) -> Result<Expression, ConfigError> {
    Expression::compile(source).map_err(|p| error(at, p))
}

/// `username` / `groups`: a claim with a required (possibly empty) prefix, or an
/// expression without one. `Ok(None)`: neither is set (only allowed for groups).
fn prefixed_mapping(
    raw: RawPrefixedClaimOrExpression,
    at: &str,
) -> Result<Option<Mapping>, ConfigError> {
    match (raw.claim, raw.expression) {
        (Some(claim), None) => {
            if claim.is_empty() {
                return Err(error(format!("{at}.claim"), "must not be empty"));
            }
            // Required even when empty, so nobody gets a prefix (or none) by accident.
            let Some(prefix) = raw.prefix else {
                return Err(error(
                    format!("{at}.prefix"),
                    "required when claim is set (it may be \"\")",
                ));
            };
            Ok(Some(Mapping::Claim { claim, prefix }))
        }
        (None, Some(expression)) => {
            if raw.prefix.is_some() {
                return Err(error(
                    format!("{at}.prefix"),
                    "may not be specified when expression is set",
                ));
            }
            Ok(Some(Mapping::Expression(compile(
                &expression,
                &format!("{at}.expression"),
            )?)))
        }
        (Some(_), Some(_)) => Err(error(at, "claim and expression cannot both be specified")),
        (None, None) => {
            if raw.prefix.is_some() {
                return Err(error(
                    format!("{at}.prefix"),
                    "may not be specified when claim is not set",
                ));
            }
            Ok(None)
        }
    }
}

/// The API server's issuer URL rules: https, a host, no user info, query or fragment.
fn check_https_url(url: &str) -> Result<(), String> {
    if url.is_empty() {
        return Err("required".into());
    }
    let Some(rest) = url
        .get(..8)
        .filter(|scheme| scheme.eq_ignore_ascii_case("https://"))
        .and_then(|_| url.get(8..))
    else {
        return Err("URL scheme must be https".into());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("URL must not contain a username or password".into());
    }
    if url.contains('?') {
        return Err("URL must not contain a query".into());
    }
    if url.contains('#') {
        return Err("URL must not contain a fragment".into());
    }
    if !crate::jwks::settings::is_authority(authority) {
        return Err("URL must have a host".into());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("URL must not contain spaces or control characters".into());
    }
    Ok(())
}

/// A bare DNS host name, as Pomerium puts in `iss` by default: only with
/// `issuer_host_only: true`, so the https rule still holds for pasted entries.
fn check_host_only_issuer(issuer: &str) -> Result<(), String> {
    if issuer.contains("://") {
        return Err("with issuer_host_only the issuer is a host name, not a URL".into());
    }
    if !is_dns_name(issuer) {
        return Err(format!("{issuer:?} is not a DNS host name"));
    }
    Ok(())
}

/// A lower-case DNS name (RFC 1123 labels), as Kubernetes validates subdomains.
fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// An extra key: a domain-prefixed path (`example.com/team`), lower case, and not in the
/// namespaces Kubernetes keeps for itself (validation.go: k8s.io, kubernetes.io).
fn check_extra_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("required".into());
    }
    if key != key.to_lowercase() {
        return Err("key must be lowercase".into());
    }
    let Some((domain, path)) = key.split_once('/') else {
        return Err("must be a domain-prefixed path (such as \"acme.io/foo\")".into());
    };
    let path_ok = !path.is_empty()
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@%/".contains(&b));
    if !is_dns_name(domain) || !path_ok {
        return Err("must be a domain-prefixed path (such as \"acme.io/foo\")".into());
    }
    for reserved in ["kubernetes.io", "k8s.io"] {
        if domain == reserved || domain.ends_with(&format!(".{reserved}")) {
            return Err(format!("k8s.io, kubernetes.io and their subdomains are reserved for Kubernetes use ({domain:?})"));
        }
    }
    Ok(())
}
