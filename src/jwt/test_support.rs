//! Keys and token builders for the JWT unit tests.
//!
//! Keys are generated with jwt-simple once per test binary (RSA key generation is
//! slow). Tokens with arbitrary headers or payloads are HS256, built by hand with
//! hmac-sha256, because jwt-simple only signs headers it writes itself.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::*;
use serde_json::{json, Map, Value};

use super::algorithm::Algorithm;
use super::keys::KeySet;
use super::signature::VerifyingKey;

/// The kid every `sign` token carries unless told otherwise.
pub(crate) const KID: &str = "test-key";

struct TestKeys {
    es256: Vec<u8>,
    es384: Vec<u8>,
    ed25519: Ed25519KeyPair,
    rsa: RS256KeyPair,
}

fn keys() -> &'static TestKeys {
    static KEYS: OnceLock<TestKeys> = OnceLock::new();
    KEYS.get_or_init(|| TestKeys {
        es256: ES256KeyPair::generate().to_bytes(),
        es384: ES384KeyPair::generate().to_bytes(),
        ed25519: Ed25519KeyPair::generate(),
        rsa: RS256KeyPair::generate(2048).expect("RSA key generation"),
    })
}

fn es256_pair() -> ES256KeyPair {
    ES256KeyPair::from_bytes(&keys().es256).expect("test key")
}

fn es384_pair() -> ES384KeyPair {
    ES384KeyPair::from_bytes(&keys().es384).expect("test key")
}

fn rsa_der() -> Vec<u8> {
    keys().rsa.to_der().expect("test key")
}

/// Deterministic secret bytes of the given length.
pub(crate) fn hmac_secret(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(11))
        .collect()
}

