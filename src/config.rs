//! The plugin configuration: JSON, validated once in on_configure into a compiled form.
//!
//! Unknown fields are errors, so a typo can never silently switch a rule off; every error
//! names the field (a JSON path such as `routes[0].policy[1].allow`) and the problem.

use crate::identity::IdentityRules;
use crate::json_path;
use crate::jwks::settings::{self as remote, KeySource, RemoteJwksSettings};
use crate::jwt::{ClaimRules, KeySet};
use crate::policy::Policy;
use crate::route::{HostPattern, RouteTable};
use crate::token::TokenSource;
use base64::Engine;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A configuration problem: which field, and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub problem: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() || self.field == "." {
            f.write_str(&self.problem)
        } else {
            write!(f, "{}: {}", self.field, self.problem)
        }
    }
}

fn error(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        field: field.into(),
        problem: problem.into(),
    }
}

// ---- The JSON shape ------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    routes: Vec<RawRoute>,
    jwt: RawJwt,
    #[serde(default)]
    identity: RawIdentity,
    /// The realm in `WWW-Authenticate` challenges.
    #[serde(default)]
    realm: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(default)]
    from: Option<String>,
    policy: serde_json::Value,
    #[serde(default)]
    kubernetes_service_account_token: Option<String>,
    #[serde(default)]
    kubernetes_service_account_token_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJwt {
    issuer: OneOrMany,
    audiences: OneOrMany,
    #[serde(default)]
    jwks: Option<serde_json::Value>,
    #[serde(default)]
    pem_keys: Vec<RawPemKey>,
    #[serde(default)]
    hmac_secrets: Vec<RawHmacSecret>,
    #[serde(default)]
    remote_jwks: Option<RawRemoteJwks>,
    #[serde(default)]
    leeway_seconds: Option<u64>,
    #[serde(default)]
    max_age_seconds: Option<u64>,
    #[serde(default)]
    max_token_bytes: Option<usize>,
    #[serde(default)]
    required_claims: Vec<String>,
    #[serde(default)]
    from: Option<Vec<RawTokenSource>>,
    /// Verified tokens remembered per VM (0 disables the cache).
    #[serde(default)]
    cache_entries: Option<usize>,
}

