//! One verification key, pinned to one algorithm, and its signature check
//! through jwt-simple.
//!
//! The pinning is structural: a `VerifyingKey::Rs256` holds an RSA public key and
//! can only run RS256, so no header can make an RSA key act as an HMAC secret.
//!
//! jwt-simple offers signature checks only through `verify_token`, which also
//! parses the payload as JWT claims (and would read the system clock). We need
//! the signature verdict alone: JWS payloads need not be JSON (the Wycheproof and
//! RFC vectors sign "foo"), and our own claim rules run afterwards on the proxy's
//! clock. jwt-simple's order is fixed: header parse, header checks, signature,
//! then claims parse and checks. So the verdict is read as follows:
//! - `Ok`: signature good.
//! - a `serde_json` error: the claims parse failed, which happens only after the
//!   signature passed, *provided the header parse cannot fail*; we make sure of
//!   that by running jwt-simple's own header parser (`Token::decode_metadata`,
//!   same code, same input) first and refusing the token if it fails.
//! - anything else: refused (bad signature, or a header rule of jwt-simple's).
//!
//! Claim checks inside jwt-simple are neutralised (time fixed at 0 with no
//! tolerance, futures accepted), so they can neither fail nor read a clock.
//! Unknown errors fail closed; the Wycheproof vectors in tests/jwt_vectors.rs
//! pin the behaviour against a jwt-simple upgrade.

use jwt_simple::prelude::*;
use jwt_simple::reexports::serde_json as jwt_simple_json;

use super::algorithm::Algorithm;
use super::error::JwtError;
use super::roca::has_roca_fingerprint;

/// RSA moduli accepted, in bits (jwt-simple's limits, checked here for clearer
/// messages). Below 2048 is breakable; above 4096 makes each check slow.
const MIN_RSA_BITS: usize = 2048;
const MAX_RSA_BITS: usize = 4096;

/// The only RSA public exponent jwt-simple accepts (and nearly all issuers use).
const RSA_EXPONENT_65537: [u8; 3] = [1, 0, 1];

/// A public key or HMAC secret that verifies exactly one algorithm.
#[derive(Clone)]
pub(crate) enum VerifyingKey {
    Hs256(HS256Key),
    Hs384(HS384Key),
    Hs512(HS512Key),
    Rs256(RS256PublicKey),
    Rs384(RS384PublicKey),
    Rs512(RS512PublicKey),
    Ps256(PS256PublicKey),
    Ps384(PS384PublicKey),
    Ps512(PS512PublicKey),
    Es256(ES256PublicKey),
    Es384(ES384PublicKey),
    EdDsa(Ed25519PublicKey),
}

impl VerifyingKey {
    /// The one algorithm this key verifies.
    pub(crate) fn algorithm(&self) -> Algorithm {
        match self {
            VerifyingKey::Hs256(_) => Algorithm::Hs256,
            VerifyingKey::Hs384(_) => Algorithm::Hs384,
            VerifyingKey::Hs512(_) => Algorithm::Hs512,
            VerifyingKey::Rs256(_) => Algorithm::Rs256,
            VerifyingKey::Rs384(_) => Algorithm::Rs384,
            VerifyingKey::Rs512(_) => Algorithm::Rs512,
            VerifyingKey::Ps256(_) => Algorithm::Ps256,
            VerifyingKey::Ps384(_) => Algorithm::Ps384,
            VerifyingKey::Ps512(_) => Algorithm::Ps512,
            VerifyingKey::Es256(_) => Algorithm::Es256,
            VerifyingKey::Es384(_) => Algorithm::Es384,
            VerifyingKey::EdDsa(_) => Algorithm::EdDsa,
        }
    }

    /// An HMAC secret; at least as long as the hash output (RFC 7518 section 3.2).
    pub(crate) fn hmac(alg: Algorithm, secret: &[u8]) -> Result<Self, String> {
        let Some(min) = alg.min_hmac_secret_bytes() else {
            return Err(format!(
                "{alg} is not an HMAC algorithm (HS256, HS384, HS512)"
            ));
        };
        if secret.len() < min {
            return Err(format!(
                "an {alg} secret must be at least {min} bytes (RFC 7518 section 3.2); this one has {}",
                secret.len()
            ));
        }
        Ok(match alg {
            Algorithm::Hs256 => VerifyingKey::Hs256(HS256Key::from_bytes(secret)),
            Algorithm::Hs384 => VerifyingKey::Hs384(HS384Key::from_bytes(secret)),
            _ => VerifyingKey::Hs512(HS512Key::from_bytes(secret)),
        })
    }

