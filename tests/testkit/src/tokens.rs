//! Session JWTs signed by a test key, with every time claim under the caller's control.

use anyhow::{Context, Result};
use jwt_simple::prelude::*;
use serde_json::{json, Map, Value};

/// The committed development key (ES256, kid `kubegate-dev-1`); its public half is in
/// filter-config/dev.json. For demos and tests only: anyone can read it.
pub const DEV_KEY_PEM: &str = include_str!("../keys/dev-es256.pem");
pub const DEV_KEY_ID: &str = "kubegate-dev-1";
/// The issuer and audience that filter-config/dev.json expects.
pub const DEV_ISSUER: &str = "https://kubegate-dev.localhost";
pub const DEV_AUDIENCE: &str = "kubegate-dev";

/// An ES256 signer.
pub struct Signer {
    key: ES256KeyPair,
}

/// The claims of one session token.
#[derive(Clone, Debug)]
pub struct SessionClaims {
    pub issuer: String,
    pub audience: String,
    pub subject: String,
    pub email: String,
    pub groups: Vec<String>,
    pub issued_at: u64,
    pub expires_at: u64,
    pub not_before: Option<u64>,
    /// Further claims, merged last (they may override the ones above).
    pub extra: Map<String, Value>,
}

impl SessionClaims {
    /// A token for `email` valid for five minutes from `now` (like Pomerium's assertion JWT).
    pub fn dev(email: &str, groups: &[&str], now: u64) -> SessionClaims {
        SessionClaims {
            issuer: DEV_ISSUER.to_string(),
            audience: DEV_AUDIENCE.to_string(),
            subject: format!("sub-{email}"),
            email: email.to_string(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            issued_at: now,
            expires_at: now + 300,
            not_before: None,
            extra: Map::new(),
        }
    }

    fn to_json(&self) -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("iss".into(), json!(self.issuer));
        claims.insert("aud".into(), json!(self.audience));
        claims.insert("sub".into(), json!(self.subject));
        claims.insert("email".into(), json!(self.email));
        claims.insert("groups".into(), json!(self.groups));
        claims.insert("iat".into(), json!(self.issued_at));
        claims.insert("exp".into(), json!(self.expires_at));
        if let Some(nbf) = self.not_before {
            claims.insert("nbf".into(), json!(nbf));
        }
        for (k, v) in &self.extra {
            claims.insert(k.clone(), v.clone());
        }
        claims
    }
}

impl Signer {
    pub fn from_pem(pem: &str, key_id: &str) -> Result<Signer> {
        let key = ES256KeyPair::from_pem(pem)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("reading the ES256 private key")?
            .with_key_id(key_id);
        Ok(Signer { key })
    }

    /// The committed development key.
    pub fn dev() -> Result<Signer> {
        Signer::from_pem(DEV_KEY_PEM, DEV_KEY_ID)
    }

    /// Signs `claims` exactly as given (no clock is read here).
    pub fn sign(&self, claims: &SessionClaims) -> Result<String> {
        self.sign_json(claims.to_json())
    }

    /// Signs an arbitrary JSON object as the payload.
    pub fn sign_json(&self, payload: Map<String, Value>) -> Result<String> {
        // jwt-simple's claim struct would fill in times from the system clock; building
        // the JWTClaims by hand keeps every time claim exactly as the test wants it.
        let mut custom = payload;
        let take_u64 = |m: &mut Map<String, Value>, k: &str| {
            m.get(k).and_then(Value::as_u64).map(|v| {
                m.remove(k);
                UnixTimeStamp::from_secs(v)
            })
        };
        let issued_at = take_u64(&mut custom, "iat");
        let expires_at = take_u64(&mut custom, "exp");
        let invalid_before = take_u64(&mut custom, "nbf");
        let claims = JWTClaims {
            issued_at,
            expires_at,
            invalid_before,
            issuer: None,
            subject: None,
            audiences: None,
            jwt_id: None,
            nonce: None,
            custom,
        };
        self.key
            .sign(claims)
            .map_err(|e| anyhow::anyhow!("signing: {e}"))
    }
}

/// What a client-go exec credential plugin prints on stdout.
pub fn exec_credential(token: &str) -> String {
    json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": token}
    })
    .to_string()
}

/// Seconds since the Unix epoch, by the system clock.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn dev_token_carries_the_claims_verbatim() {
        let signer = Signer::dev().unwrap();
        let claims = SessionClaims::dev("a@example.com", &["dev"], 1000);
        let token = signer.sign(&claims).unwrap();
        let mut parts = token.split('.');
        let header = parts.next().unwrap();
        let payload = parts.next().unwrap();
        let decode = |s: &str| -> Value {
            serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(s)
                    .unwrap(),
            )
            .unwrap()
        };
        assert_eq!(decode(header)["kid"], DEV_KEY_ID);
        assert_eq!(decode(header)["alg"], "ES256");
        let payload = decode(payload);
        assert_eq!(payload["iat"], 1000);
        assert_eq!(payload["exp"], 1300);
        assert_eq!(payload["email"], "a@example.com");
        assert_eq!(payload["aud"], DEV_AUDIENCE);
        assert_eq!(payload["groups"], json!(["dev"]));
    }
}
