//! One JSON Web Key (RFC 7517) turned into a pinned verifying key, or skipped.
//!
//! Refuse (Err) a key that claims a supported type but is malformed, so the
//! configuration is refused instead of silently losing a key; skip (with the
//! reason) a key that is fine but not for us: another key type or curve, an
//! algorithm we do not implement, an encryption key, a symmetric key.
//!
//! - `use: enc`, another `use`, or `key_ops` without "verify": skipped.
//! - `kty: oct` is always skipped. A JWKS is a public document; an HMAC secret in
//!   it is either leaked or, worse, the lever of an algorithm-confusion attack.
//!   HMAC secrets come only from `KeySet::add_hmac_secret`.
//! - Private members (`d`, RSA CRT values) are refused: the signing key would be
//!   sitting in the filter's configuration.
//! - `alg` pins the key. Absent, it is inferred only where one algorithm fits:
//!   EC P-256 -> ES256, EC P-384 -> ES384, OKP Ed25519 -> EdDSA, and RSA -> RS256
//!   (RSA keys also serve RS384/512 and PS*, but guessing wider would let a token
//!   pick the padding; issuers that sign PS256 publish `alg`).
//! - A supported `alg` that does not fit the key type or curve is refused; an
//!   unknown `alg` (ES512, RSA-OAEP, ...) is skipped.

use serde_json::{Map, Value};

use super::algorithm::Algorithm;
use super::compact::decode_part;
use super::signature::VerifyingKey;

/// A usable key, or why a well-formed JWK is not one for us.
#[derive(Debug)]
pub(crate) enum JwkOutcome {
    Key {
        kid: Option<String>,
        /// Boxed: a key is far larger than a skip reason.
        key: Box<VerifyingKey>,
    },
    Skipped(String),
}

const RSA_ALGORITHMS: [Algorithm; 6] = [
    Algorithm::Rs256,
    Algorithm::Rs384,
    Algorithm::Rs512,
    Algorithm::Ps256,
    Algorithm::Ps384,
    Algorithm::Ps512,
];

const OCT_SKIPPED: &str =
    "symmetric (oct) keys are never taken from a JWKS; configure HMAC secrets instead";

/// Members that only a private JWK carries (RFC 7518 sections 6.2.2, 6.3.2;
/// RFC 8037 section 2).
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "oth"];

/// Reads one JWK. `Err` names the problem; the caller adds the key's position.
pub(crate) fn parse_jwk(jwk: &Value) -> Result<JwkOutcome, String> {
    let Value::Object(jwk) = jwk else {
        return Err("a JWK is a JSON object".into());
    };
    let kty = optional_str(jwk, "kty")?.ok_or("kty is missing")?;
    // The key type (and curve) decide first: a key we could not use anyway is
    // skipped before its other members are judged.
    let (allowed, inferred): (&[Algorithm], Algorithm) = match kty {
        "EC" => match optional_str(jwk, "crv")?.ok_or("crv is missing")? {
            "P-256" => (&[Algorithm::Es256], Algorithm::Es256),
            "P-384" => (&[Algorithm::Es384], Algorithm::Es384),
            other => return Ok(skipped(format!("EC curve {other:?} is not supported"))),
        },
        "OKP" => match optional_str(jwk, "crv")?.ok_or("crv is missing")? {
            "Ed25519" => (&[Algorithm::EdDsa], Algorithm::EdDsa),
            other => return Ok(skipped(format!("OKP curve {other:?} is not supported"))),
        },
        "RSA" => (&RSA_ALGORITHMS, Algorithm::Rs256),
        "oct" => return Ok(skipped(OCT_SKIPPED.into())),
        other => return Ok(skipped(format!("key type {other:?} is not supported"))),
    };
    let kid = optional_str(jwk, "kid")?.map(str::to_owned);
    let alg = optional_str(jwk, "alg")?;

    match optional_str(jwk, "use")? {
        None | Some("sig") => {}
        Some(other) => return Ok(skipped(format!("use is {other:?}, not \"sig\""))),
    }
    if let Some(ops) = jwk.get("key_ops") {
        let ops = ops
            .as_array()
            .filter(|ops| ops.iter().all(Value::is_string))
            .ok_or("key_ops is not a list of strings")?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Ok(skipped("key_ops does not include \"verify\"".into()));
        }
    }

    if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
        return Err(format!(
            "holds private key material ({member:?}); publish only the public key"
        ));
    }

    let alg = match alg {
        None => inferred,
        Some(name) => match Algorithm::from_name(name) {
            Some(alg) if allowed.contains(&alg) => alg,
            Some(alg) => return Err(format!("alg {alg} does not fit this {kty} key")),
            None => return Ok(skipped(format!("alg {name:?} is not supported"))),
        },
    };

    let key = match kty {
        "EC" => VerifyingKey::ec(alg, &member_bytes(jwk, "x")?, &member_bytes(jwk, "y")?)?,
        "OKP" => VerifyingKey::ed25519(&member_bytes(jwk, "x")?)?,
        _ => VerifyingKey::rsa(alg, &member_bytes(jwk, "n")?, &member_bytes(jwk, "e")?)?,
    };
    Ok(JwkOutcome::Key {
        kid,
        key: Box::new(key),
    })
}