    /// An EC public key from its affine coordinates (JWK `x`, `y`), big-endian,
    /// each exactly the field size (RFC 7518 section 6.2.1.2).
    pub(crate) fn ec(alg: Algorithm, x: &[u8], y: &[u8]) -> Result<Self, String> {
        let size = match alg {
            Algorithm::Es256 => 32,
            Algorithm::Es384 => 48,
            _ => return Err(format!("{alg} is not an EC algorithm (ES256, ES384)")),
        };
        if x.len() != size || y.len() != size {
            return Err(format!(
                "{alg} coordinates must be {size} bytes each (x has {}, y has {})",
                x.len(),
                y.len()
            ));
        }
        // SEC1 uncompressed point; jwt-simple (p256/p384) checks it is on the curve.
        let mut point = Vec::with_capacity(1 + 2 * size);
        point.push(0x04);
        point.extend_from_slice(x);
        point.extend_from_slice(y);
        let invalid = |_| format!("not a valid {alg} public key (point not on the curve)");
        Ok(match alg {
            Algorithm::Es256 => {
                VerifyingKey::Es256(ES256PublicKey::from_bytes(&point).map_err(invalid)?)
            }
            _ => VerifyingKey::Es384(ES384PublicKey::from_bytes(&point).map_err(invalid)?),
        })
    }

    /// An Ed25519 public key (JWK `x`, 32 bytes).
    pub(crate) fn ed25519(x: &[u8]) -> Result<Self, String> {
        if x.len() != 32 {
            return Err(format!(
                "an Ed25519 key is 32 bytes; this one has {}",
                x.len()
            ));
        }
        Ed25519PublicKey::from_bytes(x)
            .map(VerifyingKey::EdDsa)
            .map_err(|_| "not a valid Ed25519 public key (weak or malformed point)".to_string())
    }

    /// An RSA public key from modulus and exponent (big-endian).
    pub(crate) fn rsa(alg: Algorithm, n: &[u8], e: &[u8]) -> Result<Self, String> {
        if !alg.is_rsa() {
            return Err(format!("{alg} is not an RSA algorithm"));
        }
        check_rsa_components(n, e)?;
        let invalid = |_| "not a valid RSA public key".to_string();
        Ok(match alg {
            Algorithm::Rs256 => {
                VerifyingKey::Rs256(RS256PublicKey::from_components(n, e).map_err(invalid)?)
            }
            Algorithm::Rs384 => {
                VerifyingKey::Rs384(RS384PublicKey::from_components(n, e).map_err(invalid)?)
            }
            Algorithm::Rs512 => {
                VerifyingKey::Rs512(RS512PublicKey::from_components(n, e).map_err(invalid)?)
            }
            Algorithm::Ps256 => {
                VerifyingKey::Ps256(PS256PublicKey::from_components(n, e).map_err(invalid)?)
            }
            Algorithm::Ps384 => {
                VerifyingKey::Ps384(PS384PublicKey::from_components(n, e).map_err(invalid)?)
            }
            _ => VerifyingKey::Ps512(PS512PublicKey::from_components(n, e).map_err(invalid)?),
        })
    }

    /// A public key in PEM (SubjectPublicKeyInfo; PKCS#1 "RSA PUBLIC KEY" also
    /// works for RSA). Private keys and certificates are refused.
    pub(crate) fn from_pem(alg: Algorithm, pem: &str) -> Result<Self, String> {
        if alg.is_hmac() {
            return Err(format!(
                "{alg} takes a shared secret, not a PEM key (configure an HMAC secret)"
            ));
        }
        if pem.contains("PRIVATE KEY") {
            return Err("this PEM holds a private key; configure the public key only".into());
        }
        let invalid = |_| format!("not a PEM public key usable for {alg}");
        let key = match alg {
            Algorithm::Es256 => {
                VerifyingKey::Es256(ES256PublicKey::from_pem(pem).map_err(invalid)?)
            }
            Algorithm::Es384 => {
                VerifyingKey::Es384(ES384PublicKey::from_pem(pem).map_err(invalid)?)
            }
            Algorithm::EdDsa => {
                VerifyingKey::EdDsa(Ed25519PublicKey::from_pem(pem).map_err(invalid)?)
            }
            Algorithm::Rs256 => {
                VerifyingKey::Rs256(RS256PublicKey::from_pem(pem).map_err(invalid)?)
            }
            Algorithm::Rs384 => {
                VerifyingKey::Rs384(RS384PublicKey::from_pem(pem).map_err(invalid)?)
            }
            Algorithm::Rs512 => {
                VerifyingKey::Rs512(RS512PublicKey::from_pem(pem).map_err(invalid)?)
            }
            Algorithm::Ps256 => {
                VerifyingKey::Ps256(PS256PublicKey::from_pem(pem).map_err(invalid)?)
            }
            Algorithm::Ps384 => {
                VerifyingKey::Ps384(PS384PublicKey::from_pem(pem).map_err(invalid)?)
            }
            Algorithm::Ps512 => {
                VerifyingKey::Ps512(PS512PublicKey::from_pem(pem).map_err(invalid)?)
            }
            Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512 => {
                return Err(format!("{alg} takes a shared secret, not a PEM key"))
            }
        };
        if let Some(components) = key.rsa_components() {
            check_rsa_components(&components.n, &components.e)?;
        }
        Ok(key)
    }

