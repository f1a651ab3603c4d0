//! An authenticator's `keys`: inline (a JWKS, PEM keys, HMAC secrets from the
//! environment) and remote (a JWKS fetched through an Envoy cluster, from a fixed path or
//! by OpenID discovery). Every key belongs to its authenticator's issuer only.

use crate::config::{error, ConfigError, EnvLookup};
use crate::jwks::discovery;
use crate::jwks::settings::{self as remote, KeySource, RemoteJwksSettings};
use crate::jwt::KeySet;
use base64::Engine;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKeys {
    #[serde(default)]
    jwks: Option<serde_json::Value>,
    #[serde(default)]
    pem: Vec<RawPemKey>,
    #[serde(default)]
    hmac: Vec<RawHmacSecret>,
    #[serde(default)]
    pub(super) remote: Option<RawRemoteKeys>,
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

/// Keys fetched through an Envoy cluster (src/jwks/ documents the fetching); bounds and
/// defaults are in src/jwks/settings.rs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRemoteKeys {
    /// The Envoy cluster the fetch goes through (dispatch_http_call).
    cluster: String,
    /// A fixed JWKS path (Pomerium: `/.well-known/pomerium/jwks.json`). Without it the
    /// keys come from OpenID discovery at `issuer.discoveryURL`, or the issuer's
    /// `/.well-known/openid-configuration`.
    #[serde(default)]
    path: Option<String>,
    /// The `:authority` of a `path` fetch; default: the issuer's host.
    #[serde(default)]
    authority: Option<String>,
    #[serde(default)]
    refresh_seconds: Option<u64>,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default)]
    max_stale_seconds: Option<u64>,
    #[serde(default)]
    refetch_min_interval_seconds: Option<u64>,
    #[serde(default)]
    max_response_bytes: Option<usize>,
    #[serde(default)]
    poll_interval_ms: Option<u64>,
}

pub(super) fn inline_keys(raw: &RawKeys, at: &str, env: EnvLookup) -> Result<KeySet, ConfigError> {
    let mut keys = KeySet::default();
    if let Some(jwks) = &raw.jwks {
        keys.add_jwks(jwks)
            .map_err(|p| error(format!("{at}.jwks"), p))?;
    }
    for (i, pem) in raw.pem.iter().enumerate() {
        keys.add_pem(pem.kid.as_deref(), &pem.alg, &pem.pem)
            .map_err(|p| error(format!("{at}.pem[{i}]"), p))?;
    }
    for (i, hmac) in raw.hmac.iter().enumerate() {
        let at = format!("{at}.hmac[{i}]");
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
            .map_err(|p| error(at, p))?;
    }
    Ok(keys)
}

/// A number from the configuration, its default when absent, refused outside `range`.
fn bounded<T: Copy + PartialOrd + std::fmt::Display>(
    value: Option<T>,
    default: T,
    (min, max): (T, T),
    at: &str,
) -> Result<T, ConfigError> {
    let value = value.unwrap_or(default);
    if value < min || value > max {
        return Err(error(at, format!("must be between {min} and {max}")));
    }
    Ok(value)
}

pub(super) fn remote_settings(
    raw: RawRemoteKeys,
    at: &str,
    issuer: &str,
    discovery_url: Option<&str>,
    issuer_host_only: bool,
) -> Result<RemoteJwksSettings, ConfigError> {
    let field = |name: &str| format!("{at}.{name}");
    if !remote::is_cluster_name(&raw.cluster) {
        return Err(error(field("cluster"), "not an Envoy cluster name"));
    }
    let issuer_host = if issuer_host_only {
        issuer.to_string()
    } else {
        discovery::discovery_location(issuer)
            .map(|(authority, _)| authority)
            .map_err(|p| error(at, p))?
    };
    let (authority, source) = match raw.path {
        Some(path) => {
            if !remote::is_request_path(&path) {
                return Err(error(
                    field("path"),
                    "an absolute request path (\"/...\", no spaces or fragment)",
                ));
            }
            (raw.authority.unwrap_or(issuer_host), KeySource::Path(path))
        }
        None => {
            if raw.authority.is_some() {
                return Err(error(
                    field("authority"),
                    "only with path: discovery fetches from the issuer's (or discoveryURL's) host",
                ));
            }
            if issuer_host_only {
                return Err(error(
                    field("path"),
                    "required when the issuer is a host name (there is no discovery document)",
                ));
            }
            let (authority, discovery_path) = match discovery_url {
                Some(url) => discovery::split_https_url(url).map_err(|p| error(at, p))?,
                None => discovery::discovery_location(issuer).map_err(|p| error(at, p))?,
            };
            (
                authority,
                KeySource::OidcIssuer {
                    issuer: issuer.to_string(),
                    discovery_path,
                },
            )
        }
    };
    if !remote::is_authority(&authority) {
        return Err(error(field("authority"), "a host or host:port"));
    }
    let refresh_seconds = bounded(
        raw.refresh_seconds,
        remote::DEFAULT_REFRESH_SECONDS,
        remote::REFRESH_SECONDS_RANGE,
        &field("refresh_seconds"),
    )?;
    let timeout_ms = bounded(
        raw.timeout_ms,
        remote::DEFAULT_TIMEOUT_MS,
        remote::TIMEOUT_MS_RANGE,
        &field("timeout_ms"),
    )?;
    if timeout_ms >= refresh_seconds.saturating_mul(1000) {
        return Err(error(
            field("timeout_ms"),
            "must be shorter than refresh_seconds",
        ));
    }
    let max_stale_seconds = bounded(
        raw.max_stale_seconds,
        remote::DEFAULT_MAX_STALE_SECONDS.max(refresh_seconds),
        (refresh_seconds, remote::MAX_STALE_SECONDS_LIMIT),
        &field("max_stale_seconds"),
    )?;
    let refetch_min_interval_seconds = bounded(
        raw.refetch_min_interval_seconds,
        remote::DEFAULT_REFETCH_MIN_INTERVAL_SECONDS,
        remote::REFETCH_MIN_INTERVAL_SECONDS_RANGE,
        &field("refetch_min_interval_seconds"),
    )?;
    let max_response_bytes = bounded(
        raw.max_response_bytes,
        remote::DEFAULT_MAX_RESPONSE_BYTES,
        remote::MAX_RESPONSE_BYTES_RANGE,
        &field("max_response_bytes"),
    )?;
    let poll_interval_ms = bounded(
        raw.poll_interval_ms,
        remote::DEFAULT_POLL_INTERVAL_MS,
        remote::POLL_INTERVAL_MS_RANGE,
        &field("poll_interval_ms"),
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