/// Keys fetched from the identity provider (src/jwks/ documents the fetching). Bounds
/// and defaults are in src/jwks/settings.rs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemoteJwks {
    /// The Envoy cluster the fetch goes through (dispatch_http_call).
    cluster: String,
    /// The `:authority` of the fetch; required with `path`, taken from `oidc_issuer`.
    #[serde(default)]
    authority: Option<String>,
    /// The JWKS path (Pomerium: `/.well-known/pomerium/jwks.json`)...
    #[serde(default)]
    path: Option<String>,
    /// ...or an https issuer whose openid-configuration names a same-host `jwks_uri`.
    #[serde(default)]
    oidc_issuer: Option<String>,
    /// How often the set is fetched again (default 300).
    #[serde(default)]
    refresh_seconds: Option<u64>,
    /// Per HTTP call, and the longest a request waits for keys (default 5000).
    #[serde(default)]
    timeout_ms: Option<u64>,
    /// How long the last good set is used while fetches fail (default 86400).
    #[serde(default)]
    max_stale_seconds: Option<u64>,
    /// At most one unknown-kid refetch per this interval, proxy-wide (default 30).
    #[serde(default)]
    refetch_min_interval_seconds: Option<u64>,
    /// Larger answers are refused unread (default 262144).
    #[serde(default)]
    max_response_bytes: Option<usize>,
    /// How often each VM checks the shared state (default 1000).
    #[serde(default)]
    poll_interval_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPemKey {
    #[serde(default)]
    kid: Option<String>,
    alg: String,
    pem: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHmacSecret {
    #[serde(default)]
    kid: Option<String>,
    alg: String,
    #[serde(default)]
    secret_base64: Option<String>,
    #[serde(default)]
    secret_env: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokenSource {
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    cookie: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    #[serde(default)]
    user_claim: Option<String>,
    #[serde(default)]
    groups_claim: Option<String>,
    #[serde(default)]
    user_prefix: Option<String>,
    #[serde(default)]
    group_prefix: Option<String>,
    #[serde(default)]
    uid_claim: Option<String>,
    #[serde(default)]
    extra_claims: BTreeMap<String, String>,
    #[serde(default)]
    require_email_verified: bool,
}

// ---- The compiled form -----------------------------------------------------------------

/// One API server behind the gateway.
pub struct Route {
    /// The configured `from`, for logs and messages.
    pub name: String,
    pub policy: Policy,
    service_account_token: String,
}

impl Route {
    /// The bearer token the API server authenticates the gateway by. Never log it.
    pub fn service_account_token(&self) -> &str {
        &self.service_account_token
    }
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Route")
            .field("name", &self.name)
            .field("service_account_token", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// The validated configuration every request is judged by.
pub struct Config {
    pub routes: Vec<Route>,
    pub route_table: RouteTable,
    /// The keys tokens verify with: the inline ones, plus the remote set once fetched
    /// (the glue swaps this when the remote set changes).
    pub keys: KeySet,
    /// Where remote keys come from, if anywhere.
    pub remote_jwks: Option<RemoteJwksSettings>,
    pub claim_rules: ClaimRules,
    pub token_sources: Vec<TokenSource>,
    pub identity: IdentityRules,
    pub realm: String,
    /// Capacity of each VM's verified-token cache.
    pub cache_entries: usize,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("routes", &self.routes)
            .field("keys", &self.keys.len())
            .field("remote_jwks", &self.remote_jwks)
            .field("token_sources", &self.token_sources)
            .field("identity", &self.identity)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

/// Environment lookup (WASI environ in the proxy; a map in tests).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The upper bound on `max_token_bytes`: Envoy refuses request headers over 60 KiB by
/// default, and a bigger token only buys an attacker parsing time.
const MAX_TOKEN_BYTES_LIMIT: usize = 64 * 1024;

/// Default and upper bound of the verified-token cache: kubectl sessions repeat one token,
/// so a thousand entries cover a busy gateway; the bound keeps a VM's memory predictable
/// (an entry is the claims object, typically well under 2 KiB).
const DEFAULT_CACHE_ENTRIES: usize = 1024;
const MAX_CACHE_ENTRIES: usize = 100_000;

impl Config {
    /// Parses and validates the plugin configuration.
    pub fn parse(json: &[u8], env: EnvLookup) -> Result<Config, ConfigError> {
        let raw: RawConfig = serde_json::from_slice(json).map_err(|e| {
            error(
                json_path::path_at(json, e.line(), e.column()),
                e.to_string(),
            )
        })?;
        compile(raw, env)
    }
}

fn compile(raw: RawConfig, env: EnvLookup) -> Result<Config, ConfigError> {
    if raw.routes.is_empty() {
        return Err(error("routes", "at least one route is required"));
    }
    let single = raw.routes.len() == 1;
    let mut routes = Vec::with_capacity(raw.routes.len());
    let mut patterns = Vec::with_capacity(raw.routes.len());
    for (i, route) in raw.routes.into_iter().enumerate() {
        let at = |field: &str| format!("routes[{i}].{field}");
        let pattern = match &route.from {
            Some(from) => HostPattern::parse(from).map_err(|p| error(at("from"), p))?,
            None if single => HostPattern::Any,
            None => {
                return Err(error(
                    at("from"),
                    "required when there is more than one route",
                ))
            }
        };
        if patterns.contains(&pattern) {
            return Err(error(at("from"), format!("{pattern} is already routed")));
        }
        let policy = Policy::parse(&route.policy)
            .map_err(|e| error(format!("routes[{i}].{}", e.path()), e.problem()))?;
        let service_account_token = match (
            route.kubernetes_service_account_token,
            route.kubernetes_service_account_token_env,
        ) {
            (Some(_), Some(_)) => {
                return Err(error(
                    at("kubernetes_service_account_token"),
                    "set either the token or the _env variable name, not both",
                ))
            }
            (Some(token), None) => token,
            (None, Some(var)) => env(&var).ok_or_else(|| {
                error(
                    at("kubernetes_service_account_token_env"),
                    format!("environment variable {var:?} is not set in the VM (vm_config.environment_variables / vmConfig.env)"),
                )
            })?,
            (None, None) => {
                return Err(error(
                    at("kubernetes_service_account_token"),
                    "a route needs a service-account token: set kubernetes_service_account_token or kubernetes_service_account_token_env",
                ))
            }
        };
        let service_account_token = service_account_token.trim().to_string();
        if service_account_token.is_empty()
            || service_account_token
                .bytes()
                .any(|b| !(0x21..=0x7e).contains(&b))
        {
            return Err(error(
                at("kubernetes_service_account_token"),
                "the service-account token is empty or has characters a bearer token cannot have",
            ));
        }
        patterns.push(pattern.clone());
        routes.push(Route {
            name: route.from.unwrap_or_else(|| pattern.to_string()),
            policy,
            service_account_token,
        });
    }

    let jwt = raw.jwt;
    let issuers = non_empty_list(jwt.issuer.into_vec(), "jwt.issuer")?;
    let audiences = non_empty_list(jwt.audiences.into_vec(), "jwt.audiences")?;

    let mut keys = KeySet::default();
    if let Some(jwks) = &jwt.jwks {
        keys.add_jwks(jwks).map_err(|p| error("jwt.jwks", p))?;
    }
    for (i, pem) in jwt.pem_keys.iter().enumerate() {
        keys.add_pem(pem.kid.as_deref(), &pem.alg, &pem.pem)
            .map_err(|p| error(format!("jwt.pem_keys[{i}]"), p))?;
    }
    for (i, hmac) in jwt.hmac_secrets.iter().enumerate() {
        let at = format!("jwt.hmac_secrets[{i}]");
        let secret = match (&hmac.secret_base64, &hmac.secret_env) {
            (Some(b64), None) => b64.clone(),
            (None, Some(var)) => env(var).ok_or_else(|| {
                error(
                    format!("{at}.secret_env"),
                    format!("environment variable {var:?} is not set in the VM"),
                )
            })?,
            _ => {
                return Err(error(
                    at,
                    "set exactly one of secret_base64 and secret_env (base64 either way)",
                ))
            }
        };
        let secret = base64::engine::general_purpose::STANDARD
            .decode(secret.trim())
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(secret.trim()))
            .map_err(|_| error(format!("{at}.secret_base64"), "not valid base64"))?;
        // RFC 7518 section 3.2: the key must be at least as long as the hash output.
        if secret.len() < 32 {
            return Err(error(
                at,
                "an HMAC secret must be at least 32 bytes (RFC 7518 section 3.2)",
            ));
        }
        keys.add_hmac_secret(hmac.kid.as_deref(), &hmac.alg, &secret)
            .map_err(|p| error(format!("jwt.hmac_secrets[{i}]"), p))?;
    }
    let remote_jwks = jwt.remote_jwks.map(remote_jwks_settings).transpose()?;
    if keys.is_empty() && remote_jwks.is_none() {
        return Err(error(
            "jwt",
            "no usable verification key: set jwks, pem_keys, hmac_secrets or remote_jwks",
        ));
    }

    let defaults = ClaimRules::default();
    let max_token_bytes = jwt.max_token_bytes.unwrap_or(defaults.max_token_bytes);
    if max_token_bytes == 0 || max_token_bytes > MAX_TOKEN_BYTES_LIMIT {
        return Err(error(
            "jwt.max_token_bytes",
            format!("must be between 1 and {MAX_TOKEN_BYTES_LIMIT}"),
        ));
    }
    let leeway_seconds = jwt.leeway_seconds.unwrap_or(defaults.leeway_seconds);
    if leeway_seconds > 600 {
        return Err(error(
            "jwt.leeway_seconds",
            "more than 600 seconds of clock skew is not a leeway",
        ));
    }
    let claim_rules = ClaimRules {
        issuers,
        audiences,
        leeway_seconds,
        max_age_seconds: jwt.max_age_seconds,
        required_claims: jwt.required_claims,
        max_token_bytes,
    };

    let cache_entries = jwt.cache_entries.unwrap_or(DEFAULT_CACHE_ENTRIES);
    if cache_entries > MAX_CACHE_ENTRIES {
        return Err(error(
            "jwt.cache_entries",
            format!("at most {MAX_CACHE_ENTRIES} (0 disables the cache)"),
        ));
    }

    let token_sources = match jwt.from {
        None => TokenSource::default_sources(),
        Some(list) if list.is_empty() => {
            return Err(error("jwt.from", "at least one token source is required"))
        }
        Some(list) => list
            .into_iter()
            .enumerate()
            .map(|(i, s)| token_source(s, &format!("jwt.from[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
    };
    // One source per header or cookie: two prefixes on one header would read one value
    // as two different tokens.
    for (i, source) in token_sources.iter().enumerate() {
        if token_sources
            .iter()
            .take(i)
            .any(|earlier| same_place(earlier, source))
        {
            return Err(error(
                format!("jwt.from[{i}]"),
                "this header or cookie is already a token source",
            ));
        }
    }

    let identity = identity_rules(raw.identity)?;
    let realm = raw.realm.unwrap_or_else(|| "kubegate".to_string());

    Ok(Config {
        routes,
        route_table: RouteTable::new(patterns),
        keys,
        remote_jwks,
        claim_rules,
        token_sources,
        identity,
        realm,
        cache_entries,
    })
}

/// A number from the configuration, its default when absent, refused outside `range`.
fn bounded<T: Copy + PartialOrd + std::fmt::Display>(
    value: Option<T>,
    default: T,
    (min, max): (T, T),
    field: &str,
) -> Result<T, ConfigError> {
    let value = value.unwrap_or(default);
    if value < min || value > max {
        return Err(error(
            format!("jwt.remote_jwks.{field}"),
            format!("must be between {min} and {max}"),
        ));
    }
    Ok(value)
}

fn remote_jwks_settings(raw: RawRemoteJwks) -> Result<RemoteJwksSettings, ConfigError> {
    let at = |field: &str| format!("jwt.remote_jwks.{field}");
    if !remote::is_cluster_name(&raw.cluster) {
        return Err(error(at("cluster"), "not an Envoy cluster name"));
    }
    let (authority, source) = match (raw.path, raw.oidc_issuer) {
        (Some(path), None) => {
            if !remote::is_request_path(&path) {
                return Err(error(
                    at("path"),
                    "an absolute request path (\"/...\", no spaces or fragment)",
                ));
            }
            let Some(authority) = raw.authority else {
                return Err(error(
                    at("authority"),
                    "required with path: the identity provider's host (the :authority of the fetch)",
                ));
            };
            (authority, KeySource::Path(path))
        }
        (None, Some(issuer)) => {
            if raw.authority.is_some() {
                return Err(error(
                    at("authority"),
                    "comes from oidc_issuer; set one or the other",
                ));
            }
            let (authority, discovery_path) =
                crate::jwks::discovery::discovery_location(&issuer)
                    .map_err(|problem| error(at("oidc_issuer"), problem))?;
            (
                authority,
                KeySource::OidcIssuer {
                    issuer,
                    discovery_path,
                },
            )
        }
        _ => {
            return Err(error(
                "jwt.remote_jwks",
                "set exactly one of path (with authority) and oidc_issuer",
            ))
        }
    };
    if !remote::is_authority(&authority) {
        return Err(error(at("authority"), "a host or host:port"));
    }
    let refresh_seconds = bounded(
        raw.refresh_seconds,
        remote::DEFAULT_REFRESH_SECONDS,
        remote::REFRESH_SECONDS_RANGE,
        "refresh_seconds",
    )?;
    let timeout_ms = bounded(
        raw.timeout_ms,
        remote::DEFAULT_TIMEOUT_MS,
        remote::TIMEOUT_MS_RANGE,
        "timeout_ms",
    )?;
    if timeout_ms >= refresh_seconds.saturating_mul(1000) {
        return Err(error(
            at("timeout_ms"),
            "must be shorter than refresh_seconds",
        ));
    }
    let max_stale_seconds = bounded(
        raw.max_stale_seconds,
        remote::DEFAULT_MAX_STALE_SECONDS.max(refresh_seconds),
        (refresh_seconds, remote::MAX_STALE_SECONDS_LIMIT),
        "max_stale_seconds",
    )?;
    let refetch_min_interval_seconds = bounded(
        raw.refetch_min_interval_seconds,
        remote::DEFAULT_REFETCH_MIN_INTERVAL_SECONDS,
        remote::REFETCH_MIN_INTERVAL_SECONDS_RANGE,
        "refetch_min_interval_seconds",
    )?;
    let max_response_bytes = bounded(
        raw.max_response_bytes,
        remote::DEFAULT_MAX_RESPONSE_BYTES,
        remote::MAX_RESPONSE_BYTES_RANGE,
        "max_response_bytes",
    )?;
    let poll_interval_ms = bounded(
        raw.poll_interval_ms,
        remote::DEFAULT_POLL_INTERVAL_MS,
        remote::POLL_INTERVAL_MS_RANGE,
        "poll_interval_ms",
    )?;
    Ok(RemoteJwksSettings {
        cluster: raw.cluster,
        authority,
        source,
        refresh_seconds,
        timeout_ms,
        max_stale_seconds,
        refetch_min_interval_seconds,
        max_response_bytes,
        poll_interval_ms,
    })
}

fn non_empty_list(list: Vec<String>, field: &str) -> Result<Vec<String>, ConfigError> {
    if list.is_empty() || list.iter().any(|s| s.trim().is_empty()) {
        return Err(error(
            field,
            "required, and no entry may be empty (tokens from any issuer or for any audience would pass)",
        ));
    }
    Ok(list)
}

fn token_source(raw: RawTokenSource, at: &str) -> Result<TokenSource, ConfigError> {
    match (raw.header, raw.cookie) {
        (Some(name), None) => {
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                return Err(error(format!("{at}.header"), "not a header name"));
            }
            if name.to_ascii_lowercase().starts_with("impersonate-") {
                return Err(error(
                    format!("{at}.header"),
                    "impersonate-* headers are the filter's own",
                ));
            }
            Ok(TokenSource::Header {
                name: name.to_ascii_lowercase(),
                prefix: raw.prefix.unwrap_or_default(),
            })
        }
        (None, Some(name)) => {
            if raw.prefix.is_some() {
                return Err(error(
                    format!("{at}.prefix"),
                    "a prefix applies to header sources only",
                ));
            }
            if name.is_empty() || name.contains([';', '=', ' ']) {
                return Err(error(format!("{at}.cookie"), "not a cookie name"));
            }
            Ok(TokenSource::Cookie { name })
        }
        _ => Err(error(at, "set exactly one of header and cookie")),
    }
}

fn same_place(a: &TokenSource, b: &TokenSource) -> bool {
    match (a, b) {
        (TokenSource::Header { name: x, .. }, TokenSource::Header { name: y, .. }) => x == y,
        (TokenSource::Cookie { name: x }, TokenSource::Cookie { name: y }) => x == y,
        _ => false,
    }
}

fn identity_rules(raw: RawIdentity) -> Result<IdentityRules, ConfigError> {
    let defaults = IdentityRules::default();
    let claim = |value: Option<String>, default: String, field: &str| match value {
        Some(v) if v.is_empty() => Err(error(format!("identity.{field}"), "must not be empty")),
        Some(v) => Ok(v),
        None => Ok(default),
    };
    let user_claim = claim(raw.user_claim, defaults.user_claim, "user_claim")?;
    let groups_claim = claim(raw.groups_claim, defaults.groups_claim, "groups_claim")?;
    let mut extra_claims = Vec::new();
    for (key, claim_name) in raw.extra_claims {
        if key.is_empty() || claim_name.is_empty() {
            return Err(error(
                "identity.extra_claims",
                "keys and claim names must not be empty",
            ));
        }
        extra_claims.push((key.to_ascii_lowercase(), claim_name));
    }
    if raw.require_email_verified && user_claim != "email" {
        return Err(error(
            "identity.require_email_verified",
            "applies only when user_claim is \"email\"",
        ));
    }
    Ok(IdentityRules {
        user_claim,
        groups_claim,
        user_prefix: raw.user_prefix.unwrap_or_default(),
        group_prefix: raw.group_prefix.unwrap_or_default(),
        uid_claim: raw.uid_claim,
        extra_claims,
        require_email_verified: raw.require_email_verified,
    })
}