    fn rsa_components(&self) -> Option<RSAPublicKeyComponents> {
        match self {
            VerifyingKey::Rs256(key) => Some(key.to_components()),
            VerifyingKey::Rs384(key) => Some(key.to_components()),
            VerifyingKey::Rs512(key) => Some(key.to_components()),
            VerifyingKey::Ps256(key) => Some(key.to_components()),
            VerifyingKey::Ps384(key) => Some(key.to_components()),
            VerifyingKey::Ps512(key) => Some(key.to_components()),
            _ => None,
        }
    }

    /// Checks the signature of the compact JWS `token` (already parsed and found
    /// well-formed by `compact`, and its alg found equal to this key's).
    pub(crate) fn verify(&self, token: &str) -> Result<(), JwtError> {
        // jwt-simple's header parse must not fail inside verify_token: see the
        // module comment for why that makes its verdict unambiguous.
        if Token::decode_metadata(token).is_err() {
            return Err(JwtError::UnsupportedHeader(
                "a registered header member has an unexpected type",
            ));
        }
        let options = Some(inert_claim_checks());
        let verdict = match self {
            VerifyingKey::Hs256(key) => {
                key.verify_token::<NoCustomClaims>(token, options).map(drop)
            }
            VerifyingKey::Hs384(key) => {
                key.verify_token::<NoCustomClaims>(token, options).map(drop)
            }
            VerifyingKey::Hs512(key) => {
                key.verify_token::<NoCustomClaims>(token, options).map(drop)
            }
            VerifyingKey::Rs256(key) => {
                key.verify_token::<NoCustomClaims>(token, options).map(drop)
            }
            VerifyingKey::Rs384(key) => {
                key.verify_token::<NoCustomClaims>(token, options).map(drop)
            }
            VerifyingKey::Rs512(key) => {
                key.verify_token::<NoCustomClaims>(token, options).map(drop)
            }
            VerifyingKey::Ps256(key) => {
                key.verify_token::<NoCustomClaims>(token, options).map(drop)
            }
            VerifyingKey::Ps384(key) => {
                key.verify_token::<NoCustomClaims>(token, options).map(drop)
            }
            VerifyingKey::Ps512(key) => {
                key.verify_token::<NoCustomClaims>(token, options).map(drop)
            }
            VerifyingKey::Es256(key) => {
                key.verify_token::<NoCustomClaims>(token, options).map(drop)
            }
            VerifyingKey::Es384(key) => {
                key.verify_token::<NoCustomClaims>(token, options).map(drop)
            }
            VerifyingKey::EdDsa(key) => {
                key.verify_token::<NoCustomClaims>(token, options).map(drop)
            }
        };
        match verdict {
            Ok(()) => Ok(()),
            Err(e) if e.downcast_ref::<jwt_simple_json::Error>().is_some() => Ok(()),
            Err(_) => Err(JwtError::BadSignature),
        }
    }
}

/// Options under which jwt-simple's own claim checks always pass and never read
/// the system clock: our claim rules (claims.rs) run on the proxy's clock.
fn inert_claim_checks() -> VerificationOptions {
    VerificationOptions {
        artificial_time: Some(UnixTimeStamp::from_secs(0)),
        time_tolerance: Some(Duration::from_secs(0)),
        accept_future: true,
        ..VerificationOptions::default()
    }
}

/// Size, exponent and ROCA checks for an RSA public key.
fn check_rsa_components(n: &[u8], e: &[u8]) -> Result<(), String> {
    let n = strip_leading_zeros(n);
    let bits = match n.first() {
        None => 0,
        Some(top) => (n.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
    };
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "RSA modulus has {bits} bits; at least {MIN_RSA_BITS} are required"
        ));
    }
    if bits > MAX_RSA_BITS {
        return Err(format!(
            "RSA modulus has {bits} bits; at most {MAX_RSA_BITS} are supported"
        ));
    }
    if strip_leading_zeros(e) != RSA_EXPONENT_65537 {
        return Err("RSA public exponent must be 65537".into());
    }
    if has_roca_fingerprint(n) {
        return Err("RSA key has the ROCA weakness (CVE-2017-15361); replace it".into());
    }
    Ok(())
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

