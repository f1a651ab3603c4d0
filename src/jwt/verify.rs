//! Token verification: the stricter pre-checks and every cheap refusal first,
//! jwt-simple (signature and registered claims) last.
//!
//! Order, cheapest refusal first: length, structure and base64url, header
//! (alg, crit, key-carrying members, kid), key selection, the payload as claims
//! and the claim rules (times, `iss`, `aud`, required claims, the types jwt-simple
//! reads), then jwt-simple with the chosen key. Nothing before jwt-simple costs
//! more than a linear scan of the token, so a client sending expired, foreign or
//! garbled tokens never buys signature work (5-22 million wasm instructions,
//! about 0.5-2.5 ms, against about 0.2 million for such a refusal; see the
//! Performance section of the README). jwt-simple alone would verify the
//! signature before it looks at any claim.
//!
//! Acceptance needs both: claims that pass our rules are returned only after
//! jwt-simple verified the signature and judged the registered claims itself.
//!
//! Error precedence: a token that fails both a claim rule and the signature is
//! reported with the claim error ("token expired" rather than "signature does
//! not verify"). That tells the client nothing it did not send: the claim checks
//! read only the token's own payload, which is readable by anyone holding the
//! token, and the configured rules; they never touch key material, so no answer
//! depends on a key. What becomes observable without a valid signature is
//! whether a chosen `iss`/`aud` is among the configured ones and the leeway, both
//! public by design (they are in every valid token and the issuer's discovery
//! document).

use serde_json::Value;

use super::claims::{self, ClaimRules};
use super::compact::{self, CompactJws};
use super::error::JwtError;
use super::keys::KeySet;
use super::signature::{Judge, VerifyingKey};
use super::strict_json::{self, StrictJsonError};
use crate::Claims;

/// Before any decoding: a megabyte of garbage costs one comparison (jwt-simple
/// checks the length too, but only after our pre-checks decoded the token).
fn check_size(token: &str, max_token_bytes: usize) -> Result<(), JwtError> {
    if token.len() > max_token_bytes {
        return Err(JwtError::TooLarge {
            limit: max_token_bytes,
        });
    }
    Ok(())
}

/// The checks before any signature work: size, structure, header, key choice.
fn parse_and_select_key<'k>(
    token: &str,
    keys: &'k KeySet,
    max_token_bytes: usize,
) -> Result<(CompactJws, &'k VerifyingKey), JwtError> {
    check_size(token, max_token_bytes)?;
    let jws = compact::parse(token)?;
    let key = {
        let choice = compact::check_header(&jws.header)?;
        // jwt-simple takes one key and compares alg with it; choosing the key by
        // kid and alg, and telling an unknown kid apart, is ours.
        keys.select(choice.alg, choice.kid)?
    };
    Ok((jws, key))
}

/// The payload as a JSON object with unique member names at every depth.
fn strict_claims(payload: &[u8]) -> Result<Claims, JwtError> {
    strict_json::parse_object(payload).map_err(|e| match e {
        StrictJsonError::DuplicateKey => JwtError::Malformed("claims repeat a member"),
        StrictJsonError::NotAnObject | StrictJsonError::Syntax => JwtError::ClaimsNotObject,
    })
}

/// The token's claims, strictly parsed but NOT verified: only for choosing which
/// authenticator (by `iss`) verifies it. Nothing read here may be trusted until
/// `verify` with that authenticator's keys has accepted the token.
pub fn unverified_claims(token: &str, max_token_bytes: usize) -> Result<Claims, JwtError> {
    check_size(token, max_token_bytes)?;
    let jws = compact::parse(token)?;
    compact::check_header(&jws.header)?;
    strict_claims(&jws.payload)
}

