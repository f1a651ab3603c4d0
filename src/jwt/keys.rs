//! The set of configured verification keys and how a token picks one.
//!
//! Selection rules (cheap, before any signature work):
//! - A token with a `kid` uses the key with that exact `kid` and the token's
//!   `alg`. No key with that kid: `UnknownKid` (a refetch may help). Keys with
//!   that kid but other algorithms only: `AlgMismatch`.
//! - A token without `kid` is accepted only when exactly one configured key has
//!   its `alg` (`NoKeyForAlg` / `AmbiguousKey` otherwise): no key is ever tried
//!   after another.
//! - A key configured without a kid never matches a token that has one.
//!
//! A (kid, alg) pair is unique in a set; one kid may carry several algorithms
//! (the same RSA key published for RS256 and PS256, say). Two keys without kid
//! for one algorithm are refused: a token could not choose between them.

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

use super::algorithm::Algorithm;
use super::error::{echo, JwtError};
use super::jwk::{parse_jwk, JwkOutcome};
use super::signature::VerifyingKey;

/// More keys than any real issuer publishes; a bigger JWKS is refused rather
/// than held in every VM's memory.
pub const MAX_JWKS_KEYS: usize = 100;

/// Verification keys, each pinned to one algorithm.
///
/// Cloning is cheap (one reference count), so a refreshed remote JWKS can be
/// built aside and swapped in.
#[derive(Clone, Default)]
pub struct KeySet {
    entries: Arc<Vec<KeyEntry>>,
}

#[derive(Clone, Debug)]
struct KeyEntry {
    kid: Option<String>,
    key: VerifyingKey,
}

impl KeySet {
    /// Adds the usable keys of a JWKS (`{"keys": [...]}`) and returns how many.
    ///
    /// Keys of other types, curves, algorithms or uses are skipped with a log
    /// line. A key of a supported type that is malformed, holds private material,
    /// or repeats a (kid, alg) pair makes the whole call fail, naming the key's
    /// index; the set is then left as it was.
    pub fn add_jwks(&mut self, jwks: &Value) -> Result<usize, String> {
        let Some(keys) = jwks.get("keys").and_then(Value::as_array) else {
            return Err("a JWKS is a JSON object with a \"keys\" list".into());
        };
        if keys.len() > MAX_JWKS_KEYS {
            return Err(format!(
                "the JWKS has {} keys; at most {MAX_JWKS_KEYS} are accepted",
                keys.len()
            ));
        }
        let mut staged = KeySet {
            entries: Arc::clone(&self.entries),
        };
        let mut added = 0;
        for (index, jwk) in keys.iter().enumerate() {
            let at = || match jwk.get("kid").and_then(Value::as_str) {
                Some(kid) => format!("keys[{index}] (kid {:?})", echo(kid)),
                None => format!("keys[{index}]"),
            };
            match parse_jwk(jwk).map_err(|problem| format!("{}: {problem}", at()))? {
                JwkOutcome::Key { kid, key } => {
                    staged
                        .insert(kid.as_deref(), *key)
                        .map_err(|problem| format!("{}: {problem}", at()))?;
                    added += 1;
                }
                JwkOutcome::Skipped(reason) => log::info!("JWKS {} skipped: {reason}", at()),
            }
        }
        *self = staged;
        Ok(added)
    }

    /// Adds a public key in PEM for one asymmetric algorithm (e.g. "ES256").
    pub fn add_pem(&mut self, kid: Option<&str>, alg: &str, pem: &str) -> Result<(), String> {
        let alg = parse_alg(alg)?;
        self.insert(kid, VerifyingKey::from_pem(alg, pem)?)
    }

    /// Adds an HMAC secret for HS256, HS384 or HS512; it must be at least as long
    /// as the hash output (32, 48, 64 bytes).
    pub fn add_hmac_secret(
        &mut self,
        kid: Option<&str>,
        alg: &str,
        secret: &[u8],
    ) -> Result<(), String> {
        let alg = parse_alg(alg)?;
        self.insert(kid, VerifyingKey::hmac(alg, secret)?)
    }

    /// How many keys the set holds.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The key ids in the set (keys without a kid are not listed), for logs.
    pub fn kids(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().filter_map(|entry| entry.kid.as_deref())
    }

    /// Adds one key after the uniqueness checks.
    pub(crate) fn insert(&mut self, kid: Option<&str>, key: VerifyingKey) -> Result<(), String> {
        let alg = key.algorithm();
        let clash = self
            .entries
            .iter()
            .any(|entry| entry.kid.as_deref() == kid && entry.key.algorithm() == alg);
        if clash {
            return Err(match kid {
                Some(kid) => format!("a {alg} key with kid {:?} is already configured", echo(kid)),
                None => {
                    format!("a {alg} key without kid is already configured; give each key a kid")
                }
            });
        }
        Arc::make_mut(&mut self.entries).push(KeyEntry {
            kid: kid.map(str::to_owned),
            key,
        });
        Ok(())
    }

