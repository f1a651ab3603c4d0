//! JWT parsing and verification: raw token text against a key set holding every kind of key
//! (Wycheproof's ES256 and RSA public keys, an HMAC secret), and HS256-signed header/payload
//! pairs so the claim checks run on fuzzer-chosen JSON. Never panics; whatever verifies
//! passes the claim rules, and a raw token can never verify unless it is a real signature.
#![no_main]

use kubegate::jwt::{check_claims, verify, verify_signature, ClaimRules, KeySet};
use kubegate_fuzz::{sign_hs256, AUDIENCE, HMAC_KID, HMAC_SECRET, ISSUER, NOW};
use libfuzzer_sys::fuzz_target;

/// The first byte picks the mode, the rest is its data:
/// 0: the rest is the token text (seeds: Wycheproof and RFC 7515/7520 tokens);
/// 1: the rest is `header 0xFF payload`, signed with the trusted HMAC secret;
/// 2: the rest is the claims JSON, signed with a well-formed header for the trusted kid.
fn token_of(data: &[u8]) -> Option<(String, bool)> {
    let (mode, rest) = data.split_first()?;
    Some(match mode % 3 {
        0 => (String::from_utf8_lossy(rest).into_owned(), true),
        1 => {
            let split = rest.iter().position(|b| *b == 0xff).unwrap_or(rest.len());
            let (header, payload) = rest.split_at(split);
            (
                sign_hs256(header, payload.get(1..).unwrap_or_default()),
                false,
            )
        }
        _ => {
            let header = format!(r#"{{"alg":"HS256","kid":"{HMAC_KID}","typ":"JWT"}}"#);
            (sign_hs256(header.as_bytes(), rest), false)
        }
    })
}

fn keys() -> KeySet {
    let mut keys = KeySet::default();
    keys.add_jwks(&serde_json::json!({"keys": [
        {"alg": "ES256", "use": "sig", "x": "04N0xi21hshyvBp7I167sbE_bXqyqkAPfefdklMO7wY",
         "y": "UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgmw", "crv": "P-256", "kid": "kid-ec-sign", "kty": "EC"},
        {"kty": "RSA", "alg": "RS256", "kid": "bilbo.baggins@hobbiton.example", "use": "sig",
         "n": "n4EPtAOCc9AlkeQHPzHStgAbgs7bTZLwUBZdR8_KuKPEHLd4rHVTeT-O-XV2jRojdNhxJWTDvNd7nqQ0VEiZQHz_AJmSCpMaJMRBSFKrKb2wqVwGU_NsYOYL-QtiWN2lbzcEe6XC0dApr5ydQLrHqkHHig3RBordaZ6Aj-oBHqFEHYpPe7Tpe-OfVfHd1E6cS6M1FZcD1NNLYD5lFHpPI9bTwJlsde3uhGqC0ZCuEHg8lhzwOHrtIQbS0FVbb9k3-tVTU4fg_3L_vniUFAKwuCLqKnS2BYwdq_mzSnbLY7h_qixoR7jig3__kRhuaxwUkRz5iaiQkqgc5gHdrNP5zw",
         "e": "AQAB"}
    ]}))
    .expect("the fuzzing key set loads");
    keys.add_hmac_secret(Some(HMAC_KID), "HS256", HMAC_SECRET)
        .expect("the fuzzing secret loads");
    keys
}

thread_local! {
    static KEYS: KeySet = keys();
}

fn rules() -> ClaimRules {
    ClaimRules {
        issuers: vec![ISSUER.into()],
        audiences: vec![AUDIENCE.into()],
        max_age_seconds: Some(3600),
        required_claims: vec!["email".into()],
        ..ClaimRules::default()
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((token, forged)) = token_of(data) else {
        return;
    };
    let rules = rules();
    KEYS.with(|keys| {
        let _ = verify_signature(&token, keys, 64 * 1024);
        match verify(&token, keys, &rules, NOW) {
            Ok(claims) => {
                // A raw token verifies only with a real signature: none of the seeds' keys
                // is ours except through the published test vectors, whose claims fail.
                assert!(!forged, "a raw token verified: {token:?}");
                assert_eq!(check_claims(&claims, &rules, NOW), Ok(()));
                assert!(claims.get("exp").and_then(|v| v.as_u64()).is_some());
            }
            Err(error) => {
                // Error text is bounded and never echoes the whole token.
                let text = error.to_string();
                assert!(text.len() < 512, "{text}");
                if token.len() > 40 {
                    assert!(!text.contains(&token));
                }
            }
        }
    });
});