#[cfg(test)]
thread_local! {
    /// Calls into jwt-simple started on this thread: lets the tests prove which
    /// refusals come before any signature work (a count, not a timing).
    static SIGNATURE_CHECKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The one expensive step: jwt-simple.
fn check_with_jwt_simple(
    key: &VerifyingKey,
    token: &str,
    judge: Judge<'_>,
) -> Result<(), JwtError> {
    #[cfg(test)]
    SIGNATURE_CHECKS.with(|count| count.set(count.get() + 1));
    key.verify(token, judge)
}

/// Checks a compact JWS against `keys` without looking at claims.
///
/// Returns the protected header (a JSON object) and the payload bytes, which
/// need not be JSON. This is the layer the Wycheproof and RFC vectors exercise.
pub fn verify_signature(
    token: &str,
    keys: &KeySet,
    max_token_bytes: usize,
) -> Result<(Value, Vec<u8>), JwtError> {
    let (jws, key) = parse_and_select_key(token, keys, max_token_bytes)?;
    check_with_jwt_simple(key, token, Judge::SignatureOnly)?;
    Ok((Value::Object(jws.header), jws.payload))
}

/// Verifies `token` and applies `rules` at `now_unix_seconds` (the proxy's
/// clock). Returns the whole payload object, so policy can read any claim.
///
/// The claim rules run before jwt-simple (see the module comment for the error
/// precedence this gives); the claims are returned only once it accepted.
pub fn verify(
    token: &str,
    keys: &KeySet,
    rules: &ClaimRules,
    now_unix_seconds: u64,
) -> Result<Claims, JwtError> {
    let (jws, key) = parse_and_select_key(token, keys, rules.max_token_bytes)?;
    let claims = strict_claims(&jws.payload)?;
    claims::check(&claims, rules, now_unix_seconds)?;
    claims::check_registered_types(&claims)?;
    check_with_jwt_simple(key, token, Judge::Claims(rules, now_unix_seconds))?;
    Ok(claims)
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::jwt::algorithm::Algorithm;
    use crate::jwt::test_support::*;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;

    fn rules() -> ClaimRules {
        ClaimRules {
            issuers: vec!["https://issuer.example".into()],
            audiences: vec!["k8s.example.com".into()],
            ..ClaimRules::default()
        }
    }

    fn good_claims() -> Value {
        json!({
            "iss": "https://issuer.example",
            "aud": ["k8s.example.com"],
            "sub": "u-123",
            "email": "alice@example.com",
            "groups": ["dev", "ops"],
            "iat": NOW - 10,
            "exp": NOW + 300,
        })
    }

    fn hmac_keys() -> KeySet {
        let mut keys = KeySet::default();
        keys.add_hmac_secret(Some(KID), "HS256", &test_hmac_secret())
            .expect("secret");
        keys
    }

    fn hs256(header: &str, payload: &[u8]) -> String {
        hs256_token(header, payload, &test_hmac_secret())
    }

    fn header_with_kid() -> String {
        format!(r#"{{"alg":"HS256","kid":"{KID}"}}"#)
    }

    fn verify_hs256(header: &str, payload: &[u8]) -> Result<Claims, JwtError> {
        verify(&hs256(header, payload), &hmac_keys(), &rules(), NOW)
    }

    #[test]
    fn every_algorithm_verifies_and_returns_the_whole_payload() {
        let keys = key_set_with_all_algorithms();
        for alg in Algorithm::ALL {
            let token = sign(alg, Some(KID), good_claims());
            let claims =
                verify(&token, &keys, &rules(), NOW).unwrap_or_else(|e| panic!("{alg}: {e}"));
            assert_eq!(Value::Object(claims), good_claims(), "{alg}");
        }
    }

    #[test]
    fn signature_layer_returns_header_and_payload() {
        let token = hs256(&header_with_kid(), b"foo");
        let (header, payload) = verify_signature(&token, &hmac_keys(), 8192).expect("valid");
        assert_eq!(header, json!({"alg":"HS256","kid":KID}));
        assert_eq!(payload, b"foo");
    }

    #[test]
    fn alg_none_in_any_case_is_refused() {
        let payload = serde_json::to_vec(&good_claims()).expect("json");
        for alg in ["none", "None", "NONE", "nONe"] {
            let header = format!(r#"{{"alg":"{alg}","kid":"{KID}"}}"#);
            let unsigned = format!("{}.{}.", b64(header.as_bytes()), b64(&payload));
            assert_eq!(
                verify(&unsigned, &hmac_keys(), &rules(), NOW),
                Err(JwtError::AlgNone),
                "{alg}"
            );
            // With some signature bytes attached it is still refused.
            let signed = hs256(&header, &payload);
            assert_eq!(
                verify(&signed, &hmac_keys(), &rules(), NOW),
                Err(JwtError::AlgNone),
                "{alg}"
            );
        }
    }

    #[test]
    fn unknown_algorithms_are_refused() {
        let payload = serde_json::to_vec(&good_claims()).expect("json");
        for alg in ["HS257", "hs256", "ES512", "RSA-OAEP", ""] {
            let header = format!(r#"{{"alg":"{alg}","kid":"{KID}"}}"#);
            assert_eq!(
                verify(&hs256(&header, &payload), &hmac_keys(), &rules(), NOW),
                Err(JwtError::unsupported_alg(alg))
            );
        }
    }

    #[test]
    fn an_rsa_public_key_is_never_an_hmac_secret() {
        // The classic confusion: HS256 "signed" with the verifier's RSA public key.
        let mut keys = KeySet::default();
        keys.add_pem(Some("rsa"), "RS256", &rsa_public_pem())
            .expect("pem");
        let payload = serde_json::to_vec(&good_claims()).expect("json");
        let pem = rsa_public_pem();
        let (n, _) = rsa_components();
        for secret in [pem.as_bytes(), pem.trim().as_bytes(), &n[..]] {
            let with_kid = hs256_token(r#"{"alg":"HS256","kid":"rsa"}"#, &payload, secret);
            assert_eq!(
                verify(&with_kid, &keys, &rules(), NOW),
                Err(JwtError::AlgMismatch {
                    kid: "rsa".into(),
                    key_alg: Algorithm::Rs256,
                    token_alg: Algorithm::Hs256
                })
            );
            let without_kid = hs256_token(r#"{"alg":"HS256"}"#, &payload, secret);
            assert_eq!(
                verify(&without_kid, &keys, &rules(), NOW),
                Err(JwtError::NoKeyForAlg(Algorithm::Hs256))
            );
        }
        // Also when an HMAC secret is configured under another kid.
        keys.add_hmac_secret(Some("hmac"), "HS256", &test_hmac_secret())
            .expect("secret");
        let confused = hs256_token(r#"{"alg":"HS256","kid":"rsa"}"#, &payload, pem.as_bytes());
        assert!(matches!(
            verify(&confused, &keys, &rules(), NOW),
            Err(JwtError::AlgMismatch { .. })
        ));
        let confused = hs256_token(r#"{"alg":"HS256","kid":"hmac"}"#, &payload, pem.as_bytes());
        assert_eq!(
            verify(&confused, &keys, &rules(), NOW),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn every_cross_algorithm_signature_is_refused() {
        // A token signed for one algorithm, relabelled as another that the same
        // kid also has: the relabelled signature never verifies.
        let keys = key_set_with_all_algorithms();
        for signed_as in Algorithm::ALL {
            let token = sign(signed_as, Some(KID), good_claims());
            let signature = token.rsplit('.').next().expect("three parts");
            let payload = token.split('.').nth(1).expect("three parts");
            for claimed in Algorithm::ALL.into_iter().filter(|a| *a != signed_as) {
                let header = format!(r#"{{"alg":"{}","kid":"{KID}"}}"#, claimed.name());
                let relabelled = format!("{}.{payload}.{signature}", b64(header.as_bytes()));
                assert_eq!(
                    verify(&relabelled, &keys, &rules(), NOW),
                    Err(JwtError::BadSignature),
                    "signed {signed_as}, claimed {claimed}"
                );
            }
        }
    }

    #[test]
    fn unknown_kid_is_its_own_error_and_comes_before_signature_work() {
        let keys = key_set_with_all_algorithms();
        let token = sign(Algorithm::Es256, Some("rotated-away"), good_claims());
        assert_eq!(
            verify(&token, &keys, &rules(), NOW),
            Err(JwtError::unknown_kid("rotated-away"))
        );
        // A garbage signature does not change the answer: no signature work ran.
        assert_eq!(
            verify(&tamper_signature(&token), &keys, &rules(), NOW),
            Err(JwtError::unknown_kid("rotated-away"))
        );
    }

    #[test]
    fn a_kid_for_another_algorithm_is_refused() {
        let mut keys = KeySet::default();
        keys.add_pem(Some("ec"), "ES256", &es256_public_pem())
            .expect("pem");
        keys.add_pem(Some("rsa"), "RS256", &rsa_public_pem())
            .expect("pem");
        // An ES256 token naming the RSA key's kid.
        let token = sign(Algorithm::Es256, Some("rsa"), good_claims());
        assert_eq!(
            verify(&token, &keys, &rules(), NOW),
            Err(JwtError::AlgMismatch {
                kid: "rsa".into(),
                key_alg: Algorithm::Rs256,
                token_alg: Algorithm::Es256
            })
        );
        assert!(verify(
            &sign(Algorithm::Es256, Some("ec"), good_claims()),
            &keys,
            &rules(),
            NOW
        )
        .is_ok());
    }

    #[test]
    fn kidless_tokens_verify_only_with_a_single_candidate_key() {
        let mut keys = KeySet::default();
        keys.add_pem(Some("ec"), "ES256", &es256_public_pem())
            .expect("pem");
        let token = sign(Algorithm::Es256, None, good_claims());
        assert!(verify(&token, &keys, &rules(), NOW).is_ok());
        keys.add_jwks(&json!({"keys": [public_jwk(Algorithm::Es256, "ec2")]}))
            .expect("jwks");
        assert_eq!(
            verify(&token, &keys, &rules(), NOW),
            Err(JwtError::AmbiguousKey(Algorithm::Es256))
        );
        let token = sign(Algorithm::Rs256, None, good_claims());
        assert_eq!(
            verify(&token, &keys, &rules(), NOW),
            Err(JwtError::NoKeyForAlg(Algorithm::Rs256))
        );
    }

    #[test]
    fn bad_and_truncated_signatures_are_refused() {
        let keys = key_set_with_all_algorithms();
        for alg in Algorithm::ALL {
            let token = sign(alg, Some(KID), good_claims());
            for bad in [
                tamper_signature(&token),
                truncate_signature(&token),
                tamper_payload(&token),
            ] {
                assert_eq!(
                    verify(&bad, &keys, &rules(), NOW),
                    Err(JwtError::BadSignature),
                    "{alg}"
                );
            }
            // A signature lifted from another token of the same key.
            let other = sign(alg, Some(KID), json!({"sub":"mallory","exp":NOW + 300}));
            let lifted = format!(
                "{}.{}",
                token.rsplit_once('.').expect("dots").0,
                other.rsplit_once('.').expect("dots").1
            );
            assert_eq!(
                verify(&lifted, &keys, &rules(), NOW),
                Err(JwtError::BadSignature),
                "{alg}"
            );
        }
    }

    /// What `f` returned and how many signature checks it started.
    fn with_signature_count<T>(f: impl FnOnce() -> T) -> (T, usize) {
        let before = SIGNATURE_CHECKS.with(std::cell::Cell::get);
        let outcome = f();
        (
            outcome,
            SIGNATURE_CHECKS.with(std::cell::Cell::get) - before,
        )
    }

    #[test]
    fn an_expired_token_with_a_bad_signature_is_expired_and_costs_no_signature_check() {
        let keys = key_set_with_all_algorithms();
        let mut expired = good_claims();
        expired["exp"] = json!(NOW - 61);
        for alg in Algorithm::ALL {
            let forged = tamper_signature(&sign(alg, Some(KID), expired.clone()));
            let (outcome, checks) = with_signature_count(|| verify(&forged, &keys, &rules(), NOW));
            assert_eq!(outcome, Err(JwtError::Expired), "{alg}");
            assert_eq!(checks, 0, "{alg}: no signature work for an expired token");
        }
        // Good claims: exactly one check, which alone decides.
        let token = sign(Algorithm::Es256, Some(KID), good_claims());
        let (outcome, checks) = with_signature_count(|| verify(&token, &keys, &rules(), NOW));
        assert_eq!((outcome.map(Value::Object), checks), (Ok(good_claims()), 1));
        let forged = tamper_signature(&token);
        let (outcome, checks) = with_signature_count(|| verify(&forged, &keys, &rules(), NOW));
        assert_eq!((outcome, checks), (Err(JwtError::BadSignature), 1));
    }

    #[test]
    fn every_cheap_refusal_comes_before_signature_work() {
        // Each token also carries a bad signature: the cheap check must answer first.
        let keys = key_set_with_all_algorithms();
        let mut rsa_only = KeySet::default();
        rsa_only
            .add_pem(Some("rsa"), "RS256", &rsa_public_pem())
            .expect("pem");
        let forged = |claims: Value| tamper_signature(&sign(Algorithm::Es256, Some(KID), claims));
        let with = |name: &str, value: Value| {
            let mut claims = good_claims();
            claims[name] = value;
            forged(claims)
        };
        let token = forged(good_claims());
        let (head, _) = token.rsplit_once('.').expect("dots");
        let not_an_object = format!(
            "{}.{}.{}",
            b64(format!(r#"{{"alg":"ES256","kid":"{KID}"}}"#).as_bytes()),
            b64(b"[1]"),
            token.rsplit('.').next().expect("signature")
        );
        let cases: Vec<(&str, String, &KeySet, JwtError)> = vec![
            (
                "size",
                "x".repeat(9000),
                &keys,
                JwtError::TooLarge { limit: 8192 },
            ),
            (
                "structure",
                format!("{head}.."),
                &keys,
                JwtError::Malformed("a JWS in compact form has exactly three dot-separated parts"),
            ),
            (
                "unknown kid",
                tamper_signature(&sign(Algorithm::Es256, Some("gone"), good_claims())),
                &keys,
                JwtError::unknown_kid("gone"),
            ),
            (
                "alg mismatch",
                tamper_signature(&sign(Algorithm::Es256, Some("rsa"), good_claims())),
                &rsa_only,
                JwtError::AlgMismatch {
                    kid: "rsa".into(),
                    key_alg: Algorithm::Rs256,
                    token_alg: Algorithm::Es256,
                },
            ),
            ("payload", not_an_object, &keys, JwtError::ClaimsNotObject),
            (
                "expired",
                with("exp", json!(NOW - 61)),
                &keys,
                JwtError::Expired,
            ),
            (
                "not yet valid",
                with("nbf", json!(NOW + 61)),
                &keys,
                JwtError::NotYetValid,
            ),
            (
                "issuer",
                with("iss", json!("https://evil.example")),
                &keys,
                JwtError::IssuerNotAccepted,
            ),
            (
                "audience",
                with("aud", json!("other.example.com")),
                &keys,
                JwtError::AudienceNotAccepted,
            ),
        ];
        for (label, token, keys, expected) in cases {
            let (outcome, checks) = with_signature_count(|| verify(&token, keys, &rules(), NOW));
            assert_eq!(outcome, Err(expected), "{label}");
            assert_eq!(checks, 0, "{label}");
        }
        let required = ClaimRules {
            required_claims: vec!["department".into()],
            ..rules()
        };
        let (outcome, checks) = with_signature_count(|| verify(&token, &keys, &required, NOW));
        assert_eq!(outcome, Err(JwtError::MissingClaim("department".into())));
        assert_eq!(checks, 0);
    }

    #[test]
    fn claim_rules_apply_to_well_signed_tokens_too() {
        let keys = key_set_with_all_algorithms();
        let mut expired = good_claims();
        expired["exp"] = json!(NOW - 61);
        let mut early = good_claims();
        early["nbf"] = json!(NOW + 61);
        let mut future = good_claims();
        future["iat"] = json!(NOW + 61);
        let mut wrong_iss = good_claims();
        wrong_iss["iss"] = json!("https://evil.example");
        let mut wrong_aud = good_claims();
        wrong_aud["aud"] = json!("other.example.com");
        let mut exp_string = good_claims();
        exp_string["exp"] = json!((NOW + 300).to_string());
        for (claims, expected) in [
            (expired, JwtError::Expired),
            (early, JwtError::NotYetValid),
            (future, JwtError::IssuedInFuture),
            (wrong_iss, JwtError::IssuerNotAccepted),
            (wrong_aud, JwtError::AudienceNotAccepted),
        ] {
            let token = sign(Algorithm::Es256, Some(KID), claims);
            assert_eq!(verify(&token, &keys, &rules(), NOW), Err(expected));
        }
        let token = sign(Algorithm::Rs256, Some(KID), exp_string);
        assert!(matches!(
            verify(&token, &keys, &rules(), NOW),
            Err(JwtError::InvalidClaim { .. })
        ));
        let required = ClaimRules {
            required_claims: vec!["department".into()],
            ..rules()
        };
        let token = sign(Algorithm::EdDsa, Some(KID), good_claims());
        assert_eq!(
            verify(&token, &keys, &required, NOW),
            Err(JwtError::MissingClaim("department".into()))
        );
    }

    #[test]
    fn the_clock_is_the_argument() {
        let keys = key_set_with_all_algorithms();
        // Valid in 2001 only, judged "in 2001": accepted. The system clock says
        // otherwise, and must not be consulted.
        let claims =
            json!({"iss":"https://issuer.example","aud":"k8s.example.com","exp":1_000_000_300u64});
        let token = sign(Algorithm::Es256, Some(KID), claims);
        assert!(verify(&token, &keys, &rules(), 1_000_000_000).is_ok());
        assert_eq!(verify(&token, &keys, &rules(), NOW), Err(JwtError::Expired));
    }

    #[test]
    fn oversize_tokens_are_refused_before_decoding() {
        let keys = hmac_keys();
        let token = hs256(
            &header_with_kid(),
            &serde_json::to_vec(&good_claims()).expect("json"),
        );
        let exact = ClaimRules {
            max_token_bytes: token.len(),
            ..rules()
        };
        assert!(verify(&token, &keys, &exact, NOW).is_ok());
        let short = ClaimRules {
            max_token_bytes: token.len() - 1,
            ..rules()
        };
        assert_eq!(
            verify(&token, &keys, &short, NOW),
            Err(JwtError::TooLarge {
                limit: token.len() - 1
            })
        );
        // Garbage past the limit is reported as too large, not as garbage.
        let garbage = "\u{0}!.~".repeat(10_000);
        assert_eq!(
            verify(&garbage, &keys, &rules(), NOW),
            Err(JwtError::TooLarge { limit: 8192 })
        );
        assert_eq!(
            verify_signature(&garbage, &keys, 100),
            Err(JwtError::TooLarge { limit: 100 })
        );
    }

    #[test]
    fn structure_errors_on_a_real_token() {
        let keys = key_set_with_all_algorithms();
        let token = sign(Algorithm::Es256, Some(KID), good_claims());
        let (head, signature) = token.rsplit_once('.').expect("dots");
        for bad in [
            format!("{token}."),
            format!("{token}.{signature}"),
            format!(".{token}"),
            format!("{head}.{signature}="),
            format!("{head}={}", &token[head.len()..]),
            format!(" {token}"),
            format!("{token} "),
            format!("{token}\n"),
            format!("{head}. {signature}"),
            token.replacen('.', "..", 1),
            token.replace('-', "+").replace('_', "/"),
            head.to_string(),
            String::new(),
        ] {
            if bad == token {
                continue; // the alphabet swap found nothing to swap
            }
            assert!(
                matches!(
                    verify(&bad, &keys, &rules(), NOW),
                    Err(JwtError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn payloads_that_are_not_claim_objects_are_refused_after_a_good_signature() {
        for (payload, expected) in [
            (&b"foo"[..], JwtError::ClaimsNotObject),
            (b"", JwtError::ClaimsNotObject),
            (b"[1,2]", JwtError::ClaimsNotObject),
            (b"\"sub\"", JwtError::ClaimsNotObject),
            (b"{\"exp\":1e400}", JwtError::ClaimsNotObject),
            (b"{\"sub\":\"\xff\xfe\"}", JwtError::ClaimsNotObject),
            (b"\xc3\x28", JwtError::ClaimsNotObject),
            (
                b"{\"exp\":1,\"exp\":99999999999}",
                JwtError::Malformed("claims repeat a member"),
            ),
            (
                b"{\"aud\":\"x\",\"aud\":\"k8s.example.com\",\"exp\":99999999999}",
                JwtError::Malformed("claims repeat a member"),
            ),
        ] {
            assert_eq!(
                verify_hs256(&header_with_kid(), payload),
                Err(expected),
                "{}",
                String::from_utf8_lossy(payload)
            );
        }
    }

    #[test]
    fn json_depth_bombs_are_refused_in_header_and_payload() {
        let depth = 3_000;
        let bomb = format!(
            r#"{{"exp":99999999999,"x":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert_eq!(
            verify_hs256(&header_with_kid(), bomb.as_bytes()),
            Err(JwtError::ClaimsNotObject)
        );
        // 500 levels: past serde_json's limit of 128, within the header length limit.
        let header_bomb = format!(
            r#"{{"alg":"HS256","kid":"{KID}","x":{}{}}}"#,
            "{\"a\":".repeat(500),
            "}".repeat(500)
        );
        let token = hs256(&header_bomb, b"{}");
        assert_eq!(
            verify_signature(&token, &hmac_keys(), 100_000),
            Err(JwtError::Malformed("header is not JSON"))
        );
    }

    #[test]
    fn header_smuggling_is_refused() {
        let payload = serde_json::to_vec(&good_claims()).expect("json");
        for header in [
            format!(r#"{{"alg":"HS256","kid":"{KID}","alg":"none"}}"#),
            format!(r#"{{"alg":"none","kid":"{KID}","alg":"HS256"}}"#),
            format!(r#"{{"alg":"HS256","kid":"other","kid":"{KID}"}}"#),
        ] {
            assert_eq!(
                verify_hs256(&header, &payload),
                Err(JwtError::Malformed("header repeats a member")),
                "{header}"
            );
        }
        let crit = format!(r#"{{"alg":"HS256","kid":"{KID}","crit":["exp"],"exp":1}}"#);
        assert!(matches!(
            verify_hs256(&crit, &payload),
            Err(JwtError::UnsupportedHeader(_))
        ));
        // A key or certificate named in the header is refused, even when the token
        // also names a configured key and verifies with it.
        let embedded = format!(
            r#"{{"alg":"HS256","kid":"unknown","jwk":{{"kty":"oct","k":"{}"}}}}"#,
            b64(&test_hmac_secret())
        );
        assert!(matches!(
            verify_hs256(&embedded, &payload),
            Err(JwtError::UnsupportedHeader(_))
        ));
        for member in ["jku", "x5u"] {
            let header =
                format!(r#"{{"alg":"HS256","kid":"{KID}","{member}":"https://evil.example/k"}}"#);
            assert!(matches!(
                verify_hs256(&header, &payload),
                Err(JwtError::UnsupportedHeader(_))
            ));
        }
    }

    #[test]
    fn typ_is_judged_by_jwt_simple() {
        let payload = serde_json::to_vec(&good_claims()).expect("json");
        for typ in ["JWT", "jwt", "at+jwt", "application/at+JWT"] {
            let header = format!(r#"{{"alg":"HS256","kid":"{KID}","typ":"{typ}"}}"#);
            assert!(verify_hs256(&header, &payload).is_ok(), "{typ}");
        }
        for typ in ["JOSE", "JWS", "jwt2", ""] {
            let header = format!(r#"{{"alg":"HS256","kid":"{KID}","typ":"{typ}"}}"#);
            assert_eq!(
                verify_hs256(&header, &payload),
                Err(JwtError::UnsupportedHeader("typ is not JWT")),
                "{typ}"
            );
        }
        for header in [
            format!(r#"{{"alg":"HS256","kid":"{KID}","typ":1}}"#),
            format!(r#"{{"alg":"HS256","kid":"{KID}","x5t":5}}"#),
        ] {
            assert_eq!(
                verify_hs256(&header, &payload),
                Err(JwtError::UnsupportedHeader(
                    "a header member has an unexpected type"
                )),
                "{header}"
            );
        }
    }

    #[test]
    fn signatures_must_be_canonical_base64url() {
        // jwt-simple decodes the signature part (ct-codecs, as strict as ours).
        let token = hs256(
            &header_with_kid(),
            &serde_json::to_vec(&good_claims()).expect("json"),
        );
        let (head, signature) = token.rsplit_once('.').expect("dots");
        // An HS256 MAC is 32 bytes: 43 characters, the last carrying 2 spare bits;
        // setting one gives another spelling of the same bytes.
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut stray_bits = signature.as_bytes().to_vec();
        let last = stray_bits.pop().expect("non-empty");
        let value = ALPHABET.iter().position(|&c| c == last).expect("alphabet");
        stray_bits.push(ALPHABET[value ^ 1]);
        let stray_bits = String::from_utf8(stray_bits).expect("ascii");
        for bad in [
            format!("{signature}="),
            format!("{signature}=="),
            format!(" {signature}"),
            format!("{}+", &signature[1..]),
            format!("{}/", &signature[1..]),
            format!("{signature}\r"),
            format!("{signature}AA"),
            stray_bits,
        ] {
            assert_eq!(
                verify(&format!("{head}.{bad}"), &hmac_keys(), &rules(), NOW),
                Err(JwtError::Malformed("signature is not base64url")),
                "{bad:?}"
            );
        }
        // An empty signature is no signature.
        assert_eq!(
            verify(&format!("{head}."), &hmac_keys(), &rules(), NOW),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn headers_longer_than_jwt_simple_reads_are_refused() {
        // jwt-simple's limit (8 KiB of base64url), reached through a larger token limit.
        let padding = "x".repeat(8192);
        let header = format!(r#"{{"alg":"HS256","kid":"{KID}","pad":"{padding}"}}"#);
        let token = hs256(&header, b"{}");
        assert_eq!(
            verify_signature(&token, &hmac_keys(), 100_000),
            Err(JwtError::Malformed("header too long"))
        );
    }

    #[test]
    fn a_non_string_registered_claim_is_refused_before_signature_work() {
        let keys = key_set_with_all_algorithms();
        for (name, value) in [
            ("iss", json!(5)),
            ("sub", json!({"id": 1})),
            ("jti", json!(1)),
            ("nonce", json!([])),
            ("aud", json!(null)),
            ("aud", json!(["k8s.example.com", 1])),
        ] {
            let mut claims = good_claims();
            claims[name] = value.clone();
            let forged = tamper_signature(&sign(Algorithm::Es256, Some(KID), claims));
            let open = ClaimRules::default();
            let (outcome, checks) = with_signature_count(|| verify(&forged, &keys, &open, NOW));
            assert!(
                matches!(outcome, Err(JwtError::InvalidClaim { ref claim, .. }) if claim == name),
                "{name} = {value}: {outcome:?}"
            );
            assert_eq!(checks, 0, "{name}");
        }
    }

    #[test]
    fn the_strict_and_the_jwt_simple_rules_must_both_accept() {
        // At exp == now - leeway jwt-simple would still accept; ours has expired it.
        let keys = key_set_with_all_algorithms();
        let mut claims = good_claims();
        claims["exp"] = json!(NOW - 60);
        let token = sign(Algorithm::Es256, Some(KID), claims);
        assert_eq!(verify(&token, &keys, &rules(), NOW), Err(JwtError::Expired));
        // With a clock before the leeway jwt-simple refuses every exp; ours would not.
        let claims = json!({"exp": 100});
        let token = sign(Algorithm::Es256, Some(KID), claims.clone());
        let claims = match claims {
            Value::Object(map) => map,
            _ => unreachable!(),
        };
        assert_eq!(check_claims_at(&claims, 10), Ok(()));
        assert_eq!(
            verify(&token, &keys, &ClaimRules::default(), 10),
            Err(JwtError::Expired)
        );
    }

    fn check_claims_at(claims: &Claims, now: u64) -> Result<(), JwtError> {
        claims::check(claims, &ClaimRules::default(), now)
    }

    #[test]
    fn large_and_odd_numbers_never_panic() {
        for exp in [
            "18446744073709551615",
            "18446744073709551616",
            "-1",
            "-0",
            "0.0",
            "1e18",
            "1.7976931348623157e308",
            "-9223372036854775808",
            "5e-324",
        ] {
            let payload = format!(r#"{{"exp":{exp}}}"#);
            let token = hs256(&header_with_kid(), payload.as_bytes());
            let outcome = verify(&token, &hmac_keys(), &ClaimRules::default(), NOW);
            let ok = exp == "18446744073709551615";
            assert_eq!(outcome.is_ok(), ok, "exp = {exp}: {outcome:?}");
        }
    }
}