    /// The key a token with this `alg` and `kid` must verify with.
    pub(crate) fn select(
        &self,
        alg: Algorithm,
        kid: Option<&str>,
    ) -> Result<&VerifyingKey, JwtError> {
        match kid {
            Some(kid) => {
                let mut other_alg = None;
                for entry in self.entries.iter() {
                    if entry.kid.as_deref() != Some(kid) {
                        continue;
                    }
                    if entry.key.algorithm() == alg {
                        return Ok(&entry.key);
                    }
                    other_alg = Some(entry.key.algorithm());
                }
                Err(match other_alg {
                    Some(key_alg) => JwtError::AlgMismatch {
                        kid: echo(kid),
                        key_alg,
                        token_alg: alg,
                    },
                    None => JwtError::unknown_kid(kid),
                })
            }
            None => {
                let mut candidates = self
                    .entries
                    .iter()
                    .filter(|entry| entry.key.algorithm() == alg);
                match (candidates.next(), candidates.next()) {
                    (Some(only), None) => Ok(&only.key),
                    (None, _) => Err(JwtError::NoKeyForAlg(alg)),
                    (Some(_), Some(_)) => Err(JwtError::AmbiguousKey(alg)),
                }
            }
        }
    }
}

fn parse_alg(name: &str) -> Result<Algorithm, String> {
    Algorithm::from_name(name).ok_or_else(|| {
        format!(
            "unsupported algorithm {:?} (supported: HS256 HS384 HS512 RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA)",
            echo(name)
        )
    })
}