fn skipped(reason: String) -> JwkOutcome {
    JwkOutcome::Skipped(reason)
}

/// A member that must be a string when present.
fn optional_str<'a>(jwk: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match jwk.get(name) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(format!("{name} is not a string")),
    }
}

/// A required base64url member (RFC 7518 section 2: no padding).
fn member_bytes(jwk: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let text = optional_str(jwk, name)?.ok_or_else(|| format!("{name} is missing"))?;
    decode_part(text, "not base64url").map_err(|_| format!("{name} is not base64url"))
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::jwt::test_support::*;
    use serde_json::json;

    fn key_alg(jwk: &Value) -> Algorithm {
        match parse_jwk(jwk) {
            Ok(JwkOutcome::Key { key, .. }) => key.algorithm(),
            other => panic!("expected a key, got {other:?}"),
        }
    }

    fn skip_reason(jwk: &Value) -> String {
        match parse_jwk(jwk) {
            Ok(JwkOutcome::Skipped(reason)) => reason,
            other => panic!("expected a skip, got {other:?}"),
        }
    }

    fn without(mut jwk: Value, member: &str) -> Value {
        jwk.as_object_mut().expect("object").remove(member);
        jwk
    }

    fn with(mut jwk: Value, member: &str, value: Value) -> Value {
        jwk[member] = value;
        jwk
    }

    #[test]
    fn every_public_key_algorithm_loads_with_its_alg() {
        for alg in Algorithm::ALL.into_iter().filter(|a| !a.is_hmac()) {
            assert_eq!(key_alg(&public_jwk(alg, "k")), alg);
        }
    }

    #[test]
    fn the_kid_is_kept() {
        match parse_jwk(&public_jwk(Algorithm::Es256, "the-kid")) {
            Ok(JwkOutcome::Key { kid, .. }) => assert_eq!(kid.as_deref(), Some("the-kid")),
            other => panic!("{other:?}"),
        }
        match parse_jwk(&without(public_jwk(Algorithm::Es256, "k"), "kid")) {
            Ok(JwkOutcome::Key { kid, .. }) => assert_eq!(kid, None),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn alg_is_inferred_only_where_unambiguous() {
        for (alg, inferred) in [
            (Algorithm::Es256, Algorithm::Es256),
            (Algorithm::Es384, Algorithm::Es384),
            (Algorithm::EdDsa, Algorithm::EdDsa),
            (Algorithm::Ps512, Algorithm::Rs256),
        ] {
            assert_eq!(key_alg(&without(public_jwk(alg, "k"), "alg")), inferred);
        }
    }

    #[test]
    fn an_alg_that_does_not_fit_the_key_is_refused() {
        for (alg, wrong) in [
            (Algorithm::Es256, "ES384"),
            (Algorithm::Es256, "RS256"),
            (Algorithm::Es256, "HS256"),
            (Algorithm::Es384, "ES256"),
            (Algorithm::Rs256, "HS256"),
            (Algorithm::Rs256, "ES256"),
            (Algorithm::Rs256, "EdDSA"),
            (Algorithm::EdDsa, "ES256"),
        ] {
            let jwk = with(public_jwk(alg, "k"), "alg", json!(wrong));
            assert!(
                parse_jwk(&jwk).unwrap_err().contains("does not fit"),
                "{wrong}"
            );
        }
    }

    #[test]
    fn unknown_algs_curves_types_and_uses_are_skipped() {
        let es256 = public_jwk(Algorithm::Es256, "k");
        assert!(skip_reason(&with(es256.clone(), "alg", json!("ES512"))).contains("ES512"));
        assert!(skip_reason(&with(es256.clone(), "alg", json!("none"))).contains("none"));
        assert!(skip_reason(&with(es256.clone(), "crv", json!("P-521"))).contains("P-521"));
        assert!(skip_reason(&with(es256.clone(), "crv", json!("secp256k1"))).contains("curve"));
        assert!(skip_reason(&with(es256.clone(), "kty", json!("EC2"))).contains("EC2"));
        assert!(skip_reason(&with(es256.clone(), "use", json!("enc"))).contains("enc"));
        assert!(
            skip_reason(&with(es256.clone(), "key_ops", json!(["encrypt"]))).contains("verify")
        );
        assert!(skip_reason(&with(es256.clone(), "key_ops", json!([]))).contains("verify"));
        // An unknown key type is skipped whatever its other members look like.
        assert!(skip_reason(&json!({"kty":"AKP","kid":5,"use":[]})).contains("AKP"));
        let ed448 = json!({"kty":"OKP","crv":"Ed448","x":"AAAA"});
        assert!(skip_reason(&ed448).contains("Ed448"));
        let rsa_oaep = with(public_jwk(Algorithm::Rs256, "k"), "alg", json!("RSA-OAEP"));
        assert!(skip_reason(&rsa_oaep).contains("RSA-OAEP"));
        // And the fine ones are kept.
        assert_eq!(
            key_alg(&with(es256.clone(), "use", json!("sig"))),
            Algorithm::Es256
        );
        assert_eq!(
            key_alg(&with(es256, "key_ops", json!(["verify", "sign"]))),
            Algorithm::Es256
        );
    }

    #[test]
    fn symmetric_keys_are_never_taken_from_a_jwks() {
        let oct = json!({"kty":"oct","alg":"HS256","k":b64(&hmac_secret(32)),"kid":"h"});
        assert!(skip_reason(&oct).contains("oct"));
    }

    #[test]
    fn private_keys_are_refused() {
        for (alg, member) in [
            (Algorithm::Es256, "d"),
            (Algorithm::EdDsa, "d"),
            (Algorithm::Rs256, "d"),
            (Algorithm::Rs256, "p"),
            (Algorithm::Rs256, "qi"),
        ] {
            let jwk = with(public_jwk(alg, "k"), member, json!("AQAB"));
            assert!(
                parse_jwk(&jwk).unwrap_err().contains("private"),
                "{alg} {member}"
            );
        }
    }

    #[test]
    fn malformed_supported_keys_are_refused_with_the_problem() {
        let es256 = public_jwk(Algorithm::Es256, "k");
        let rsa = public_jwk(Algorithm::Rs256, "k");
        for (jwk, problem) in [
            (json!("not an object"), "JSON object"),
            (without(es256.clone(), "kty"), "kty is missing"),
            (with(es256.clone(), "kty", json!(1)), "kty is not a string"),
            (without(es256.clone(), "crv"), "crv is missing"),
            (without(es256.clone(), "x"), "x is missing"),
            (with(es256.clone(), "y", json!(5)), "y is not a string"),
            (
                with(es256.clone(), "x", json!("AAAA=")),
                "x is not base64url",
            ),
            (with(es256.clone(), "x", json!("AAAA")), "32 bytes"),
            (with(es256.clone(), "kid", json!(7)), "kid is not a string"),
            (
                with(es256.clone(), "alg", json!(["ES256"])),
                "alg is not a string",
            ),
            (
                with(es256.clone(), "use", json!(true)),
                "use is not a string",
            ),
            (with(es256.clone(), "key_ops", json!("verify")), "key_ops"),
            (with(es256, "key_ops", json!([1])), "key_ops"),
            (without(rsa.clone(), "n"), "n is missing"),
            (without(rsa.clone(), "e"), "e is missing"),
            (with(rsa.clone(), "e", json!("AQ")), "65537"),
            (with(rsa, "n", json!(b64(&[0xc1; 128]))), "bits"),
        ] {
            let error = parse_jwk(&jwk).unwrap_err();
            assert!(error.contains(problem), "{jwk}: {error}");
        }
    }

    #[test]
    fn a_point_off_the_curve_is_refused() {
        let (x, mut y) = es256_coordinates();
        y[31] ^= 1;
        let jwk = json!({"kty":"EC","crv":"P-256","x":b64(&x),"y":b64(&y)});
        assert!(parse_jwk(&jwk).unwrap_err().contains("curve"));
    }
}
