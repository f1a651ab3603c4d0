//! One authenticator's compiled `keys.remote`: where its key set comes from and how
//! often, with the bounds src/authn/keys.rs enforces.

/// Where the JWKS document is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeySource {
    /// A fixed path on `authority` (e.g. Pomerium's `/.well-known/pomerium/jwks.json`).
    Path(String),
    /// OpenID Connect discovery: the issuer's `/.well-known/openid-configuration` names
    /// `jwks_uri`, which must be https on the same authority (discovery.rs says why).
    OidcIssuer {
        issuer: String,
        discovery_path: String,
    },
}

/// How the remote key set is fetched, shared and aged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteJwksSettings {
    /// The Envoy cluster `dispatch_http_call` goes through.
    pub cluster: String,
    /// The `:authority` of the requests (the IdP's host, as its certificate names it).
    pub authority: String,
    pub source: KeySource,
    pub refresh_seconds: u64,
    /// Per HTTP call; also how long a request waits for a key set it needs.
    pub timeout_ms: u64,
    /// How long a fetched set may be used after fetches start failing.
    pub max_stale_seconds: u64,
    /// At most one unknown-kid refetch per this interval, across all VMs.
    pub refetch_min_interval_seconds: u64,
    pub max_response_bytes: usize,
    /// How often each VM looks at the shared state (adopts a new set, times out waiters).
    pub poll_interval_ms: u64,
}

pub const DEFAULT_REFRESH_SECONDS: u64 = 300;
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
pub const DEFAULT_MAX_STALE_SECONDS: u64 = 24 * 3600;
pub const DEFAULT_REFETCH_MIN_INTERVAL_SECONDS: u64 = 30;
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024;
pub const DEFAULT_POLL_INTERVAL_MS: u64 = 1_000;

/// Bounds, inclusive. Below the minimums an IdP would be hammered (or a slow one never
/// answer in time); above the maximums a revoked key would live on too long.
pub const REFRESH_SECONDS_RANGE: (u64, u64) = (10, 86_400);
pub const TIMEOUT_MS_RANGE: (u64, u64) = (100, 60_000);
pub const MAX_STALE_SECONDS_LIMIT: u64 = 30 * 86_400;
pub const REFETCH_MIN_INTERVAL_SECONDS_RANGE: (u64, u64) = (1, 3_600);
pub const MAX_RESPONSE_BYTES_RANGE: (usize, usize) = (1024, 4 * 1024 * 1024);
pub const POLL_INTERVAL_MS_RANGE: (u64, u64) = (10, 60_000);

/// Margin on top of the call timeouts before a lease counts as abandoned (a VM that
/// vanished mid-fetch), so a slow but live fetch is never taken over.
const LEASE_MARGIN_MS: u64 = 5_000;

impl RemoteJwksSettings {
    /// The HTTP calls one fetch makes: discovery first when configured.
    pub fn calls_per_fetch(&self) -> u64 {
        match self.source {
            KeySource::Path(_) => 1,
            KeySource::OidcIssuer { .. } => 2,
        }
    }

    /// How long a fetch lease is held before another VM may take over.
    pub fn lease_ms(&self) -> u64 {
        self.timeout_ms
            .saturating_mul(self.calls_per_fetch())
            .saturating_add(LEASE_MARGIN_MS)
    }

    /// How long a request may wait for a key set: the whole fetch, not one call.
    pub fn wait_ms(&self) -> u64 {
        self.timeout_ms.saturating_mul(self.calls_per_fetch())
    }

    pub fn refresh_ms(&self) -> u64 {
        self.refresh_seconds.saturating_mul(1000)
    }

    pub fn max_stale_ms(&self) -> u64 {
        self.max_stale_seconds.saturating_mul(1000)
    }

    pub fn refetch_min_interval_ms(&self) -> u64 {
        self.refetch_min_interval_seconds.saturating_mul(1000)
    }

    /// The prefix of this source's shared-data keys. Derived from where the keys come
    /// from, so VMs (and plugins sharing a vm_id) fetching the same set share one
    /// fetch, and a reconfiguration to another source never adopts the old set.
    pub fn shared_key_prefix(&self) -> String {
        format!("kubegate.jwks.{:016x}", self.source_id())
    }