impl fmt::Debug for KeySet {
    /// Key ids and algorithms only: never key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|entry| {
                format!(
                    "{}: {}",
                    entry.kid.as_deref().unwrap_or("(no kid)"),
                    entry.key.algorithm()
                )
            }))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::jwt::test_support::*;
    use serde_json::json;

    #[test]
    fn add_jwks_counts_usable_keys_and_skips_the_rest() {
        let mut set = KeySet::default();
        let jwks = json!({"keys": [
            public_jwk(Algorithm::Es256, "ec"),
            public_jwk(Algorithm::Rs256, "rsa"),
            public_jwk(Algorithm::EdDsa, "ed"),
            {"kty":"oct","k":b64(&hmac_secret(32)),"kid":"secret","alg":"HS256"},
            {"kty":"EC","crv":"P-521","x":"AA","y":"AA","kid":"p521"},
            {"kty":"RSA","use":"enc","n":"AA","e":"AQAB","kid":"enc"},
            {"kty":"X","kid":"x"},
        ]});
        assert_eq!(set.add_jwks(&jwks), Ok(3));
        assert_eq!(set.len(), 3);
        assert_eq!(set.kids().collect::<Vec<_>>(), ["ec", "rsa", "ed"]);
        // The skipped oct key is no key: a token naming it is unknown.
        assert_eq!(
            set.select(Algorithm::Hs256, Some("secret")).unwrap_err(),
            JwtError::unknown_kid("secret")
        );
    }

    #[test]
    fn add_jwks_refuses_malformed_keys_naming_the_index_and_changes_nothing() {
        let mut set = KeySet::default();
        set.add_hmac_secret(Some("h"), "HS256", &hmac_secret(32))
            .expect("secret");
        let mut broken = public_jwk(Algorithm::Es256, "bad");
        broken["x"] = json!("not base64!");
        let jwks = json!({"keys": [public_jwk(Algorithm::Es384, "good"), broken]});
        let error = set.add_jwks(&jwks).unwrap_err();
        assert!(
            error.starts_with("keys[1] (kid \"bad\"): x is not base64url"),
            "{error}"
        );
        assert_eq!(set.len(), 1, "the good key of a refused JWKS is not kept");
    }

    #[test]
    fn add_jwks_needs_a_keys_list_of_bounded_size() {
        let mut set = KeySet::default();
        for bad in [
            json!([]),
            json!({}),
            json!({"keys": {}}),
            json!({"keys": "x"}),
        ] {
            assert!(set.add_jwks(&bad).is_err(), "{bad}");
        }
        assert_eq!(set.add_jwks(&json!({"keys": []})), Ok(0));
        let many = json!({"keys": vec![json!({"kty":"X"}); MAX_JWKS_KEYS + 1]});
        assert!(set.add_jwks(&many).unwrap_err().contains("at most"));
    }

    #[test]
    fn duplicate_kid_and_alg_pairs_are_refused() {
        let mut set = KeySet::default();
        set.add_hmac_secret(Some("k"), "HS256", &hmac_secret(32))
            .expect("first");
        assert!(set
            .add_hmac_secret(Some("k"), "HS256", &hmac_secret(40))
            .unwrap_err()
            .contains("already configured"));
        // The same kid for another algorithm is a different key.
        set.add_hmac_secret(Some("k"), "HS384", &hmac_secret(48))
            .expect("other alg");
        // Duplicates inside one JWKS, and against keys already in the set.
        let jwks =
            json!({"keys": [public_jwk(Algorithm::Es256, "e"), public_jwk(Algorithm::Es256, "e")]});
        assert!(set.add_jwks(&jwks).unwrap_err().starts_with("keys[1]"));
        set.add_pem(Some("e"), "ES256", &es256_public_pem())
            .expect("pem");
        let jwks = json!({"keys": [public_jwk(Algorithm::Es256, "e")]});
        assert!(set.add_jwks(&jwks).unwrap_err().starts_with("keys[0]"));
    }

    #[test]
    fn two_kidless_keys_for_one_algorithm_are_refused() {
        let mut set = KeySet::default();
        set.add_pem(None, "ES256", &es256_public_pem())
            .expect("first");
        assert!(set.add_hmac_secret(None, "HS256", &hmac_secret(32)).is_ok());
        assert!(set
            .add_pem(None, "ES256", &es256_public_pem())
            .unwrap_err()
            .contains("without kid"));
        assert_eq!(set.kids().count(), 0);
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn add_pem_and_add_hmac_secret_check_the_algorithm() {
        let mut set = KeySet::default();
        assert!(set.add_pem(None, "HS256", &es256_public_pem()).is_err());
        assert!(set.add_pem(None, "none", &es256_public_pem()).is_err());
        assert!(set.add_pem(None, "es256", &es256_public_pem()).is_err());
        assert!(set
            .add_hmac_secret(None, "RS256", &hmac_secret(64))
            .is_err());
        assert!(set
            .add_hmac_secret(None, "HS256", &hmac_secret(31))
            .is_err());
        assert!(set
            .add_hmac_secret(None, "HS512", &hmac_secret(63))
            .is_err());
        assert!(set.is_empty());
    }

    #[test]
    fn select_by_kid_then_alg() {
        let set = key_set_with_all_algorithms();
        for alg in Algorithm::ALL {
            assert_eq!(
                set.select(alg, Some(KID)).map(VerifyingKey::algorithm),
                Ok(alg)
            );
        }
        assert_eq!(
            set.select(Algorithm::Es256, Some("other")).unwrap_err(),
            JwtError::unknown_kid("other")
        );
    }

    #[test]
    fn a_kid_with_another_algorithm_is_a_mismatch() {
        let mut set = KeySet::default();
        set.add_pem(Some("rsa"), "RS256", &rsa_public_pem())
            .expect("pem");
        assert_eq!(
            set.select(Algorithm::Hs256, Some("rsa")).unwrap_err(),
            JwtError::AlgMismatch {
                kid: "rsa".into(),
                key_alg: Algorithm::Rs256,
                token_alg: Algorithm::Hs256
            }
        );
    }

    #[test]
    fn kidless_tokens_need_exactly_one_key_for_their_algorithm() {
        let mut set = KeySet::default();
        set.add_pem(Some("a"), "ES256", &es256_public_pem())
            .expect("pem");
        assert!(set.select(Algorithm::Es256, None).is_ok());
        assert_eq!(
            set.select(Algorithm::Rs256, None).unwrap_err(),
            JwtError::NoKeyForAlg(Algorithm::Rs256)
        );
        set.add_jwks(&json!({"keys": [public_jwk(Algorithm::Es256, "b")]}))
            .expect("jwks");
        assert_eq!(
            set.select(Algorithm::Es256, None).unwrap_err(),
            JwtError::AmbiguousKey(Algorithm::Es256)
        );
    }

    #[test]
    fn a_kidless_key_does_not_answer_a_token_with_a_kid() {
        let mut set = KeySet::default();
        set.add_pem(None, "ES256", &es256_public_pem())
            .expect("pem");
        assert!(set.select(Algorithm::Es256, None).is_ok());
        assert_eq!(
            set.select(Algorithm::Es256, Some("k")).unwrap_err(),
            JwtError::unknown_kid("k")
        );
    }

    #[test]
    fn clones_share_keys_and_later_additions_do_not_leak_into_clones() {
        let mut set = KeySet::default();
        set.add_pem(Some("a"), "ES256", &es256_public_pem())
            .expect("pem");
        let snapshot = set.clone();
        assert!(Arc::ptr_eq(&snapshot.entries, &set.entries));
        set.add_pem(Some("b"), "ES256", &es256_public_pem())
            .expect("pem");
        assert_eq!(snapshot.len(), 1);
        assert_eq!(set.len(), 2);
    }

    #[test]
    fn debug_lists_kids_and_algorithms_only() {
        let mut set = KeySet::default();
        let secret = b"0123456789abcdef0123456789abcdef";
        set.add_hmac_secret(Some("h"), "HS256", secret)
            .expect("secret");
        set.add_pem(None, "ES256", &es256_public_pem())
            .expect("pem");
        let shown = format!("{set:?}");
        assert_eq!(shown, r#"["h: HS256", "(no kid): ES256"]"#);
    }
}
