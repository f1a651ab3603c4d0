//! Claim checks (RFC 7519 section 4.1) on the caller's clock: the cheap refusals
//! `verify` runs before jwt-simple, and the whole check on a verified-token cache
//! hit, where no signature (and so no jwt-simple) runs.
//!
//! jwt-simple checks the same times, `iss` and `aud` again after the signature
//! (signature.rs); these rules are stricter where it is lenient:
//! - `exp` is required (jwt-simple accepts a token without one; the Kubernetes
//!   API server refuses it too);
//! - NumericDate claims (`exp`, `nbf`, `iat`) must be non-negative JSON integers:
//!   jwt-simple truncates floats; strings, floats, negatives and numbers beyond u64
//!   are refused here rather than rounded;
//! - `aud` is a string or a list of strings, and the registered string claims are
//!   strings ([`check_registered_types`]): jwt-simple finds out only after the
//!   signature, as an unreadable payload;
//! - the rules run before any signature work, which jwt-simple's order does not.
//!
//! Time comes only from the `now` argument (the proxy's clock), never from the
//! system. Comparisons are done in u128, where `u64 + u64` cannot overflow, so
//! every value gives the exact answer and none can panic.

use serde_json::Value;

use super::error::JwtError;
use crate::Claims;

/// What a verified token's claims must satisfy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRules {
    /// Accepted `iss` values; empty means `iss` is not checked.
    pub issuers: Vec<String>,
    /// Accepted `aud` values (the token needs one of them); empty: not checked.
    pub audiences: Vec<String>,
    /// Clock skew tolerated on `exp`, `nbf`, `iat` and the maximum age.
    pub leeway_seconds: u64,
    /// When set, `iat` is required and may be at most this old.
    pub max_age_seconds: Option<u64>,
    /// Claims that must be present and not null.
    pub required_claims: Vec<String>,
    /// Longer tokens are refused before any decoding.
    pub max_token_bytes: usize,
}

impl Default for ClaimRules {
    fn default() -> Self {
        ClaimRules {
            issuers: Vec::new(),
            audiences: Vec::new(),
            leeway_seconds: 60,
            max_age_seconds: None,
            required_claims: Vec::new(),
            max_token_bytes: 8192,
        }
    }
}

/// Checks `claims` against `rules` at `now` (Unix seconds).
pub fn check(claims: &Claims, rules: &ClaimRules, now: u64) -> Result<(), JwtError> {
    let leeway = rules.leeway_seconds;

    let now = u128::from(now);
    let leeway = u128::from(leeway);

    // Expired when exp <= now - leeway.
    let exp = numeric_date(claims, "exp")?.ok_or_else(|| JwtError::MissingClaim("exp".into()))?;
    if exp + leeway <= now {
        return Err(JwtError::Expired);
    }
    // Not yet valid when nbf > now + leeway.
    if let Some(nbf) = numeric_date(claims, "nbf")? {
        if nbf > now + leeway {
            return Err(JwtError::NotYetValid);
        }
    }
    // Issued in the future when iat > now + leeway.
    let iat = numeric_date(claims, "iat")?;
    if let Some(iat) = iat {
        if iat > now + leeway {
            return Err(JwtError::IssuedInFuture);
        }
    }
    // Too old when now - iat > max_age + leeway.
    if let Some(max_age) = rules.max_age_seconds {
        let iat = iat.ok_or_else(|| JwtError::MissingClaim("iat".into()))?;
        if now > iat + u128::from(max_age) + leeway {
            return Err(JwtError::TooOld);
        }
    }

    if !rules.issuers.is_empty() {
        match claims.get("iss") {
            None | Some(Value::Null) => return Err(JwtError::MissingClaim("iss".into())),
            Some(Value::String(iss)) if rules.issuers.iter().any(|ok| ok == iss) => {}
            Some(Value::String(_)) => return Err(JwtError::IssuerNotAccepted),
            Some(_) => return Err(JwtError::invalid_claim("iss", "is not a string")),
        }
    }

    if !rules.audiences.is_empty() {
        let accepted = |aud: &str| rules.audiences.iter().any(|ok| ok == aud);
        let matched = match claims.get("aud") {
            None | Some(Value::Null) => return Err(JwtError::MissingClaim("aud".into())),
            Some(Value::String(aud)) => accepted(aud),
            Some(Value::Array(list)) => {
                // Every element must be a string: a list smuggling other types is
                // malformed, not partly acceptable.
                let mut matched = false;
                for item in list {
                    match item {
                        Value::String(aud) => matched |= accepted(aud),
                        _ => {
                            return Err(JwtError::invalid_claim(
                                "aud",
                                "is a list with a non-string element",
                            ))
                        }
                    }
                }
                matched
            }
            Some(_) => {
                return Err(JwtError::invalid_claim(
                    "aud",
                    "is neither a string nor a list of strings",
                ))
            }
        };
        if !matched {
            return Err(JwtError::AudienceNotAccepted);
        }
    }

    for name in &rules.required_claims {
        if matches!(claims.get(name), None | Some(Value::Null)) {
            return Err(JwtError::MissingClaim(name.clone()));
        }
    }
    Ok(())
}