    /// A number naming where the keys come from (cluster, authority, path or issuer):
    /// equal for two configurations, or two authenticators, that fetch the same set.
    /// Requests waiting for a set are filed under it.
    pub fn source_id(&self) -> u64 {
        let source = match &self.source {
            KeySource::Path(path) => format!("path\0{path}"),
            KeySource::OidcIssuer { issuer, .. } => format!("oidc\0{issuer}"),
        };
        let digest = hmac_sha256::Hash::hash(
            format!("{}\0{}\0{source}", self.cluster, self.authority).as_bytes(),
        );
        u64::from_be_bytes(digest.first_chunk().copied().unwrap_or_default())
    }

    /// Shared-data key of the small coordination record (coordination.rs).
    pub fn state_key(&self) -> String {
        format!("{}.state", self.shared_key_prefix())
    }

    /// Shared-data key of the published JWKS body.
    pub fn keys_key(&self) -> String {
        format!("{}.keys", self.shared_key_prefix())
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

/// Whether `authority` is a plain `host` or `host:port` (no scheme, path, user info or
/// whitespace): what `:authority` may carry.
pub fn is_authority(authority: &str) -> bool {
    let (host, port) = match authority.rsplit_once(':') {
        // A bracketed IPv6 literal has colons of its own.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner.strip_suffix(']').is_some_and(|ip| {
            !ip.is_empty()
                && ip
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        })
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    };
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok()
    });
    host_ok && port_ok
}

/// Whether `path` can be a request `:path`: absolute, visible ASCII, no fragment.
pub fn is_request_path(path: &str) -> bool {
    path.starts_with('/') && !path.contains('#') && path.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Whether `name` can name an Envoy cluster (Istio's `outbound|443||host` included).
pub fn is_cluster_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 512 && name.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn settings(source: KeySource) -> RemoteJwksSettings {
        RemoteJwksSettings {
            cluster: "idp".into(),
            authority: "idp.example.com".into(),
            source,
            refresh_seconds: 300,
            timeout_ms: 2_000,
            max_stale_seconds: 3_600,
            refetch_min_interval_seconds: 30,
            max_response_bytes: 4096,
            poll_interval_ms: 1_000,
        }
    }

    #[test]
    fn a_discovery_fetch_has_two_calls_to_wait_for() {
        let path = settings(KeySource::Path("/jwks".into()));
        assert_eq!((path.wait_ms(), path.lease_ms()), (2_000, 7_000));
        let oidc = settings(KeySource::OidcIssuer {
            issuer: "https://idp.example.com".into(),
            discovery_path: "/.well-known/openid-configuration".into(),
        });
        assert_eq!((oidc.wait_ms(), oidc.lease_ms()), (4_000, 9_000));
    }

    #[test]
    fn shared_keys_depend_on_the_source_only() {
        let a = settings(KeySource::Path("/jwks".into()));
        let mut b = a.clone();
        b.refresh_seconds = 10;
        assert_eq!(a.state_key(), b.state_key());
        b.source = KeySource::Path("/other".into());
        assert_ne!(a.state_key(), b.state_key());
        let mut c = a.clone();
        c.cluster = "other".into();
        assert_ne!(a.keys_key(), c.keys_key());
        assert!(a.state_key().starts_with("kubegate.jwks.") && a.state_key().ends_with(".state"));
        assert_eq!(
            a.state_key().len(),
            "kubegate.jwks.".len() + 16 + ".state".len()
        );
        let mut slower = a.clone();
        slower.poll_interval_ms = 5_000;
        assert_eq!(a.source_id(), slower.source_id());
        assert_ne!(a.source_id(), b.source_id());
        assert_ne!(a.source_id(), c.source_id());
        assert_eq!(
            a.shared_key_prefix(),
            format!("kubegate.jwks.{:016x}", a.source_id())
        );
    }

    #[test]
    fn authorities_paths_and_cluster_names() {
        for good in [
            "idp.example.com",
            "idp.example.com:8443",
            "127.0.0.1:9",
            "[::1]:443",
            "[::1]",
            "a_b",
        ] {
            assert!(is_authority(good), "{good}");
        }
        for bad in [
            "",
            "https://idp",
            "idp/x",
            "idp:",
            "idp:99999",
            "a b",
            "u@idp",
            "[::1",
            "idp:x",
        ] {
            assert!(!is_authority(bad), "{bad}");
        }
        assert!(is_request_path("/.well-known/jwks.json?x=1"));
        for bad in ["", "jwks", "/a b", "/a#b", "/\u{e9}"] {
            assert!(!is_request_path(bad), "{bad}");
        }
        assert!(is_cluster_name("outbound|443||idp.example.com"));
        assert!(!is_cluster_name("") && !is_cluster_name("a b"));
    }

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(hex(&[0x00, 0xab, 0x7f]), "00ab7f");
    }
}
