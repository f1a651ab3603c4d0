//! Fresh signing keys for the bench (ES256, RS256, Ed25519), their JWKS, session tokens
//! signed with each, and a filter configuration that trusts them.

use anyhow::{anyhow, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::*;
use serde_json::{json, Map, Value};

pub const ISSUER: &str = "https://bench-issuer.localhost";
pub const AUDIENCE: &str = "kubegate-bench";
/// The route's host: requests name it in `:authority`.
pub const HOST: &str = "localhost";
/// The policy allows this email domain and nobody else.
pub const ALLOWED_DOMAIN: &str = "example.com";
pub const SERVICE_ACCOUNT_TOKEN: &str = "bench-service-account-token";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    Es256,
    Rs256,
    EdDsa,
}

impl Alg {
    pub fn name(self) -> &'static str {
        match self {
            Alg::Es256 => "ES256",
            Alg::Rs256 => "RS256",
            Alg::EdDsa => "EdDSA",
        }
    }

    fn kid(self) -> String {
        format!("bench-{}", self.name().to_ascii_lowercase())
    }
}

/// One key pair per algorithm the table measures.
pub struct BenchKeys {
    es256: ES256KeyPair,
    rs256: RS256KeyPair,
    ed25519: Ed25519KeyPair,
}

impl BenchKeys {
    /// New keys every run: nothing secret is committed, and the numbers do not depend
    /// on one lucky key.
    pub fn generate() -> Result<BenchKeys> {
        Ok(BenchKeys {
            es256: ES256KeyPair::generate().with_key_id(&Alg::Es256.kid()),
            rs256: RS256KeyPair::generate(2048)
                .map_err(|e| anyhow!("RSA key generation: {e}"))?
                .with_key_id(&Alg::Rs256.kid()),
            ed25519: Ed25519KeyPair::generate().with_key_id(&Alg::EdDsa.kid()),
        })
    }

    /// The public halves as a JWKS, each pinned to its algorithm.
    pub fn jwks(&self) -> Value {
        let b64 = |bytes: &[u8]| URL_SAFE_NO_PAD.encode(bytes);
        let point = self.es256.public_key().public_key().to_bytes_uncompressed();
        let rsa = self.rs256.public_key().to_components();
        let ed25519 = self.ed25519.public_key().to_bytes();
        json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": Alg::Es256.kid(), "alg": "ES256", "use": "sig",
             "x": b64(&point[1..33]), "y": b64(&point[33..65])},
            {"kty": "RSA", "kid": Alg::Rs256.kid(), "alg": "RS256", "use": "sig",
             "n": b64(&rsa.n), "e": b64(&rsa.e)},
            {"kty": "OKP", "crv": "Ed25519", "kid": Alg::EdDsa.kid(), "alg": "EdDSA", "use": "sig",
             "x": b64(&ed25519)},
        ]})
    }

    /// Signs `claims` exactly as given (times included) with `alg`'s key.
    pub fn sign(&self, alg: Alg, claims: Map<String, Value>) -> Result<String> {
        let mut custom = claims;
        let mut take_time = |name: &str| {
            let value = custom.get(name).and_then(Value::as_u64)?;
            custom.remove(name);
            Some(UnixTimeStamp::from_secs(value))
        };
        let claims = JWTClaims {
            issued_at: take_time("iat"),
            expires_at: take_time("exp"),
            invalid_before: take_time("nbf"),
            issuer: None,
            subject: None,
            audiences: None,
            jwt_id: None,
            nonce: None,
            custom,
        };
        let signed = match alg {
            Alg::Es256 => self.es256.sign(claims),
            Alg::Rs256 => self.rs256.sign(claims),
            Alg::EdDsa => self.ed25519.sign(claims),
        };
        signed.map_err(|e| anyhow!("signing {}: {e}", alg.name()))
    }

    /// `count` different tokens for `email` (each a cache miss the first time it is seen).
    pub fn session_tokens(
        &self,
        alg: Alg,
        email: &str,
        now: u64,
        count: usize,
    ) -> Result<Vec<String>> {
        (0..count)
            .map(|serial| self.sign(alg, session_claims(email, now, serial)))
            .collect()
    }
}

/// What a Pomerium-like issuer puts in a session JWT; `serial` makes each token unique.
pub fn session_claims(email: &str, now: u64, serial: usize) -> Map<String, Value> {
    let claims = json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": format!("sub-{email}"),
        "email": email,
        "groups": ["developers", "oncall"],
        "iat": now,
        "exp": now + 3600,
        "jti": format!("bench-{serial}"),
    });
    match claims {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

/// The filter configuration (filter-config/dev.json's shape) trusting `keys`.
pub fn filter_config(keys: &BenchKeys) -> Vec<u8> {
    json!({
        "routes": [{
            "from": format!("https://{HOST}"),
            "policy": [{"allow": {"or": [{"domain": {"is": ALLOWED_DOMAIN}}]}}],
            "kubernetes_service_account_token": SERVICE_ACCOUNT_TOKEN,
        }],
        "jwt": [{
            "issuer": {"url": ISSUER, "audiences": [AUDIENCE]},
            "claimMappings": {
                "username": {"claim": "email", "prefix": ""},
                "groups": {"claim": "groups", "prefix": ""},
            },
            "keys": {"jwks": keys.jwks()},
            "leeway_seconds": 60,
        }],
    })
    .to_string()
    .into_bytes()
}
