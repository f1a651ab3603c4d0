//! The JWS algorithms this filter verifies (RFC 7518 section 3, RFC 8037 for EdDSA).

use std::fmt;

/// A signature or MAC algorithm. Every configured key is pinned to exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Hs256,
    Hs384,
    Hs512,
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    /// Ed25519 only (the `OKP` curve Ed448 is not supported).
    EdDsa,
}

impl Algorithm {
    pub const ALL: [Algorithm; 12] = [
        Algorithm::Hs256,
        Algorithm::Hs384,
        Algorithm::Hs512,
        Algorithm::Rs256,
        Algorithm::Rs384,
        Algorithm::Rs512,
        Algorithm::Ps256,
        Algorithm::Ps384,
        Algorithm::Ps512,
        Algorithm::Es256,
        Algorithm::Es384,
        Algorithm::EdDsa,
    ];

    /// The `alg` name, exactly as RFC 7518 registers it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Hs256 => "HS256",
            Algorithm::Hs384 => "HS384",
            Algorithm::Hs512 => "HS512",
            Algorithm::Rs256 => "RS256",
            Algorithm::Rs384 => "RS384",
            Algorithm::Rs512 => "RS512",
            Algorithm::Ps256 => "PS256",
            Algorithm::Ps384 => "PS384",
            Algorithm::Ps512 => "PS512",
            Algorithm::Es256 => "ES256",
            Algorithm::Es384 => "ES384",
            Algorithm::EdDsa => "EdDSA",
        }
    }

    /// Parses an `alg` name. Case-sensitive, as RFC 7515 section 4.1.1 says:
    /// "es256" is not ES256.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Algorithm::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// HMAC algorithms take a shared secret; all others a public key.
    #[must_use]
    pub fn is_hmac(self) -> bool {
        matches!(self, Algorithm::Hs256 | Algorithm::Hs384 | Algorithm::Hs512)
    }

    /// RSA algorithms (PKCS#1 v1.5 and PSS).
    #[must_use]
    pub fn is_rsa(self) -> bool {
        matches!(
            self,
            Algorithm::Rs256
                | Algorithm::Rs384
                | Algorithm::Rs512
                | Algorithm::Ps256
                | Algorithm::Ps384
                | Algorithm::Ps512
        )
    }

    /// The shortest HMAC secret accepted, in bytes: RFC 7518 section 3.2 requires a
    /// key at least as long as the hash output.
    #[must_use]
    pub fn min_hmac_secret_bytes(self) -> Option<usize> {
        match self {
            Algorithm::Hs256 => Some(32),
            Algorithm::Hs384 => Some(48),
            Algorithm::Hs512 => Some(64),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The unsecured JWS algorithm (RFC 7518 section 3.6), in any letter case: a
/// verifier that lower-cases or upper-cases somewhere must not let "NONE" through.
pub(crate) fn is_none_alg(name: &str) -> bool {
    name.trim().eq_ignore_ascii_case("none")
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;

    #[test]
    fn names_round_trip() {
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(alg.name()), Some(alg));
        }
    }

    #[test]
    fn names_are_case_sensitive_and_unknown_names_are_refused() {
        for name in [
            "es256", "Es256", "hs256", "EDDSA", "eddsa", "ES512", "ES256K", "Ed25519", "none", "",
            " ES256", "ES256 ", "RSA-OAEP", "A256GCM",
        ] {
            assert_eq!(Algorithm::from_name(name), None, "{name:?}");
        }
    }

    #[test]
    fn none_is_recognised_in_any_case() {
        for name in ["none", "None", "NONE", "nOnE", " none"] {
            assert!(is_none_alg(name), "{name:?}");
        }
        for name in ["HS256", "non", "nonee", ""] {
            assert!(!is_none_alg(name), "{name:?}");
        }
    }

    #[test]
    fn only_hmac_algorithms_take_secrets() {
        for alg in Algorithm::ALL {
            assert_eq!(alg.is_hmac(), alg.min_hmac_secret_bytes().is_some());
            assert!(!(alg.is_hmac() && alg.is_rsa()));
        }
        assert_eq!(Algorithm::Hs512.min_hmac_secret_bytes(), Some(64));
    }
}
