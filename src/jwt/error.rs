//! Why a token was refused, worded for the 401 body and the log line.
//!
//! Nothing here ever holds the token, a signature or key material. The only
//! attacker-chosen text kept is a header's `kid` or `alg`, cut to
//! [`MAX_ECHOED_CHARS`] and shown escaped (`{:?}`), so it cannot forge log lines.

use std::fmt;

use super::algorithm::Algorithm;

/// Longest `kid` or `alg` value echoed in a message, in characters.
pub const MAX_ECHOED_CHARS: usize = 64;

/// A refused token. `Display` is a short sentence for people; [`JwtError::reason`]
/// is a stable tag for metrics and structured logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    /// Longer than `ClaimRules::max_token_bytes`; refused before any decoding.
    TooLarge { limit: usize },
    /// Not a compact JWS: part count, base64url, header JSON.
    Malformed(&'static str),
    /// `alg: none` in any letter case: an unsigned token.
    AlgNone,
    /// An `alg` this filter does not verify (ES512, ES256K, a typo...).
    UnsupportedAlg(String),
    /// A header parameter that changes the meaning of the token and that this
    /// verifier does not implement (`crit`, a nested JWT, a non-JWT `typ`).
    UnsupportedHeader(&'static str),
    /// The token's `kid` names no configured key. A remote JWKS may have rotated:
    /// the caller may refetch on this variant (and only on it).
    UnknownKid(String),
    /// The token has no `kid` and no key is configured for its `alg`.
    NoKeyForAlg(Algorithm),
    /// The token has no `kid` and several keys are configured for its `alg`.
    AmbiguousKey(Algorithm),
    /// The `kid` names a key pinned to another algorithm.
    AlgMismatch {
        kid: String,
        key_alg: Algorithm,
        token_alg: Algorithm,
    },
    /// The signature (or MAC) does not verify with the selected key.
    BadSignature,
    /// The verified payload is not a JSON object.
    ClaimsNotObject,
    /// A claim is present with the wrong type or an unusable value.
    InvalidClaim {
        claim: String,
        problem: &'static str,
    },
    /// A claim the rules require is absent (or null).
    MissingClaim(String),
    /// `exp` is at or before now minus the leeway.
    Expired,
    /// `nbf` is after now plus the leeway.
    NotYetValid,
    /// `iat` is after now plus the leeway.
    IssuedInFuture,
    /// `iat` is older than `max_age_seconds` (plus the leeway).
    TooOld,
    /// `iss` is not one of the accepted issuers.
    IssuerNotAccepted,
    /// No `aud` value is one of the accepted audiences.
    AudienceNotAccepted,
}

impl JwtError {
    /// A stable, short, machine-readable tag (for metrics and structured logs).
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            JwtError::TooLarge { .. } => "too_large",
            JwtError::Malformed(_) => "malformed",
            JwtError::AlgNone => "alg_none",
            JwtError::UnsupportedAlg(_) => "unsupported_alg",
            JwtError::UnsupportedHeader(_) => "unsupported_header",
            JwtError::UnknownKid(_) => "unknown_kid",
            JwtError::NoKeyForAlg(_) => "no_key",
            JwtError::AmbiguousKey(_) => "ambiguous_key",
            JwtError::AlgMismatch { .. } => "alg_mismatch",
            JwtError::BadSignature => "bad_signature",
            JwtError::ClaimsNotObject => "claims_not_object",
            JwtError::InvalidClaim { .. } => "invalid_claim",
            JwtError::MissingClaim(_) => "missing_claim",
            JwtError::Expired => "expired",
            JwtError::NotYetValid => "not_yet_valid",
            JwtError::IssuedInFuture => "issued_in_future",
            JwtError::TooOld => "too_old",
            JwtError::IssuerNotAccepted => "issuer_not_accepted",
            JwtError::AudienceNotAccepted => "audience_not_accepted",
        }
    }

    /// An `UnknownKid` holding at most [`MAX_ECHOED_CHARS`] of the header's kid.
    pub(crate) fn unknown_kid(kid: &str) -> Self {
        JwtError::UnknownKid(echo(kid))
    }

    /// An `UnsupportedAlg` holding at most [`MAX_ECHOED_CHARS`] of the header's alg.
    pub(crate) fn unsupported_alg(alg: &str) -> Self {
        JwtError::UnsupportedAlg(echo(alg))
    }

    pub(crate) fn invalid_claim(claim: &str, problem: &'static str) -> Self {
        JwtError::InvalidClaim {
            claim: echo(claim),
            problem,
        }
    }
}

