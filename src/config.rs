//! The plugin configuration: JSON, validated once in on_configure into a compiled form.
//!
//! Unknown fields are errors, so a typo can never silently switch a rule off; every error
//! names the field (a JSON path such as `routes[0].policy[1].allow`) and the problem.

use crate::audit::DecisionLogFormat;
use crate::authn::load::{self, RawAuthenticator};
use crate::authn::Authenticator;
use crate::identity::ReservedNames;
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
    /// Request headers removed before forwarding, besides the ones kubegate always removes.
    #[serde(default)]
    strip_request_headers: Vec<String>,
    /// User and group name prefixes no token may impersonate (`system:` always included).
    #[serde(default)]
    reserved_name_prefixes: Option<RawReservedPrefixes>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReservedPrefixes {
    #[serde(default)]
    users: Option<Vec<String>>,
    #[serde(default)]
    groups: Option<Vec<String>>,
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
    /// What to do with a client's own `Impersonate-*` headers (default: refuse).
    #[serde(default)]
    client_impersonation: Option<ClientImpersonation>,
    /// The Envoy clusters this route's API server is reached through; the service-account
    /// token is only added to requests the proxy sends to one of them.
    #[serde(default)]
    upstream_clusters: Option<Vec<String>>,
}

/// A client's own `Impersonate-*` headers (kubectl `--as`, `--as-group`, `--as-uid`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientImpersonation {
    /// Answer 403 telling the user to drop `--as` (kube-oidc-proxy's behaviour).
    #[default]
    Refuse,
    /// Remove them and go on as the verified user (Pomerium's behaviour).
    Strip,
}

// ---- The compiled form -----------------------------------------------------------------