/// The registered claims jwt-simple reads into typed fields must have those types
/// whatever the rules (`check` looks at `iss` and `aud` only when configured):
/// `iss`, `sub`, `jti` and `nonce` strings (null reads as absent), `aud` a string
/// or a list of strings. Checked before the signature, so that jwt-simple's claim
/// parse after the signature cannot fail.
pub(crate) fn check_registered_types(claims: &Claims) -> Result<(), JwtError> {
    for name in ["iss", "sub", "jti", "nonce"] {
        match claims.get(name) {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(_) => return Err(JwtError::invalid_claim(name, "is not a string")),
        }
    }
    match claims.get("aud") {
        None | Some(Value::String(_)) => Ok(()),
        Some(Value::Array(list)) if list.iter().all(Value::is_string) => Ok(()),
        Some(_) => Err(JwtError::invalid_claim(
            "aud",
            "is neither a string nor a list of strings",
        )),
    }
}

/// A NumericDate claim: absent, or a non-negative integer number of seconds
/// (widened to u128 for overflow-free comparisons).
fn numeric_date(claims: &Claims, name: &str) -> Result<Option<u128>, JwtError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(number)) => {
            number.as_u64().map(|n| Some(u128::from(n))).ok_or_else(|| {
                JwtError::invalid_claim(name, "must be a non-negative whole number of seconds")
            })
        }
        Some(_) => Err(JwtError::invalid_claim(
            name,
            "must be a number of seconds since 1970",
        )),
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use serde_json::json;

    const NOW: u64 = 1_700_000_000;
    const LEEWAY: u64 = 60;

    fn claims(value: Value) -> Claims {
        match value {
            Value::Object(map) => map,
            _ => panic!("claims must be an object"),
        }
    }

    fn rules() -> ClaimRules {
        ClaimRules {
            leeway_seconds: LEEWAY,
            ..ClaimRules::default()
        }
    }

    fn check_at(value: Value, rules: &ClaimRules, now: u64) -> Result<(), JwtError> {
        check(&claims(value), rules, now)
    }

    fn with_exp(mut value: Value) -> Value {
        value["exp"] = json!(NOW + 3600);
        value
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let rules = ClaimRules::default();
        assert_eq!(rules.leeway_seconds, 60);
        assert_eq!(rules.max_token_bytes, 8192);
        assert_eq!(rules.max_age_seconds, None);
        assert!(rules.issuers.is_empty() && rules.audiences.is_empty());
        assert!(rules.required_claims.is_empty());
    }

    #[test]
    fn exp_is_required() {
        assert_eq!(
            check_at(json!({"sub":"a"}), &rules(), NOW),
            Err(JwtError::MissingClaim("exp".into()))
        );
    }

    #[test]
    fn exp_at_and_around_the_leeway_boundary() {
        // Expired when exp <= now - leeway.
        for (exp, expected) in [
            (NOW - LEEWAY - 1, Err(JwtError::Expired)),
            (NOW - LEEWAY, Err(JwtError::Expired)),
            (NOW - LEEWAY + 1, Ok(())),
            (NOW, Ok(())),
            (NOW + 1, Ok(())),
        ] {
            assert_eq!(
                check_at(json!({ "exp": exp }), &rules(), NOW),
                expected,
                "exp = now {:+}",
                exp as i64 - NOW as i64
            );
        }
        // Without leeway, exp == now is already expired.
        let strict = ClaimRules {
            leeway_seconds: 0,
            ..rules()
        };
        assert_eq!(
            check_at(json!({"exp": NOW}), &strict, NOW),
            Err(JwtError::Expired)
        );
        assert_eq!(check_at(json!({"exp": NOW + 1}), &strict, NOW), Ok(()));
    }

    #[test]
    fn nbf_at_and_around_the_leeway_boundary() {
        for (nbf, expected) in [
            (NOW + LEEWAY + 1, Err(JwtError::NotYetValid)),
            (NOW + LEEWAY, Ok(())),
            (NOW + LEEWAY - 1, Ok(())),
            (NOW, Ok(())),
            (0, Ok(())),
        ] {
            assert_eq!(
                check_at(with_exp(json!({ "nbf": nbf })), &rules(), NOW),
                expected,
                "nbf = {nbf}"
            );
        }
    }

    #[test]
    fn iat_in_the_future_at_and_around_the_leeway_boundary() {
        for (iat, expected) in [
            (NOW + LEEWAY + 1, Err(JwtError::IssuedInFuture)),
            (NOW + LEEWAY, Ok(())),
            (NOW, Ok(())),
        ] {
            assert_eq!(
                check_at(with_exp(json!({ "iat": iat })), &rules(), NOW),
                expected,
                "iat = {iat}"
            );
        }
    }

    #[test]
    fn max_age_needs_iat_and_bounds_it_with_the_leeway() {
        let aged = ClaimRules {
            max_age_seconds: Some(300),
            ..rules()
        };
        assert_eq!(
            check_at(with_exp(json!({})), &aged, NOW),
            Err(JwtError::MissingClaim("iat".into()))
        );
        for (iat, expected) in [
            (NOW - 300 - LEEWAY - 1, Err(JwtError::TooOld)),
            (NOW - 300 - LEEWAY, Ok(())),
            (NOW - 300, Ok(())),
            (NOW, Ok(())),
            // A future iat within the leeway is not "old".
            (NOW + LEEWAY, Ok(())),
        ] {
            assert_eq!(
                check_at(with_exp(json!({ "iat": iat })), &aged, NOW),
                expected,
                "iat = {iat}"
            );
        }
        // iat is not required when no maximum age is set.
        assert_eq!(check_at(with_exp(json!({})), &rules(), NOW), Ok(()));
    }

    #[test]
    fn numeric_dates_of_the_wrong_type_or_range_are_refused() {
        for bad in [
            json!("4000000000"),
            json!(null),
            json!(true),
            json!([4_000_000_000u64]),
            json!({"t": 4_000_000_000u64}),
            json!(-1),
            json!(i64::MIN),
            json!(1.5),
            json!(4_000_000_000.0),
            json!(1e300),
            json!(f64::MAX),
        ] {
            for name in ["exp", "nbf", "iat"] {
                let mut value = with_exp(json!({}));
                value[name] = bad.clone();
                assert!(
                    matches!(
                        check_at(value, &rules(), NOW),
                        Err(JwtError::InvalidClaim { ref claim, .. }) if claim == name
                    ),
                    "{name} = {bad}"
                );
            }
        }
        // u64::MAX + 1 parses as a float: refused, not wrapped.
        let too_big: Value = serde_json::from_str(r#"{"exp":18446744073709551616}"#).expect("json");
        assert!(matches!(
            check_at(too_big, &rules(), NOW),
            Err(JwtError::InvalidClaim { .. })
        ));
    }

    #[test]
    fn extreme_times_do_not_overflow() {
        let far = json!({"exp": u64::MAX, "nbf": u64::MAX - 10, "iat": u64::MAX});
        let wide = ClaimRules {
            leeway_seconds: u64::MAX,
            max_age_seconds: Some(u64::MAX),
            ..rules()
        };
        assert_eq!(check_at(far.clone(), &wide, 0), Ok(()));
        assert_eq!(check_at(far.clone(), &wide, u64::MAX), Ok(()));
        assert_eq!(check_at(far, &rules(), 0), Err(JwtError::NotYetValid));
        // exact answers at the edges, where saturating arithmetic would be wrong
        let old = json!({"exp": 1, "iat": 0});
        assert_eq!(
            check_at(old.clone(), &rules(), u64::MAX),
            Err(JwtError::Expired)
        );
        assert_eq!(check_at(old, &wide, u64::MAX), Ok(()));
        assert_eq!(
            check_at(json!({"exp": 0}), &wide, u64::MAX),
            Err(JwtError::Expired)
        );
        assert_eq!(
            check_at(json!({"exp": u64::MAX}), &rules(), u64::MAX),
            Ok(())
        );
        let no_leeway = ClaimRules {
            leeway_seconds: 0,
            ..rules()
        };
        assert_eq!(
            check_at(json!({"exp": u64::MAX}), &no_leeway, u64::MAX),
            Err(JwtError::Expired)
        );
        // now < leeway: exp 0 at now 10 is within a 60 s leeway.
        assert_eq!(check_at(json!({"exp": 0}), &rules(), 10), Ok(()));
        assert_eq!(
            check_at(json!({"exp": 0}), &rules(), 60),
            Err(JwtError::Expired)
        );
    }

    #[test]
    fn issuer_must_be_one_of_the_accepted() {
        let rules = ClaimRules {
            issuers: vec!["https://a.example".into(), "https://b.example".into()],
            ..rules()
        };
        assert_eq!(
            check_at(with_exp(json!({"iss":"https://b.example"})), &rules, NOW),
            Ok(())
        );
        for iss in [
            "https://c.example",
            "https://a.example/",
            "HTTPS://A.EXAMPLE",
            "",
        ] {
            assert_eq!(
                check_at(with_exp(json!({ "iss": iss })), &rules, NOW),
                Err(JwtError::IssuerNotAccepted),
                "{iss}"
            );
        }
        assert_eq!(
            check_at(with_exp(json!({})), &rules, NOW),
            Err(JwtError::MissingClaim("iss".into()))
        );
        for iss in [
            json!(["https://a.example"]),
            json!(1),
            json!({"u":"https://a.example"}),
        ] {
            assert!(matches!(
                check_at(with_exp(json!({ "iss": iss })), &rules, NOW),
                Err(JwtError::InvalidClaim { .. })
            ));
        }
    }

    #[test]
    fn issuer_is_not_checked_when_no_issuer_is_configured() {
        assert_eq!(check_at(with_exp(json!({"iss": 5})), &rules(), NOW), Ok(()));
    }

    #[test]
    fn audience_as_string_or_list_must_intersect() {
        let rules = ClaimRules {
            audiences: vec!["k8s.example.com".into()],
            ..rules()
        };
        for aud in [
            json!("k8s.example.com"),
            json!(["k8s.example.com"]),
            json!(["other", "k8s.example.com"]),
        ] {
            assert_eq!(
                check_at(with_exp(json!({ "aud": aud })), &rules, NOW),
                Ok(()),
                "{aud}"
            );
        }
        for aud in [
            json!("other"),
            json!("K8S.example.com"),
            json!(["other", "more"]),
            json!([]),
        ] {
            assert_eq!(
                check_at(with_exp(json!({ "aud": aud })), &rules, NOW),
                Err(JwtError::AudienceNotAccepted),
                "{aud}"
            );
        }
        assert_eq!(
            check_at(with_exp(json!({})), &rules, NOW),
            Err(JwtError::MissingClaim("aud".into()))
        );
    }

    #[test]
    fn audience_of_the_wrong_type_is_refused() {
        let rules = ClaimRules {
            audiences: vec!["k8s.example.com".into()],
            ..rules()
        };
        for aud in [
            json!(1),
            json!(true),
            json!({"k8s.example.com": true}),
            json!(["k8s.example.com", 1]),
            json!([["k8s.example.com"]]),
            json!(["k8s.example.com", null]),
        ] {
            assert!(
                matches!(
                    check_at(with_exp(json!({ "aud": aud })), &rules, NOW),
                    Err(JwtError::InvalidClaim { .. })
                ),
                "{aud}"
            );
        }
    }

    #[test]
    fn registered_claims_have_the_types_jwt_simple_reads() {
        for good in [
            json!({}),
            json!({"iss":"i","sub":"s","jti":"j","nonce":"n","aud":"a"}),
            json!({"iss":null,"sub":null,"aud":[]}),
            json!({"aud":["a","b"],"groups":[1,{"x":null}],"iat":1.5}),
        ] {
            assert_eq!(
                check_registered_types(&claims(good.clone())),
                Ok(()),
                "{good}"
            );
        }
        for (name, value) in [
            ("iss", json!(5)),
            ("sub", json!(["s"])),
            ("jti", json!(true)),
            ("nonce", json!({"n":1})),
            ("aud", json!(null)),
            ("aud", json!(1)),
            ("aud", json!(["a", 1])),
            ("aud", json!([["a"]])),
            ("aud", json!({"a":"b"})),
        ] {
            let mut value_claims = json!({});
            value_claims[name] = value.clone();
            assert!(
                matches!(
                    check_registered_types(&claims(value_claims)),
                    Err(JwtError::InvalidClaim { ref claim, .. }) if claim == name
                ),
                "{name} = {value}"
            );
        }
    }

    #[test]
    fn required_claims_must_be_present_and_not_null() {
        let rules = ClaimRules {
            required_claims: vec!["email".into(), "groups".into()],
            ..rules()
        };
        assert_eq!(
            check_at(
                with_exp(json!({"email":"a@example.com","groups":[]})),
                &rules,
                NOW
            ),
            Ok(())
        );
        assert_eq!(
            check_at(with_exp(json!({"email":"a@example.com"})), &rules, NOW),
            Err(JwtError::MissingClaim("groups".into()))
        );
        assert_eq!(
            check_at(with_exp(json!({"email":null,"groups":[]})), &rules, NOW),
            Err(JwtError::MissingClaim("email".into()))
        );
    }
}
