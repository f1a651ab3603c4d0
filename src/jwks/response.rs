//! Judging an answer from the key source: only a 200 with a bounded JSON key set that
//! holds at least one usable key replaces what is in use. Anything else is a failed
//! fetch (logged and counted), and the last good set stays until it goes stale.

use crate::jwt::KeySet;
use serde_json::Value;

/// Why a fetch did not produce a key set. `Display` is the log line's reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchFailure {
    /// The proxy refused to send the call (unknown cluster, say).
    Dispatch(String),
    /// The call ended without a response (reset): the proxy gives no headers.
    NoResponse,
    /// A status other than 200 (the proxy's own 503/504 for unreachable or slow).
    Status(String),
    TooLarge {
        size: usize,
        limit: usize,
    },
    Empty,
    NotJson(String),
    /// JSON, but not a key set this filter can use (shape, private keys, clashes).
    Unusable(String),
    /// A key set without a single key of a supported type and algorithm.
    NoUsableKeys,
    /// OpenID Connect discovery failed (discovery.rs gives the reason).
    Discovery(String),
}

impl std::fmt::Display for FetchFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchFailure::Dispatch(why) => write!(f, "the proxy did not send the request: {why}"),
            FetchFailure::NoResponse => f.write_str("no response (connection reset)"),
            FetchFailure::Status(status) => write!(f, "HTTP status {status:?}, not 200"),
            FetchFailure::TooLarge { size, limit } => {
                write!(f, "response of {size} bytes, over the {limit}-byte limit")
            }
            FetchFailure::Empty => f.write_str("empty response body"),
            FetchFailure::NotJson(why) => write!(f, "response is not JSON: {why}"),
            FetchFailure::Unusable(why) => write!(f, "unusable key set: {why}"),
            FetchFailure::NoUsableKeys => f.write_str("the key set has no usable key"),
            FetchFailure::Discovery(why) => write!(f, "OpenID discovery: {why}"),
        }
    }
}

/// The first `:status` value, if the answer had headers at all.
pub fn check_status(status: Option<&str>) -> Result<(), FetchFailure> {
    match status {
        Some("200") => Ok(()),
        Some(other) => Err(FetchFailure::Status(super::shorten(other))),
        None => Err(FetchFailure::Status("(none)".into())),
    }
}

/// Checked before the body is read, so an oversized answer is never copied into the VM.
pub fn check_size(body_size: usize, limit: usize) -> Result<(), FetchFailure> {
    if body_size > limit {
        return Err(FetchFailure::TooLarge {
            size: body_size,
            limit,
        });
    }
    if body_size == 0 {
        return Err(FetchFailure::Empty);
    }
    Ok(())
}

/// A validated remote key set, combined with the configured inline keys.
#[derive(Clone, Debug)]
pub struct ParsedKeySet {
    /// Inline keys plus the remote ones: what requests verify with.
    pub combined: KeySet,
    /// How many keys the remote set contributed.
    pub remote_keys: usize,
}

/// Parses a JWKS body and adds its keys to (a copy of) `inline`. A remote key that
/// repeats an inline (kid, alg) pair refuses the whole set: which one would a token
/// mean?
pub fn parse_key_set(body: &[u8], inline: &KeySet) -> Result<ParsedKeySet, FetchFailure> {
    if body.is_empty() {
        return Err(FetchFailure::Empty);
    }
    let jwks: Value =
        serde_json::from_slice(body).map_err(|e| FetchFailure::NotJson(e.to_string()))?;
    let mut combined = inline.clone();
    let remote_keys = combined.add_jwks(&jwks).map_err(FetchFailure::Unusable)?;
    if remote_keys == 0 {
        return Err(FetchFailure::NoUsableKeys);
    }
    Ok(ParsedKeySet {
        combined,
        remote_keys,
    })
}

/// The identity of a published body: VMs compare it to decide whether to adopt.
pub fn content_hash(body: &[u8]) -> String {
    super::settings::hex(&hmac_sha256::Hash::hash(body)[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    // The development key's public half (filter-config/dev.json).
    fn dev_jwk(kid: &str) -> Value {
        json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
               "x": "sT3PZVStnJ35TFGvjqYEDGu7iWFc34QC8JapZYrMNuk",
               "y": "GkCKnI-3ObUSOHNjRJKO2M3pzqk8StcycBm3G-0MlrI"})
    }

    #[test]
    fn only_a_200_with_a_bounded_body_is_read() {
        assert_eq!(check_status(Some("200")), Ok(()));
        for status in [Some("503"), Some("504"), Some("301"), Some(""), None] {
            assert!(check_status(status).is_err(), "{status:?}");
        }
        let long = "9".repeat(500);
        let FetchFailure::Status(shown) = check_status(Some(&long)).unwrap_err() else {
            panic!("a status failure")
        };
        assert!(shown.len() < 100);
        assert_eq!(check_size(10, 10), Ok(()));
        assert_eq!(
            check_size(11, 10),
            Err(FetchFailure::TooLarge {
                size: 11,
                limit: 10
            })
        );
        assert_eq!(check_size(0, 10), Err(FetchFailure::Empty));
    }

    #[test]
    fn a_key_set_adds_to_the_inline_keys() {
        let mut inline = KeySet::default();
        inline
            .add_hmac_secret(Some("h"), "HS256", &[7u8; 32])
            .expect("secret");
        let body = json!({"keys": [dev_jwk("remote-1")]}).to_string();
        let parsed = parse_key_set(body.as_bytes(), &inline).unwrap();
        assert_eq!(parsed.remote_keys, 1);
        assert_eq!(parsed.combined.len(), 2);
        assert_eq!(inline.len(), 1, "the inline set itself is not changed");
    }

    #[test]
    fn garbage_empty_and_keyless_sets_are_refused() {
        let inline = KeySet::default();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"".to_vec(), "empty"),
            (b"<html>oops</html>".to_vec(), "not JSON"),
            (b"{\"keys\": [".to_vec(), "not JSON"),
            (b"[]".to_vec(), "unusable"),
            (b"{\"keys\": {}}".to_vec(), "unusable"),
            (b"{\"keys\": []}".to_vec(), "no usable key"),
            (
                json!({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]})
                    .to_string()
                    .into_bytes(),
                "no usable key",
            ),
            (
                json!({"keys": [dev_jwk("a"), dev_jwk("a")]})
                    .to_string()
                    .into_bytes(),
                "unusable",
            ),
        ];
        for (body, expected) in cases {
            let failure = parse_key_set(&body, &inline).unwrap_err();
            assert!(
                failure.to_string().contains(expected),
                "{:?}: {failure}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn a_remote_key_that_repeats_an_inline_one_refuses_the_set() {
        let mut inline = KeySet::default();
        inline
            .add_jwks(&json!({"keys": [dev_jwk("same")]}))
            .expect("inline");
        let body = json!({"keys": [dev_jwk("same")]}).to_string();
        assert!(matches!(
            parse_key_set(body.as_bytes(), &inline),
            Err(FetchFailure::Unusable(_))
        ));
    }

    #[test]
    fn content_hash_tells_bodies_apart() {
        assert_eq!(content_hash(b"a"), content_hash(b"a"));
        assert_ne!(content_hash(b"a"), content_hash(b"a "));
        assert_eq!(content_hash(b"a").len(), 32);
    }
}
