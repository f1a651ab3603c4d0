//! Who a request is from: the user model and the bearer-token authenticator.
//!
//! The stand-in knows exactly one credential, a service account's token, like a cluster
//! whose only client is the gateway. Anonymous requests are not enabled: a missing or
//! unknown token is a 401, as the brief for the stand-in asks.

use std::collections::BTreeMap;

use serde::Serialize;

/// The group every authenticated user is in.
pub const ALL_AUTHENTICATED: &str = "system:authenticated";
/// The group of anonymous users.
pub const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
/// The anonymous user's name.
pub const ANONYMOUS: &str = "system:anonymous";
/// `serviceaccount.ServiceAccountUsernamePrefix`.
pub const SERVICE_ACCOUNT_PREFIX: &str = "system:serviceaccount:";

/// `user.Info`: what the authorizer and the reviews see.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UserInfo {
    pub username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// A user with a name and nothing else.
    pub fn named(username: &str) -> Self {
        UserInfo {
            username: username.to_string(),
            ..UserInfo::default()
        }
    }

    /// A service account as its token authenticates it: the `system:serviceaccount:NS:NAME`
    /// user in `system:serviceaccounts`, `system:serviceaccounts:NS` and
    /// `system:authenticated`. Real tokens also carry a uid; this one is derived from the
    /// name so it is stable across runs.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        let mut groups = service_account_groups(namespace);
        groups.push(ALL_AUTHENTICATED.to_string());
        UserInfo {
            username: service_account_username(namespace, name),
            uid: stable_uid(&format!("serviceaccount/{namespace}/{name}")),
            groups,
            extra: BTreeMap::new(),
        }
    }
}

/// `serviceaccount.MakeUsername`.
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}")
}

/// `serviceaccount.MakeGroupNames`.
pub fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{namespace}"),
    ]
}

/// `serviceaccount.SplitUsername`: `system:serviceaccount:NS:NAME` with a valid namespace
/// (DNS-1123 label) and name (DNS-1123 subdomain); anything else is a plain user name.
pub fn split_service_account_username(username: &str) -> Option<(String, String)> {
    let rest = username.strip_prefix(SERVICE_ACCOUNT_PREFIX)?;
    let parts: Vec<&str> = rest.split(':').collect();
    let [namespace, name] = parts.as_slice() else {
        return None;
    };
    if is_dns1123_label(namespace) && is_dns1123_subdomain(name) {
        Some((namespace.to_string(), name.to_string()))
    } else {
        None
    }
}

/// A lower-case RFC 1123 label of at most 63 characters.
pub fn is_dns1123_label(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// A lower-case RFC 1123 subdomain of at most 253 characters.
pub fn is_dns1123_subdomain(value: &str) -> bool {
    value.len() <= 253
        && value.split('.').all(|label| {
            let bytes = label.as_bytes();
            !bytes.is_empty()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
                && bytes[0] != b'-'
                && bytes[bytes.len() - 1] != b'-'
        })
}

/// The bearer token as the API server's authenticator reads it: the first
/// `Authorization` value, trimmed, split on single spaces; the scheme `bearer` in any case;
/// an empty token is no token.
pub fn bearer_token(authorization: Option<&[u8]>) -> Option<String> {
    let value = std::str::from_utf8(authorization?).ok()?.trim();
    let mut parts = value.splitn(3, ' ');
    let scheme = parts.next()?;
    let token = parts.next()?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return None;
    }
    Some(token.to_string())
}

/// The prefix of a bearer token carried as a WebSocket subprotocol (for browsers, which
/// cannot set headers on a WebSocket).
pub const WEBSOCKET_TOKEN_PROTOCOL_PREFIX: &str = "base64url.bearer.authorization.k8s.io.";

/// Tokens offered as `Sec-WebSocket-Protocol: base64url.bearer.authorization.k8s.io.<token
/// in unpadded base64url>` on a WebSocket upgrade. The API server's union authenticator
/// tries these after the `Authorization` header, so either can authenticate the request.
pub fn websocket_protocol_tokens(headers: &hyper::HeaderMap) -> Vec<String> {
    use base64::Engine;
    let upgrade = headers
        .get_all("upgrade")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| {
            value
                .split(',')
                .any(|token| token.trim().eq_ignore_ascii_case("websocket"))
        });
    if !upgrade {
        return Vec::new();
    }
    headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .filter_map(|protocol| {
            protocol
                .trim()
                .strip_prefix(WEBSOCKET_TOKEN_PROTOCOL_PREFIX)
        })
        .filter_map(|encoded| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(encoded)
                .ok()
        })
        .filter_map(|token| String::from_utf8(token).ok())
        .filter(|token| !token.is_empty())
        .collect()
}

/// A UUID-shaped identifier derived from a name, so seeded objects and the service
/// account keep their uid from one run to the next.
pub fn stable_uid(seed: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, seed.as_bytes());
    let b = digest.as_ref();
    format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-4{:01x}{:02x}-{:01x}{:01x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[0], b[1], b[2], b[3], b[4], b[5], b[6] & 0x0f, b[7], 8 | (b[8] & 0x03), b[8] >> 4, b[9],
        b[10], b[11], b[12], b[13], b[14], b[15]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_token_follows_the_api_server() {
        assert_eq!(bearer_token(Some(b"Bearer abc")), Some("abc".into()));
        assert_eq!(bearer_token(Some(b"bearer abc")), Some("abc".into()));
        assert_eq!(bearer_token(Some(b"  Bearer abc  ")), Some("abc".into()));
        assert_eq!(bearer_token(Some(b"Bearer abc extra")), Some("abc".into()));
        assert_eq!(bearer_token(Some(b"Bearer  abc")), None);
        assert_eq!(bearer_token(Some(b"Basic abc")), None);
        assert_eq!(bearer_token(Some(b"Bearer")), None);
        assert_eq!(bearer_token(None), None);
    }

    #[test]
    fn service_account_usernames_split_only_when_valid() {
        assert_eq!(
            split_service_account_username("system:serviceaccount:kube-system:default"),
            Some(("kube-system".into(), "default".into()))
        );
        assert_eq!(
            split_service_account_username("system:serviceaccount:ns"),
            None
        );
        assert_eq!(
            split_service_account_username("system:serviceaccount:a:b:c"),
            None
        );
        assert_eq!(
            split_service_account_username("system:serviceaccount:NS:x"),
            None
        );
        assert_eq!(split_service_account_username("someone@example.com"), None);
    }

    #[test]
    fn service_account_identity() {
        let user = UserInfo::service_account("kubegate-system", "kubegate");
        assert_eq!(
            user.username,
            "system:serviceaccount:kubegate-system:kubegate"
        );
        assert_eq!(
            user.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:kubegate-system",
                "system:authenticated"
            ]
        );
        assert_eq!(user.uid.len(), 36);
        assert_eq!(
            user.uid,
            UserInfo::service_account("kubegate-system", "kubegate").uid
        );
    }
}