/// One API server behind the gateway.
pub struct Route {
    /// The configured `from`, for logs and messages.
    pub name: String,
    pub policy: Policy,
    service_account_token: String,
    pub client_impersonation: ClientImpersonation,
    /// Envoy cluster names (`xds.cluster_name`) this route's requests may go to; `None`:
    /// not checked.
    pub upstream_clusters: Option<Vec<String>>,
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
            .field("client_impersonation", &self.client_impersonation)
            .field("upstream_clusters", &self.upstream_clusters)
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
    /// Accepted settings that are probably a mistake: the glue logs them as warnings.
    pub warnings: Vec<String>,
    /// Header names (lower case) removed from every forwarded request on top of the
    /// client credentials, impersonation and front-proxy headers (`strip_request_headers`).
    pub strip_request_headers: Vec<String>,
    /// Name prefixes that may never be impersonated.
    pub reserved: ReservedNames,
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
    let mut warnings = Vec::new();
    let mut notes = Vec::new();
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
        let upstream_clusters = match route.upstream_clusters {
            None => None,
            Some(clusters) => Some(upstream_clusters(clusters, &at("upstream_clusters"))?),
        };
        if single && route.from.is_none() {
            warnings.push(format!(
                "routes[{i}] has no \"from\": it serves every host the proxy sends through this filter, \
                 and each allowed request gets the service-account token{}; set \"from\" to the API server's public host",
                if upstream_clusters.is_some() {
                    ""
                } else {
                    " whatever cluster the proxy routes it to (set upstream_clusters)"
                }
            ));
        }
        if upstream_clusters.is_none() {
            notes.push(format!(
                "routes[{i}] has no upstream_clusters: the service-account token is added whichever Envoy cluster the request is routed to"
            ));
        }
        patterns.push(pattern.clone());
        routes.push(Route {
            name: route.from.unwrap_or_else(|| pattern.to_string()),
            policy,
            service_account_token,
            client_impersonation: route.client_impersonation.unwrap_or_default(),
            upstream_clusters,
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
    let strip_request_headers = strip_request_headers(raw.strip_request_headers)?;
    let reserved = reserved_names(raw.reserved_name_prefixes)?;
    let loaded = load::load(raw.jwt, max_token_bytes, env)?;
    let realm = raw.realm.unwrap_or_else(|| "kubegate".to_string());
    notes.extend(loaded.notes);

    Ok(Config {
        routes,
        route_table: RouteTable::new(patterns),
        authenticators: loaded.authenticators,
        token_sources: loaded.token_sources,
        max_token_bytes,
        realm,
        cache_entries,
        decision_log: raw.decision_log,
        notes,
        warnings,
        strip_request_headers,
        reserved,
    })
}

/// At most this many names in `upstream_clusters` and `strip_request_headers`.
const MAX_NAMES: usize = 64;

/// `routes[].upstream_clusters`: Envoy cluster names, as `xds.cluster_name` reports them
/// (Istio's look like `outbound|443||kubernetes.default.svc.cluster.local`).
fn upstream_clusters(clusters: Vec<String>, field: &str) -> Result<Vec<String>, ConfigError> {
    if clusters.is_empty() {
        return Err(error(
            field,
            "list at least one cluster, or leave the field out",
        ));
    }
    if clusters.len() > MAX_NAMES {
        return Err(error(field, format!("at most {MAX_NAMES} clusters")));
    }
    let mut out: Vec<String> = Vec::with_capacity(clusters.len());
    for (i, cluster) in clusters.into_iter().enumerate() {
        if cluster.is_empty()
            || cluster.len() > 256
            || cluster.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(error(
                format!("{field}[{i}]"),
                "a cluster name is 1 to 256 characters without spaces or control characters",
            ));
        }
        if out.contains(&cluster) {
            return Err(error(
                format!("{field}[{i}]"),
                format!("{cluster:?} is listed twice"),
            ));
        }
        out.push(cluster);
    }
    Ok(out)
}

/// `strip_request_headers`: RFC 9110 field names, compared in lower case. Names kubegate
/// writes itself cannot be listed: removing them would remove what it sets.
fn strip_request_headers(names: Vec<String>) -> Result<Vec<String>, ConfigError> {
    if names.len() > MAX_NAMES {
        return Err(error(
            "strip_request_headers",
            format!("at most {MAX_NAMES} names"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for (i, name) in names.into_iter().enumerate() {
        let field = format!("strip_request_headers[{i}]");
        if !crate::upstream::is_header_name(&name) {
            return Err(error(
                field,
                format!("{name:?} is not a header name (letters, digits and !#$%&'*+-.^_`|~ only)"),
            ));
        }
        let lower = name.to_ascii_lowercase();
        if crate::upstream::is_set_by_kubegate(&lower) {
            return Err(error(
                field,
                format!("kubegate sets or rewrites {lower:?} itself; it cannot be stripped"),
            ));
        }
        if !out.contains(&lower) {
            out.push(lower);
        }
    }
    Ok(out)
}

/// `reserved_name_prefixes`: each list replaces its default; `system:` is always added.
fn reserved_names(raw: Option<RawReservedPrefixes>) -> Result<ReservedNames, ConfigError> {
    let (users, groups) = match raw {
        None => (None, None),
        Some(raw) => (raw.users, raw.groups),
    };
    let list = |configured: Option<Vec<String>>, field: &str| -> Result<Vec<String>, ConfigError> {
        let Some(configured) = configured else {
            return Ok(ReservedNames::default_prefixes());
        };
        if configured.len() > MAX_NAMES {
            return Err(error(field, format!("at most {MAX_NAMES} prefixes")));
        }
        let mut out = vec![crate::identity::SYSTEM_PREFIX.to_string()];
        for (i, prefix) in configured.into_iter().enumerate() {
            if prefix.is_empty() || prefix.trim() != prefix || prefix.chars().any(char::is_control)
            {
                return Err(error(
                    format!("{field}[{i}]"),
                    "a prefix is not empty and has no surrounding spaces or control characters",
                ));
            }
            if !out.iter().any(|p| p.eq_ignore_ascii_case(&prefix)) {
                out.push(prefix);
            }
        }
        Ok(out)
    };
    Ok(ReservedNames {
        users: list(users, "reserved_name_prefixes.users")?,
        groups: list(groups, "reserved_name_prefixes.groups")?,
    })
}