/// The HMAC secret behind `sign(Hs*, ..)`.
pub(crate) fn test_hmac_secret() -> Vec<u8> {
    hmac_secret(64)
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An HS256 token over exactly this header text and payload bytes.
pub(crate) fn hs256_token(header: &str, payload: &[u8], secret: &[u8]) -> String {
    let signing_input = format!("{}.{}", b64(header.as_bytes()), b64(payload));
    let mac = hmac_sha256::HMAC::mac(signing_input.as_bytes(), secret);
    format!("{signing_input}.{}", b64(&mac))
}

/// A token signed by jwt-simple with the test key for `alg`, whose payload is
/// exactly `claims` (a JSON object; no claim is added).
pub(crate) fn sign(alg: Algorithm, kid: Option<&str>, claims: Value) -> String {
    let custom: Map<String, Value> = match claims {
        Value::Object(map) => map,
        _ => panic!("claims must be a JSON object"),
    };
    let claims = JWTClaims {
        issued_at: None,
        expires_at: None,
        invalid_before: None,
        issuer: None,
        subject: None,
        audiences: None,
        jwt_id: None,
        nonce: None,
        custom,
    };
    macro_rules! signed {
        ($pair:expr, $method:ident) => {{
            let pair = $pair;
            let pair = match kid {
                Some(kid) => pair.with_key_id(kid),
                None => pair,
            };
            pair.$method(claims).expect("signing")
        }};
    }
    let secret = test_hmac_secret();
    match alg {
        Algorithm::Hs256 => signed!(HS256Key::from_bytes(&secret), authenticate),
        Algorithm::Hs384 => signed!(HS384Key::from_bytes(&secret), authenticate),
        Algorithm::Hs512 => signed!(HS512Key::from_bytes(&secret), authenticate),
        Algorithm::Rs256 => signed!(keys().rsa.clone(), sign),
        Algorithm::Rs384 => signed!(RS384KeyPair::from_der(&rsa_der()).expect("key"), sign),
        Algorithm::Rs512 => signed!(RS512KeyPair::from_der(&rsa_der()).expect("key"), sign),
        Algorithm::Ps256 => signed!(PS256KeyPair::from_der(&rsa_der()).expect("key"), sign),
        Algorithm::Ps384 => signed!(PS384KeyPair::from_der(&rsa_der()).expect("key"), sign),
        Algorithm::Ps512 => signed!(PS512KeyPair::from_der(&rsa_der()).expect("key"), sign),
        Algorithm::Es256 => signed!(es256_pair(), sign),
        Algorithm::Es384 => signed!(es384_pair(), sign),
        Algorithm::EdDsa => signed!(keys().ed25519.clone(), sign),
    }
}

/// The verifying key matching `sign(alg, ..)`.
pub(crate) fn verifying_key(alg: Algorithm) -> VerifyingKey {
    if alg.is_hmac() {
        return VerifyingKey::hmac(alg, &test_hmac_secret()).expect("test key");
    }
    let pem = match alg {
        Algorithm::Es256 => es256_public_pem(),
        Algorithm::Es384 => es384_public_pem(),
        Algorithm::EdDsa => ed25519_public_pem(),
        _ => rsa_public_pem(),
    };
    VerifyingKey::from_pem(alg, &pem).expect("test key")
}

/// A key set with the test key of every algorithm under the same kid `KID`.
pub(crate) fn key_set_with_all_algorithms() -> KeySet {
    let mut set = KeySet::default();
    for alg in Algorithm::ALL {
        set.insert(Some(KID), verifying_key(alg)).expect("unique");
    }
    set
}

/// One (key, token) pair per algorithm, the token signed with that key.
pub(crate) fn signed_samples() -> Vec<(VerifyingKey, String)> {
    Algorithm::ALL
        .into_iter()
        .map(|alg| {
            let token = sign(
                alg,
                Some(KID),
                json!({"sub":"alice","exp":4_000_000_000u64}),
            );
            (verifying_key(alg), token)
        })
        .collect()
}

fn replace_part(token: &str, index: usize, edit: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut bytes = URL_SAFE_NO_PAD.decode(&parts[index]).expect("test token");
    edit(&mut bytes);
    parts[index] = b64(&bytes);
    parts.join(".")
}

/// The token with one bit of its signature flipped.
pub(crate) fn tamper_signature(token: &str) -> String {
    replace_part(token, 2, |sig| sig[0] ^= 0x01)
}

/// The token with its payload changed (signature left as it was).
pub(crate) fn tamper_payload(token: &str) -> String {
    replace_part(token, 1, |payload| {
        let mut claims: Value = serde_json::from_slice(payload).expect("JSON payload");
        claims["sub"] = json!("mallory");
        *payload = serde_json::to_vec(&claims).expect("JSON");
    })
}

/// The token with its signature cut short.
pub(crate) fn truncate_signature(token: &str) -> String {
    replace_part(token, 2, |sig| sig.truncate(sig.len() / 2))
}

pub(crate) fn es256_coordinates() -> (Vec<u8>, Vec<u8>) {
    let point = es256_pair()
        .public_key()
        .public_key()
        .to_bytes_uncompressed();
    (point[1..33].to_vec(), point[33..65].to_vec())
}

pub(crate) fn es384_coordinates() -> (Vec<u8>, Vec<u8>) {
    let point = es384_pair()
        .public_key()
        .public_key()
        .to_bytes_uncompressed();
    (point[1..49].to_vec(), point[49..97].to_vec())
}

pub(crate) fn ed25519_public_bytes() -> Vec<u8> {
    keys().ed25519.public_key().to_bytes()
}

pub(crate) fn rsa_components() -> (Vec<u8>, Vec<u8>) {
    let components = keys().rsa.public_key().to_components();
    (components.n, components.e)
}

pub(crate) fn es256_public_pem() -> String {
    es256_pair().public_key().to_pem().expect("PEM")
}

pub(crate) fn es256_private_pem() -> String {
    es256_pair().to_pem().expect("PEM")
}

pub(crate) fn es384_public_pem() -> String {
    es384_pair().public_key().to_pem().expect("PEM")
}

pub(crate) fn ed25519_public_pem() -> String {
    keys().ed25519.public_key().to_pem()
}

pub(crate) fn rsa_public_pem() -> String {
    keys().rsa.public_key().to_pem().expect("PEM")
}

/// The JWK (public members only) of the test key for `alg`, with `alg` and `kid`.
pub(crate) fn public_jwk(alg: Algorithm, kid: &str) -> Value {
    let mut jwk = match alg {
        Algorithm::Es256 => {
            let (x, y) = es256_coordinates();
            json!({"kty":"EC","crv":"P-256","x":b64(&x),"y":b64(&y)})
        }
        Algorithm::Es384 => {
            let (x, y) = es384_coordinates();
            json!({"kty":"EC","crv":"P-384","x":b64(&x),"y":b64(&y)})
        }
        Algorithm::EdDsa => json!({"kty":"OKP","crv":"Ed25519","x":b64(&ed25519_public_bytes())}),
        alg if alg.is_rsa() => {
            let (n, e) = rsa_components();
            json!({"kty":"RSA","n":b64(&n),"e":b64(&e)})
        }
        _ => json!({"kty":"oct","k":b64(&test_hmac_secret())}),
    };
    jwk["alg"] = json!(alg.name());
    jwk["kid"] = json!(kid);
    jwk
}
