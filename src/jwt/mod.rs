//! JWT verification: keys (JWKS, PEM, HMAC secrets), signature, header and claim checks.
//!
//! ```ignore
//! let mut keys = KeySet::default();
//! keys.add_jwks(&serde_json::json!({"keys": [...]}))?;     // Result<usize, String>
//! keys.add_pem(Some("kid-1"), "ES256", pem_text)?;           // Result<(), String>
//! keys.add_hmac_secret(Some("kid-2"), "HS256", secret)?;     // Result<(), String>
//! let rules = ClaimRules { issuers, audiences, leeway_seconds: 60, max_age_seconds: None,
//!                          required_claims: vec![], max_token_bytes: 8192 };
//! let claims: Claims = verify(token, &keys, &rules, now_unix_seconds)?; // Result<Claims, JwtError>
//! ```
//!
//! This is the gate to the service account's impersonation power, so every rule
//! fails closed and nothing here panics on what a client sends.
//!
//! Decisions (the why is beside the code that implements each):
//! - Algorithms: HS256/384/512 (configured secrets only), RS256/384/512,
//!   PS256/384/512, ES256, ES384, EdDSA (Ed25519). Anything else, ES512
//!   included, is refused; `alg: none` in any letter case too.
//! - Every key is pinned to one algorithm and a token's `alg` must equal it
//!   (keys.rs, jwk.rs). RSA JWKs without `alg` are RS256 only.
//! - JWKS `oct` keys are skipped (logged): HMAC secrets never come from a JWKS.
//! - Key hygiene, refused when loading: private JWK members, RSA outside
//!   2048-4096 bits or with e != 65537, ROCA-weak RSA moduli (roca.rs), EC
//!   points off the curve, HMAC secrets shorter than the hash output.
//! - Key choice by `kid`; a kid-less token needs exactly one key of its `alg`;
//!   an unknown kid is `JwtError::UnknownKid` (the refetch signal).
//! - Strict compact form: size first, exactly three parts, canonical unpadded
//!   base64url, `crit` refused, duplicate JSON members refused in header and
//!   claims (compact.rs, strict_json.rs).
//! - Cheap refusals first: the claims are checked (on the caller's clock,
//!   claims.rs) before the one signature check, which alone can accept
//!   (verify.rs explains the error precedence). Signatures are checked with the
//!   RustCrypto and pure-Rust crates jwt-simple uses, called directly
//!   (signature.rs says why and what was kept).

mod algorithm;
mod claims;
mod compact;
mod error;
mod jwk;
mod keys;
mod roca;
mod signature;
mod strict_json;
mod verify;

#[cfg(test)]
mod test_support;

pub use algorithm::Algorithm;
pub use claims::{check as check_claims, ClaimRules};
pub use error::{JwtError, MAX_ECHOED_CHARS};
pub use keys::{KeySet, MAX_JWKS_KEYS};
pub use verify::{unverified_claims, verify, verify_signature};
