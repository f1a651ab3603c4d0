//! One verification key, pinned to one algorithm, checked by jwt-simple.
//!
//! The pinning is structural: a `VerifyingKey::Rs256` holds jwt-simple's RS256
//! public key and can only run RS256, so no header can make an RSA key act as an
//! HMAC secret.
//!
//! jwt-simple (`verify_token`) checks the signature and then the registered
//! claims: `exp`, `nbf` and `iat` with `time_tolerance` (our leeway), the age with
//! `max_validity`, `iss` with `allowed_issuers`, `aud` with `allowed_audiences`,
//! all on `artificial_time` (the proxy's clock, never the system's). Its key
//! constructors do the key checks it knows: RSA moduli of 2048-4096 bits, odd,
//! e = 65537; EC points on the curve; Ed25519 keys of small order refused; HMAC
//! secrets wiped on drop. Its header rules: `alg` equal to the key's, `typ` "JWT"
//! or "...+jwt", a non-empty `crit` refused, headers up to 8 KiB, canonical
//! unpadded base64url (ct-codecs). What it does not do stays in front of it
//! (verify.rs, compact.rs, claims.rs, jwk.rs, roca.rs).
//!
//! The signature-only mode (`Judge::SignatureOnly`, for JWS test vectors whose
//! payload is not a claim set) reads jwt-simple's verdict by its fixed order:
//! header parse, header checks, signature, then claims parse and checks. After
//! `Token::decode_metadata` (jwt-simple's own header parse, same input) succeeded,
//! a JSON error can only come from the claims parse, that is after the signature
//! verified. Its claim checks are made inert there (time 0, no tolerance, futures
//! accepted).

use jwt_simple::prelude::*;
use jwt_simple::reexports::{ct_codecs, serde_json as jwt_json};
use jwt_simple::JWTError;

use super::algorithm::Algorithm;
use super::claims::ClaimRules;
use super::error::JwtError;
use super::roca::has_roca_fingerprint;

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

/// The same expression for every key type (each is its own jwt-simple type).
macro_rules! with_key {
    ($key:expr, $k:ident => $body:expr) => {
        match $key {
            VerifyingKey::Hs256($k) => $body,
            VerifyingKey::Hs384($k) => $body,
            VerifyingKey::Hs512($k) => $body,
            VerifyingKey::Rs256($k) => $body,
            VerifyingKey::Rs384($k) => $body,
            VerifyingKey::Rs512($k) => $body,
            VerifyingKey::Ps256($k) => $body,
            VerifyingKey::Ps384($k) => $body,
            VerifyingKey::Ps512($k) => $body,
            VerifyingKey::Es256($k) => $body,
            VerifyingKey::Es384($k) => $body,
            VerifyingKey::EdDsa($k) => $body,
        }
    };
}

