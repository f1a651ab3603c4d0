//! JWT verification: keys (JWKS, PEM, HMAC secrets), signature, header and claim checks.
//!
//! Interface (owned by the JWT work; config.rs builds these from the JSON config):
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
