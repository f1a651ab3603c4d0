//! The requests the table measures, each run the same way natively (`gate::decide` with
//! a cache, as the filter calls it) and through the host with the real module, with the
//! answer checked on every round so a row can never time the wrong path.

use crate::keys::{session_claims, Alg, BenchKeys, ALLOWED_DOMAIN, HOST};
use anyhow::{ensure, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use kubegate::gate::Kind;
use kubegate_host::{FilterOutcome, FilterRequest};

/// Where each round's token comes from.
pub enum Tokens {
    /// No Authorization header.
    None,
    /// The same token every round (kubectl repeats its session token).
    Same(String),
    /// A new token every round: each one is a cache miss, a full verification.
    Fresh(Vec<String>),
}

/// Whether the request must be a verified-token cache hit or miss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheUse {
    Hit,
    Miss,
    /// No verification is cached: no token, or a refused one.
    Neither,
}

pub struct Scenario {
    pub label: &'static str,
    pub tokens: Tokens,
    pub expect: Kind,
    pub cache: CacheUse,
    /// Cold rows name their algorithm; the table sets the cache hit against them.
    pub cold: Option<Alg>,
}

pub const PATH: &str = "/api/v1/namespaces/default/pods?limit=500";
pub const USER_AGENT: &str = "kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd";
pub const ACCEPT: &str = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";

impl Scenario {
    /// The token of round `round`.
    pub fn token(&self, round: usize) -> Option<&str> {
        match &self.tokens {
            Tokens::None => None,
            Tokens::Same(token) => Some(token),
            Tokens::Fresh(tokens) => Some(&tokens[round % tokens.len()]),
        }
    }

    /// The request headers as the proxy hands them to the filter.
    pub fn headers(&self, round: usize) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = [
            (":method", "GET"),
            (":path", PATH),
            (":authority", HOST),
            (":scheme", "https"),
            ("user-agent", USER_AGENT),
            ("accept", ACCEPT),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        if let Some(token) = self.token(round) {
            headers.push(("authorization".into(), format!("Bearer {token}")));
        }
        headers
    }

    /// The same request for the host.
    pub fn filter_request(&self, round: usize) -> FilterRequest {
        let mut request = FilterRequest::new("GET", PATH, HOST)
            .header("user-agent", USER_AGENT)
            .header("accept", ACCEPT);
        if let Some(token) = self.token(round) {
            request = request.header("authorization", &format!("Bearer {token}"));
        }
        request
    }

    /// Checks a native decision: its class and its use of the cache.
    pub fn check_native(&self, kind: Kind, cache_hit: Option<bool>) -> Result<()> {
        ensure!(
            kind == self.expect,
            "{}: decided {kind:?}, expected {:?}",
            self.label,
            self.expect
        );
        let expected_hit = match self.cache {
            CacheUse::Hit => Some(true),
            CacheUse::Miss => Some(false),
            CacheUse::Neither => cache_hit.filter(|hit| !hit),
        };
        ensure!(
            cache_hit == expected_hit,
            "{}: cache_hit {cache_hit:?}, expected {expected_hit:?}",
            self.label
        );
        Ok(())
    }

    /// Checks what the host's client would get.
    pub fn check_wasm(&self, outcome: &FilterOutcome) -> Result<()> {
        let status = match outcome {
            FilterOutcome::Forward { .. } => 200,
            FilterOutcome::LocalReply { status, .. } => *status,
            FilterOutcome::Failed { status, reason } => {
                anyhow::bail!("{}: the filter failed ({status}): {reason}", self.label)
            }
        };
        let expected = match self.expect {
            Kind::Allowed => 200,
            Kind::Unauthenticated => 401,
            Kind::Forbidden => 403,
            Kind::NotFound => 404,
            Kind::Internal => 500,
        };
        ensure!(
            status == expected,
            "{}: answered {status}, expected {expected}",
            self.label
        );
        Ok(())
    }
}

/// The table's rows. Cold rows get `rounds` distinct tokens (enough that none repeats
/// within one measurement).
pub fn scenarios(keys: &BenchKeys, now: u64, rounds: usize) -> Result<Vec<Scenario>> {
    let alice = format!("alice@{ALLOWED_DOMAIN}");
    let hit_token = keys.sign(Alg::Es256, session_claims(&alice, now, usize::MAX))?;
    let outsider = keys.sign(
        Alg::Es256,
        session_claims("mallory@elsewhere.org", now, usize::MAX),
    )?;
    let mut expired_claims = session_claims(&alice, now - 7200, 0);
    expired_claims.insert("exp".into(), (now - 3600).into());
    let expired_forged = forge_signature(&keys.sign(Alg::Es256, expired_claims)?);
    let cold = |alg: Alg| -> Result<Scenario> {
        Ok(Scenario {
            label: match alg {
                Alg::Es256 => "cold ES256 (verify + cache insert)",
                Alg::Rs256 => "cold RS256 (verify + cache insert)",
                Alg::EdDsa => "cold EdDSA (verify + cache insert)",
            },
            tokens: Tokens::Fresh(keys.session_tokens(alg, &alice, now, rounds)?),
            expect: Kind::Allowed,
            cache: CacheUse::Miss,
            cold: Some(alg),
        })
    };
    Ok(vec![
        Scenario {
            label: "cache hit (ES256 session token)",
            tokens: Tokens::Same(hit_token),
            expect: Kind::Allowed,
            cache: CacheUse::Hit,
            cold: None,
        },
        cold(Alg::Es256)?,
        cold(Alg::Rs256)?,
        cold(Alg::EdDsa)?,
        Scenario {
            label: "refused: no token (401)",
            tokens: Tokens::None,
            expect: Kind::Unauthenticated,
            cache: CacheUse::Neither,
            cold: None,
        },
        Scenario {
            label: "refused by policy (403, cached token)",
            tokens: Tokens::Same(outsider),
            expect: Kind::Forbidden,
            cache: CacheUse::Hit,
            cold: None,
        },
        Scenario {
            label: "refused: expired, forged signature (401)",
            tokens: Tokens::Same(expired_forged),
            expect: Kind::Unauthenticated,
            cache: CacheUse::Neither,
            cold: None,
        },
    ])
}

/// The token with one bit of its signature flipped.
fn forge_signature(token: &str) -> String {
    let (head, signature) = token.rsplit_once('.').expect("a compact JWS");
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
    bytes[0] ^= 1;
    format!("{head}.{}", URL_SAFE_NO_PAD.encode(bytes))
}