impl std::fmt::Debug for VerifyingKey {
    /// The algorithm only: never key bytes, least of all an HMAC secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VerifyingKey({})", self.algorithm())
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::jwt::test_support::*;

    #[test]
    fn each_key_type_verifies_its_own_tokens_and_refuses_tampering() {
        for (key, token) in signed_samples() {
            assert_eq!(key.verify(&token), Ok(()), "{key:?}");
            assert_eq!(
                key.verify(&tamper_signature(&token)),
                Err(JwtError::BadSignature),
                "{key:?}"
            );
            assert_eq!(
                key.verify(&tamper_payload(&token)),
                Err(JwtError::BadSignature),
                "{key:?}"
            );
        }
    }

    #[test]
    fn a_valid_signature_over_a_non_json_payload_is_a_valid_jws() {
        // The claims-parse error after a good signature must read as "signature ok".
        let secret = hmac_secret(32);
        let key = VerifyingKey::hmac(Algorithm::Hs256, &secret).expect("key");
        let token = hs256_token(r#"{"alg":"HS256"}"#, b"foo", &secret);
        assert_eq!(key.verify(&token), Ok(()));
        let token = hs256_token(r#"{"alg":"HS256"}"#, b"", &secret);
        assert_eq!(key.verify(&token), Ok(()));
        let token = hs256_token(r#"{"alg":"HS256"}"#, br#"{"exp":"soon"}"#, &secret);
        assert_eq!(key.verify(&token), Ok(()));
    }

    #[test]
    fn a_bad_signature_over_a_non_json_payload_is_refused() {
        // The same non-JSON payloads with a wrong MAC: never read as "signature ok".
        let secret = hmac_secret(32);
        let key = VerifyingKey::hmac(Algorithm::Hs256, &secret).expect("key");
        let other = hmac_secret(33);
        for payload in [&b"foo"[..], b"", br#"{"exp":"soon"}"#, b"{"] {
            let token = hs256_token(r#"{"alg":"HS256"}"#, payload, &other);
            assert_eq!(key.verify(&token), Err(JwtError::BadSignature));
        }
    }

    #[test]
    fn a_header_jwt_simple_cannot_read_is_refused_before_the_signature() {
        // Embedded jwk as an object: jwt-simple's header type wants a string.
        // Signed correctly, so only the header rule can refuse it.
        let secret = hmac_secret(32);
        let key = VerifyingKey::hmac(Algorithm::Hs256, &secret).expect("key");
        for header in [
            r#"{"alg":"HS256","jwk":{"kty":"oct","k":"AAAA"}}"#,
            r#"{"alg":"HS256","x5c":[1]}"#,
        ] {
            let token = hs256_token(header, b"foo", &secret);
            assert!(
                matches!(key.verify(&token), Err(JwtError::UnsupportedHeader(_))),
                "{header}"
            );
        }
    }

    #[test]
    fn jwt_simple_never_judges_time() {
        // exp in 1970, nbf and iat far in the future: the signature layer passes;
        // time is claims.rs's business, on the caller's clock.
        let secret = hmac_secret(32);
        let key = VerifyingKey::hmac(Algorithm::Hs256, &secret).expect("key");
        let payload = br#"{"exp":1,"nbf":99999999999,"iat":99999999999}"#;
        let token = hs256_token(r#"{"alg":"HS256"}"#, payload, &secret);
        assert_eq!(key.verify(&token), Ok(()));
    }

    #[test]
    fn hmac_secrets_must_be_at_least_the_hash_length() {
        for (alg, min) in [
            (Algorithm::Hs256, 32),
            (Algorithm::Hs384, 48),
            (Algorithm::Hs512, 64),
        ] {
            assert!(VerifyingKey::hmac(alg, &hmac_secret(min - 1)).is_err());
            assert!(VerifyingKey::hmac(alg, &hmac_secret(0)).is_err());
            let key = VerifyingKey::hmac(alg, &hmac_secret(min)).expect("long enough");
            assert_eq!(key.algorithm(), alg);
        }
        assert!(VerifyingKey::hmac(Algorithm::Rs256, &hmac_secret(64)).is_err());
    }

    #[test]
    fn ec_keys_need_exact_coordinates_on_the_curve() {
        let (x, y) = es256_coordinates();
        assert!(VerifyingKey::ec(Algorithm::Es256, &x, &y).is_ok());
        // Wrong curve size for the algorithm.
        assert!(VerifyingKey::ec(Algorithm::Es384, &x, &y).is_err());
        // Truncated or padded coordinates.
        assert!(VerifyingKey::ec(Algorithm::Es256, &x[1..], &y).is_err());
        let mut long = vec![0];
        long.extend_from_slice(&x);
        assert!(VerifyingKey::ec(Algorithm::Es256, &long, &y).is_err());
        // Off the curve.
        let mut bent = y.clone();
        bent[31] ^= 1;
        assert!(VerifyingKey::ec(Algorithm::Es256, &x, &bent).is_err());
        assert!(VerifyingKey::ec(Algorithm::Es256, &[0; 32], &[0; 32]).is_err());
        assert!(VerifyingKey::ec(Algorithm::Rs256, &x, &y).is_err());
    }

    #[test]
    fn ed25519_keys_are_checked() {
        assert!(VerifyingKey::ed25519(&[0; 31]).is_err());
        // The identity point is a weak key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(VerifyingKey::ed25519(&identity).is_err());
        assert!(VerifyingKey::ed25519(&ed25519_public_bytes()).is_ok());
    }

    #[test]
    fn rsa_keys_need_2048_to_4096_bits_exponent_65537_and_no_roca() {
        let (n, e) = rsa_components();
        assert!(VerifyingKey::rsa(Algorithm::Rs256, &n, &e).is_ok());
        assert!(VerifyingKey::rsa(Algorithm::Ps512, &n, &e).is_ok());
        assert!(VerifyingKey::rsa(Algorithm::Es256, &n, &e).is_err());
        let short = &n[..128];
        assert!(VerifyingKey::rsa(Algorithm::Rs256, short, &e)
            .unwrap_err()
            .contains("bits"));
        let huge = vec![0xff; 513];
        assert!(VerifyingKey::rsa(Algorithm::Rs256, &huge, &e)
            .unwrap_err()
            .contains("bits"));
        for bad_e in [&[1u8][..], &[3], &[1, 0, 0], &[]] {
            assert!(VerifyingKey::rsa(Algorithm::Rs256, &n, bad_e)
                .unwrap_err()
                .contains("exponent"));
        }
        // Leading zero octets are tolerated (and ignored).
        let mut padded = vec![0];
        padded.extend_from_slice(&n);
        assert!(VerifyingKey::rsa(Algorithm::Rs256, &padded, &[0, 1, 0, 1]).is_ok());
    }

    #[test]
    fn pem_keys_are_pinned_to_the_named_algorithm() {
        let es256 = es256_public_pem();
        assert_eq!(
            VerifyingKey::from_pem(Algorithm::Es256, &es256).map(|k| k.algorithm()),
            Ok(Algorithm::Es256)
        );
        // The same PEM is no key for other algorithms.
        for alg in [Algorithm::Es384, Algorithm::Rs256, Algorithm::EdDsa] {
            assert!(VerifyingKey::from_pem(alg, &es256).is_err(), "{alg}");
        }
        assert!(VerifyingKey::from_pem(Algorithm::Hs256, &es256)
            .unwrap_err()
            .contains("secret"));
        let rsa = rsa_public_pem();
        for alg in [Algorithm::Rs256, Algorithm::Rs512, Algorithm::Ps384] {
            assert_eq!(
                VerifyingKey::from_pem(alg, &rsa).map(|k| k.algorithm()),
                Ok(alg)
            );
        }
        assert!(VerifyingKey::from_pem(Algorithm::Es256, &rsa).is_err());
        assert!(VerifyingKey::from_pem(Algorithm::EdDsa, &ed25519_public_pem()).is_ok());
        assert!(VerifyingKey::from_pem(Algorithm::Es384, &es384_public_pem()).is_ok());
        assert!(VerifyingKey::from_pem(Algorithm::Es256, "not a pem").is_err());
        assert!(VerifyingKey::from_pem(Algorithm::Es256, "").is_err());
    }

    #[test]
    fn private_key_pems_are_refused() {
        let private = es256_private_pem();
        assert!(VerifyingKey::from_pem(Algorithm::Es256, &private)
            .unwrap_err()
            .contains("private key"));
    }

    #[test]
    fn debug_output_shows_no_key_material() {
        let secret = b"super-secret-value-that-is-long-enough-32";
        let key = VerifyingKey::hmac(Algorithm::Hs256, secret).expect("key");
        let shown = format!("{key:?}");
        assert_eq!(shown, "VerifyingKey(HS256)");
    }
}
