//! The plugin configuration: JSON, validated once in on_configure into a compiled form.
//!
//! Unknown fields are errors, so a typo can never silently switch a rule off; every error
//! names the field (a JSON path such as `routes[0].policy[1].allow`) and the problem.

use crate::audit::DecisionLogFormat;
use crate::authn::load::{self, RawAuthenticator};
use crate::authn::Authenticator;
use crate::json_path;
use crate::policy::Policy;
use crate::route::{HostPattern, RouteTable};
use crate::token::TokenSource;
use serde::Deserialize;

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

pub(crate) fn error(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
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
    /// JWT authenticators, one per issuer (src/authn/load.rs).
    jwt: Vec<RawAuthenticator>,
    /// Longer tokens are refused before any decoding.
    #[serde(default)]
    max_token_bytes: Option<usize>,
    /// Verified tokens remembered per VM (0 disables the cache).
    #[serde(default)]
    token_cache_entries: Option<usize>,
    /// The realm in `WWW-Authenticate` challenges.
    #[serde(default)]
    realm: Option<String>,
    /// The line logged per decision: `text` (default) or `audit_json` (src/audit.rs).
    #[serde(default)]
    decision_log: DecisionLogFormat,
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
    /// One per issuer; a token is verified only by the one its `iss` names (the glue
    /// adds fetched remote keys to `Authenticator::keys`).
    pub authenticators: Vec<Authenticator>,
    /// Every place a token may arrive, across authenticators.
    pub token_sources: Vec<TokenSource>,
    pub max_token_bytes: usize,
    pub realm: String,
    /// Capacity of each VM's verified-token cache.
    pub cache_entries: usize,
    /// Accepted settings worth a log line at load (fields kept only so pasted
    /// AuthenticationConfiguration entries load).
    pub notes: Vec<String>,
    /// How each decision is logged.
    pub decision_log: DecisionLogFormat,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("routes", &self.routes)
            .field("authenticators", &self.authenticators)
            .field("token_sources", &self.token_sources)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

/// Environment lookup (WASI environ in the proxy; a map in tests).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The upper bound on `max_token_bytes`: Envoy refuses request headers over 60 KiB by
/// default, and a bigger token only buys an attacker parsing time.
const MAX_TOKEN_BYTES_LIMIT: usize = 64 * 1024;
/// Large enough for ID tokens with long group lists; larger ones are usually a mistake.
const DEFAULT_MAX_TOKEN_BYTES: usize = 8192;

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

    let max_token_bytes = raw.max_token_bytes.unwrap_or(DEFAULT_MAX_TOKEN_BYTES);
    if max_token_bytes == 0 || max_token_bytes > MAX_TOKEN_BYTES_LIMIT {
        return Err(error(
            "max_token_bytes",
            format!("must be between 1 and {MAX_TOKEN_BYTES_LIMIT}"),
        ));
    }
    let cache_entries = raw.token_cache_entries.unwrap_or(DEFAULT_CACHE_ENTRIES);
    if cache_entries > MAX_CACHE_ENTRIES {
        return Err(error(
            "token_cache_entries",
            format!("at most {MAX_CACHE_ENTRIES} (0 disables the cache)"),
        ));
    }
    let loaded = load::load(raw.jwt, max_token_bytes, env)?;
    let realm = raw.realm.unwrap_or_else(|| "kubegate".to_string());

    Ok(Config {
        routes,
        route_table: RouteTable::new(patterns),
        authenticators: loaded.authenticators,
        token_sources: loaded.token_sources,
        max_token_bytes,
        realm,
        cache_entries,
        notes: loaded.notes,
        decision_log: raw.decision_log,
    })
}