/// Attacker-chosen text cut to a bounded length (escaping happens in `Display`).
pub(crate) fn echo(text: &str) -> String {
    let mut chars = text.chars();
    let mut kept: String = chars.by_ref().take(MAX_ECHOED_CHARS).collect();
    if chars.next().is_some() {
        kept.push('…');
    }
    kept
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JwtError::TooLarge { limit } => write!(f, "token longer than {limit} bytes"),
            JwtError::Malformed(what) => write!(f, "malformed token: {what}"),
            JwtError::AlgNone => f.write_str("unsigned tokens (alg \"none\") are not accepted"),
            JwtError::UnsupportedAlg(alg) => write!(f, "unsupported algorithm {alg:?}"),
            JwtError::UnsupportedHeader(what) => write!(f, "unsupported token header: {what}"),
            JwtError::UnknownKid(kid) => write!(f, "unknown key id {kid:?}"),
            JwtError::NoKeyForAlg(alg) => write!(f, "no key configured for algorithm {alg}"),
            JwtError::AmbiguousKey(alg) => write!(
                f,
                "token has no key id and several keys are configured for {alg}"
            ),
            JwtError::AlgMismatch {
                kid,
                key_alg,
                token_alg,
            } => write!(
                f,
                "key {kid:?} is for {key_alg}, but the token says {token_alg}"
            ),
            JwtError::BadSignature => f.write_str("signature does not verify"),
            JwtError::ClaimsNotObject => f.write_str("token payload is not a JSON object"),
            JwtError::InvalidClaim { claim, problem } => write!(f, "claim {claim:?} {problem}"),
            JwtError::MissingClaim(claim) => write!(f, "required claim {claim:?} is missing"),
            JwtError::Expired => f.write_str("token expired"),
            JwtError::NotYetValid => f.write_str("token not valid yet (nbf)"),
            JwtError::IssuedInFuture => f.write_str("token issued in the future (iat)"),
            JwtError::TooOld => f.write_str("token too old (iat)"),
            JwtError::IssuerNotAccepted => f.write_str("issuer not accepted"),
            JwtError::AudienceNotAccepted => f.write_str("audience not accepted"),
        }
    }
}

impl std::error::Error for JwtError {}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn messages_are_short_and_name_the_problem() {
        assert_eq!(JwtError::Expired.to_string(), "token expired");
        assert_eq!(
            JwtError::unknown_kid("abc").to_string(),
            "unknown key id \"abc\""
        );
        assert_eq!(
            JwtError::IssuerNotAccepted.to_string(),
            "issuer not accepted"
        );
        assert_eq!(
            JwtError::AlgMismatch {
                kid: "k1".into(),
                key_alg: Algorithm::Rs256,
                token_alg: Algorithm::Hs256
            }
            .to_string(),
            "key \"k1\" is for RS256, but the token says HS256"
        );
    }

    #[test]
    fn echoed_header_text_is_bounded_and_escaped() {
        let long = "k".repeat(500);
        let message = JwtError::unknown_kid(&long).to_string();
        assert!(message.len() < MAX_ECHOED_CHARS + 40, "{message}");
        assert!(message.contains('…'));

        // A newline in a kid must not start a new log line.
        let message = JwtError::unknown_kid("a\nlevel=error forged").to_string();
        assert!(!message.contains('\n'), "{message}");
        assert!(message.contains("\\n"), "{message}");

        let message = JwtError::unsupported_alg("x\u{1b}[31m").to_string();
        assert!(!message.contains('\u{1b}'), "{message}");
    }

    #[test]
    fn every_variant_has_a_distinct_reason() {
        let all = [
            JwtError::TooLarge { limit: 1 },
            JwtError::Malformed("x"),
            JwtError::AlgNone,
            JwtError::unsupported_alg("x"),
            JwtError::UnsupportedHeader("x"),
            JwtError::unknown_kid("x"),
            JwtError::NoKeyForAlg(Algorithm::Es256),
            JwtError::AmbiguousKey(Algorithm::Es256),
            JwtError::AlgMismatch {
                kid: "x".into(),
                key_alg: Algorithm::Es256,
                token_alg: Algorithm::Rs256,
            },
            JwtError::BadSignature,
            JwtError::ClaimsNotObject,
            JwtError::invalid_claim("x", "y"),
            JwtError::MissingClaim("x".into()),
            JwtError::Expired,
            JwtError::NotYetValid,
            JwtError::IssuedInFuture,
            JwtError::TooOld,
            JwtError::IssuerNotAccepted,
            JwtError::AudienceNotAccepted,
        ];
        let mut reasons: Vec<&str> = all.iter().map(JwtError::reason).collect();
        reasons.sort_unstable();
        reasons.dedup();
        assert_eq!(reasons.len(), all.len());
        for reason in reasons {
            assert!(reason.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
        }
    }
}