/// What jwt-simple judges besides the signature.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Judge<'a> {
    /// The signature alone; the payload may be any bytes.
    SignatureOnly,
    /// The signature and the registered claims under these rules at this time.
    Claims(&'a ClaimRules, u64),
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

    /// An HMAC secret.
    pub(crate) fn hmac(alg: Algorithm, secret: &[u8]) -> Result<Self, String> {
        let Some(min) = alg.min_hmac_secret_bytes() else {
            return Err(format!(
                "{alg} is not an HMAC algorithm (HS256, HS384, HS512)"
            ));
        };
        // jwt-simple takes secrets from 12 bytes; RFC 7518 section 3.2 requires at
        // least the hash output.
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

    /// An EC public key from its affine coordinates (JWK `x`, `y`), big-endian.
    pub(crate) fn ec(alg: Algorithm, x: &[u8], y: &[u8]) -> Result<Self, String> {
        let size = match alg {
            Algorithm::Es256 => 32,
            Algorithm::Es384 => 48,
            _ => return Err(format!("{alg} is not an EC algorithm (ES256, ES384)")),
        };
        // jwt-simple reads any SEC1 encoding; a JWK's coordinates are each exactly
        // the field size (RFC 7518 section 6.2.1.2).
        if x.len() != size || y.len() != size {
            return Err(format!(
                "{alg} coordinates must be {size} bytes each (x has {}, y has {})",
                x.len(),
                y.len()
            ));
        }
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

    /// An Ed25519 public key (JWK `x`).
    pub(crate) fn ed25519(x: &[u8]) -> Result<Self, String> {
        Ed25519PublicKey::from_bytes(x)
            .map(VerifyingKey::EdDsa)
            .map_err(|_| "not a valid Ed25519 public key (32 bytes, not a weak point)".to_string())
    }

    /// An RSA public key from modulus and exponent (big-endian).
    pub(crate) fn rsa(alg: Algorithm, n: &[u8], e: &[u8]) -> Result<Self, String> {
        let key = match alg {
            Algorithm::Rs256 => RS256PublicKey::from_components(n, e).map(VerifyingKey::Rs256),
            Algorithm::Rs384 => RS384PublicKey::from_components(n, e).map(VerifyingKey::Rs384),
            Algorithm::Rs512 => RS512PublicKey::from_components(n, e).map(VerifyingKey::Rs512),
            Algorithm::Ps256 => PS256PublicKey::from_components(n, e).map(VerifyingKey::Ps256),
            Algorithm::Ps384 => PS384PublicKey::from_components(n, e).map(VerifyingKey::Ps384),
            Algorithm::Ps512 => PS512PublicKey::from_components(n, e).map(VerifyingKey::Ps512),
            _ => return Err(format!("{alg} is not an RSA algorithm")),
        };
        key.map_err(|e| rsa_key_problem(&e))?.checked_for_roca()
    }

    /// A public key in PEM (SubjectPublicKeyInfo; PKCS#1 "RSA PUBLIC KEY" also
    /// works for RSA).
    pub(crate) fn from_pem(alg: Algorithm, pem: &str) -> Result<Self, String> {
        if alg.is_hmac() {
            return Err(format!(
                "{alg} takes a shared secret, not a PEM key (configure an HMAC secret)"
            ));
        }
        // jwt-simple refuses a private key PEM too, but only as "not a public key";
        // this names the operator's mistake.
        if pem.contains("PRIVATE KEY") {
            return Err("this PEM holds a private key; configure the public key only".into());
        }
        let invalid = |_| format!("not a PEM public key usable for {alg}");
        let key = match alg {
            Algorithm::Es256 => ES256PublicKey::from_pem(pem).map(VerifyingKey::Es256),
            Algorithm::Es384 => ES384PublicKey::from_pem(pem).map(VerifyingKey::Es384),
            Algorithm::EdDsa => Ed25519PublicKey::from_pem(pem).map(VerifyingKey::EdDsa),
            Algorithm::Rs256 => RS256PublicKey::from_pem(pem).map(VerifyingKey::Rs256),
            Algorithm::Rs384 => RS384PublicKey::from_pem(pem).map(VerifyingKey::Rs384),
            Algorithm::Rs512 => RS512PublicKey::from_pem(pem).map(VerifyingKey::Rs512),
            Algorithm::Ps256 => PS256PublicKey::from_pem(pem).map(VerifyingKey::Ps256),
            Algorithm::Ps384 => PS384PublicKey::from_pem(pem).map(VerifyingKey::Ps384),
            Algorithm::Ps512 => PS512PublicKey::from_pem(pem).map(VerifyingKey::Ps512),
            Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512 => {
                return Err(format!("{alg} takes a shared secret, not a PEM key"))
            }
        };
        key.map_err(invalid)?.checked_for_roca()
    }

    /// jwt-simple does not look for the ROCA structure (roca.rs): refused here.
    fn checked_for_roca(self) -> Result<Self, String> {
        let n = match &self {
            VerifyingKey::Rs256(key) => key.to_components().n,
            VerifyingKey::Rs384(key) => key.to_components().n,
            VerifyingKey::Rs512(key) => key.to_components().n,
            VerifyingKey::Ps256(key) => key.to_components().n,
            VerifyingKey::Ps384(key) => key.to_components().n,
            VerifyingKey::Ps512(key) => key.to_components().n,
            _ => return Ok(self),
        };
        if has_roca_fingerprint(&n) {
            return Err("RSA key has the ROCA weakness (CVE-2017-15361); replace it".into());
        }
        Ok(self)
    }

    /// Checks the compact JWS `token` (already parsed and found well-formed by
    /// `compact`, its alg equal to this key's) with jwt-simple.
    pub(crate) fn verify(&self, token: &str, judge: Judge<'_>) -> Result<(), JwtError> {
        // jwt-simple's header parse must not fail inside verify_token (see the
        // module comment): run it alone first. compact.rs has checked the members
        // it reads except x5t, x5t#S256 and salt, which jwt-simple wants as strings.
        Token::decode_metadata(token).map_err(|e| match e.downcast_ref::<JWTError>() {
            Some(_) => refusal(&e),
            None => JwtError::UnsupportedHeader("a header member has an unexpected type"),
        })?;
        let options = match judge {
            Judge::SignatureOnly => inert_claim_checks(),
            Judge::Claims(rules, now) => claim_checks(rules, now),
        };
        let verdict = with_key!(self, key => key
            .verify_token::<NoCustomClaims>(token, Some(options))
            .map(drop));
        match verdict {
            Ok(()) => Ok(()),
            // The payload is no claim set: only the signature was asked for.
            Err(e)
                if matches!(judge, Judge::SignatureOnly)
                    && e.downcast_ref::<jwt_json::Error>().is_some() =>
            {
                Ok(())
            }
            Err(e) => Err(refusal(&e)),
        }
    }
}

/// The last second coarsetime can add to: it keeps seconds in the upper 32 bits
/// of a u64 (and saturates there), and `now + time_tolerance` is a plain addition.
const LAST_COARSETIME_SECOND: u64 = u32::MAX as u64;

/// jwt-simple's claim checks for `rules` at `now` (Unix seconds).
fn claim_checks(rules: &ClaimRules, now: u64) -> VerificationOptions {
    // Clamped so that now + tolerance cannot overflow inside jwt-simple; only a
    // leeway reaching past the year 2106 is cut, which makes it stricter.
    let tolerance = rules
        .leeway_seconds
        .min(LAST_COARSETIME_SECOND.saturating_sub(now));
    let set = |values: &[String]| {
        (!values.is_empty()).then(|| values.iter().cloned().collect::<HashSet<String>>())
    };
    VerificationOptions {
        artificial_time: Some(UnixTimeStamp::from_secs(now)),
        time_tolerance: Some(Duration::from_secs(tolerance)),
        // jwt-simple applies no tolerance to the age; ours allows the leeway there too.
        max_validity: rules
            .max_age_seconds
            .map(|age| Duration::from_secs(age.saturating_add(rules.leeway_seconds))),
        allowed_issuers: set(&rules.issuers),
        allowed_audiences: set(&rules.audiences),
        max_token_length: Some(rules.max_token_bytes),
        ..VerificationOptions::default()
    }
}

/// Options under which jwt-simple's claim checks always pass and never read the
/// system clock.
fn inert_claim_checks() -> VerificationOptions {
    VerificationOptions {
        artificial_time: Some(UnixTimeStamp::from_secs(0)),
        time_tolerance: Some(Duration::from_secs(0)),
        accept_future: true,
        max_token_length: None,
        ..VerificationOptions::default()
    }
}

/// jwt-simple's refusal as ours. Anything unrecognised is a bad signature: the
/// token is refused either way.
fn refusal(error: &jwt_simple::Error) -> JwtError {
    if let Some(error) = error.downcast_ref::<JWTError>() {
        return match error {
            JWTError::TokenHasExpired => JwtError::Expired,
            JWTError::TokenNotValidYet => JwtError::NotYetValid,
            JWTError::ClockDrift => JwtError::IssuedInFuture,
            JWTError::TokenIsTooOld => JwtError::TooOld,
            JWTError::RequiredIssuerMismatch => JwtError::IssuerNotAccepted,
            JWTError::RequiredIssuerMissing => JwtError::MissingClaim("iss".into()),
            JWTError::RequiredAudienceMismatch => JwtError::AudienceNotAccepted,
            JWTError::RequiredAudienceMissing => JwtError::MissingClaim("aud".into()),
            JWTError::NotJWT => JwtError::UnsupportedHeader("typ is not JWT"),
            JWTError::UnknownCriticalExtension => {
                JwtError::UnsupportedHeader("critical extensions (crit) are not supported")
            }
            JWTError::MissingSalt => JwtError::UnsupportedHeader("salt is not supported"),
            JWTError::HeaderTooLarge => JwtError::Malformed("header too long"),
            JWTError::CompactEncodingError => {
                JwtError::Malformed("a JWS in compact form has exactly three dot-separated parts")
            }
            _ => JwtError::BadSignature,
        };
    }
    if error.downcast_ref::<ct_codecs::Error>().is_some() {
        return JwtError::Malformed("signature is not base64url");
    }
    if error.downcast_ref::<jwt_json::Error>().is_some() {
        // The header parsed (decode_metadata), so this is the claims; claims.rs
        // refuses the types jwt-simple cannot read before it gets here.
        return JwtError::invalid_claim("payload", "is not readable as JWT claims");
    }
    JwtError::BadSignature
}

/// An RSA key jwt-simple refused, in words.
fn rsa_key_problem(error: &jwt_simple::Error) -> String {
    match error.downcast_ref::<JWTError>() {
        Some(JWTError::WeakKey) => "RSA modulus shorter than 2048 bits".into(),
        Some(JWTError::UnsupportedRSAModulus) => "RSA modulus longer than 4096 bits".into(),
        _ => "not a valid RSA public key (odd modulus and exponent 65537 required)".into(),
    }
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

    const SIGNATURE: Judge<'static> = Judge::SignatureOnly;

    #[test]
    fn each_key_type_verifies_its_own_tokens_and_refuses_tampering() {
        for (key, token) in signed_samples() {
            assert_eq!(key.verify(&token, SIGNATURE), Ok(()), "{key:?}");
            assert_eq!(
                key.verify(&tamper_signature(&token), SIGNATURE),
                Err(JwtError::BadSignature),
                "{key:?}"
            );
            assert_eq!(
                key.verify(&tamper_payload(&token), SIGNATURE),
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
        for payload in [&b"foo"[..], b"", br#"{"exp":"soon"}"#] {
            let token = hs256_token(r#"{"alg":"HS256"}"#, payload, &secret);
            assert_eq!(key.verify(&token, SIGNATURE), Ok(()));
        }
        // Judged as claims, the same token is refused.
        let rules = ClaimRules::default();
        let token = hs256_token(r#"{"alg":"HS256"}"#, b"foo", &secret);
        assert!(matches!(
            key.verify(&token, Judge::Claims(&rules, 1)),
            Err(JwtError::InvalidClaim { .. })
        ));
    }

    #[test]
    fn a_bad_signature_over_a_non_json_payload_is_refused() {
        // The same non-JSON payloads with a wrong MAC: never read as "signature ok".
        let secret = hmac_secret(32);
        let key = VerifyingKey::hmac(Algorithm::Hs256, &secret).expect("key");
        let other = hmac_secret(33);
        for payload in [&b"foo"[..], b"", br#"{"exp":"soon"}"#, b"{"] {
            let token = hs256_token(r#"{"alg":"HS256"}"#, payload, &other);
            assert_eq!(key.verify(&token, SIGNATURE), Err(JwtError::BadSignature));
        }
    }

    #[test]
    fn a_header_jwt_simple_cannot_read_is_refused_before_the_signature() {
        // Signed correctly, so only the header parse can refuse it; without the
        // separate header parse the JSON error would read as "signature ok".
        let secret = hmac_secret(32);
        let key = VerifyingKey::hmac(Algorithm::Hs256, &secret).expect("key");
        for header in [
            r#"{"alg":"HS256","x5t":5}"#,
            r#"{"alg":"HS256","salt":[1]}"#,
        ] {
            let token = hs256_token(header, b"foo", &secret);
            assert_eq!(
                key.verify(&token, SIGNATURE),
                Err(JwtError::UnsupportedHeader(
                    "a header member has an unexpected type"
                )),
                "{header}"
            );
        }
    }

    #[test]
    fn signature_only_never_judges_time() {
        // exp in 1970, nbf and iat far in the future: the signature layer passes.
        let secret = hmac_secret(32);
        let key = VerifyingKey::hmac(Algorithm::Hs256, &secret).expect("key");
        let payload = br#"{"exp":1,"nbf":99999999999,"iat":99999999999}"#;
        let token = hs256_token(r#"{"alg":"HS256"}"#, payload, &secret);
        assert_eq!(key.verify(&token, SIGNATURE), Ok(()));
    }

    #[test]
    fn jwt_simple_judges_the_registered_claims_on_the_given_clock() {
        let secret = hmac_secret(32);
        let key = VerifyingKey::hmac(Algorithm::Hs256, &secret).expect("key");
        let now = 1_700_000_000;
        let rules = ClaimRules {
            issuers: vec!["https://issuer.example".into()],
            audiences: vec!["k8s".into()],
            max_age_seconds: Some(300),
            ..ClaimRules::default()
        };
        let judge = |payload: serde_json::Value| {
            let token = hs256_token(
                r#"{"alg":"HS256"}"#,
                &serde_json::to_vec(&payload).expect("json"),
                &secret,
            );
            key.verify(&token, Judge::Claims(&rules, now))
        };
        let good = serde_json::json!({
            "iss": "https://issuer.example", "aud": ["x", "k8s"], "exp": now + 10, "iat": now
        });
        assert_eq!(judge(good.clone()), Ok(()));
        for (name, value, expected) in [
            ("exp", serde_json::json!(now - 61), JwtError::Expired),
            ("nbf", serde_json::json!(now + 61), JwtError::NotYetValid),
            ("iat", serde_json::json!(now + 61), JwtError::IssuedInFuture),
            ("iat", serde_json::json!(now - 361), JwtError::TooOld),
            (
                "iss",
                serde_json::json!("other"),
                JwtError::IssuerNotAccepted,
            ),
            (
                "aud",
                serde_json::json!("other"),
                JwtError::AudienceNotAccepted,
            ),
        ] {
            let mut claims = good.clone();
            claims[name] = value;
            assert_eq!(judge(claims), Err(expected), "{name}");
        }
        // The age allows the leeway, as claims.rs does.
        let mut claims = good;
        claims["iat"] = serde_json::json!(now - 360);
        assert_eq!(judge(claims), Ok(()));
    }

    #[test]
    fn extreme_clocks_and_leeways_do_not_overflow_jwt_simple() {
        let secret = hmac_secret(32);
        let key = VerifyingKey::hmac(Algorithm::Hs256, &secret).expect("key");
        let token = hs256_token(
            r#"{"alg":"HS256"}"#,
            br#"{"exp":18446744073709551615,"iat":1}"#,
            &secret,
        );
        for (now, leeway) in [
            (0, u64::MAX),
            (1_700_000_000, u64::MAX),
            (u64::MAX, u64::MAX),
            (u64::MAX, 0),
            (LAST_COARSETIME_SECOND, 1),
        ] {
            let rules = ClaimRules {
                leeway_seconds: leeway,
                max_age_seconds: Some(u64::MAX),
                ..ClaimRules::default()
            };
            // Any verdict, no panic.
            let _ = key.verify(&token, Judge::Claims(&rules, now));
        }
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
        let (x, y) = es384_coordinates();
        assert!(VerifyingKey::ec(Algorithm::Es384, &x, &y).is_ok());
    }

    #[test]
    fn ed25519_keys_are_checked() {
        assert!(VerifyingKey::ed25519(&[0; 31]).is_err());
        assert!(VerifyingKey::ed25519(&[]).is_err());
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
        for short in [&n[..128], &[], &[0; 300]] {
            assert!(VerifyingKey::rsa(Algorithm::Rs256, short, &e)
                .unwrap_err()
                .contains("2048 bits"));
        }
        let huge = vec![0xff; 513];
        assert!(VerifyingKey::rsa(Algorithm::Rs256, &huge, &e)
            .unwrap_err()
            .contains("4096 bits"));
        for bad_e in [&[1u8][..], &[3], &[1, 0, 0], &[]] {
            assert!(VerifyingKey::rsa(Algorithm::Rs256, &n, bad_e)
                .unwrap_err()
                .contains("65537"));
        }
        // An even modulus is no RSA key.
        let mut even = n.clone();
        if let Some(low) = even.last_mut() {
            *low &= 0xfe;
        }
        assert!(VerifyingKey::rsa(Algorithm::Rs256, &even, &e).is_err());
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
