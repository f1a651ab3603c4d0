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
//! jwt-simple (pure-Rust build) checks the signature and the registered claims
//! (signature.rs). In front of it sits a thin pre-check for what it does not do,
//! or does later or more leniently; the why is beside the code of each:
//! - Algorithms: HS256/384/512 (configured secrets only), RS256/384/512,
//!   PS256/384/512, ES256, ES384, EdDSA (Ed25519). Anything else, ES512
//!   included, is refused; `alg: none` in any letter case too.
//! - Every key is pinned to one algorithm and a token's `alg` must equal it
//!   (keys.rs, jwk.rs). RSA JWKs without `alg` are RS256 only.
//! - JWKS `oct` keys are skipped (logged): HMAC secrets never come from a JWKS.
//! - Key hygiene, refused when loading: private JWK members, ROCA-weak RSA
//!   moduli (roca.rs), JWK EC coordinates of the wrong length, HMAC secrets
//!   shorter than the hash output; jwt-simple's key constructors refuse RSA
//!   outside 2048-4096 bits or with e != 65537, EC points off the curve and weak
//!   Ed25519 keys.
//! - Key choice by `kid`; a kid-less token needs exactly one key of its `alg`;
//!   an unknown kid is `JwtError::UnknownKid` (the refetch signal).
//! - Strict compact form: size first, exactly three parts, canonical unpadded
//!   base64url, `crit` and key-carrying header members (`jku`, `jwk`, `x5u`,
//!   `x5c`) refused, duplicate JSON members refused in header and claims
//!   (compact.rs, strict_json.rs).
//! - Cheap refusals first: the claims are checked (on the caller's clock,
//!   claims.rs: `exp` required, NumericDates non-negative integers, `aud` a
//!   string or list of strings) before jwt-simple runs, and jwt-simple, given the
//!   same rules, must accept too (verify.rs explains the error precedence).

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
