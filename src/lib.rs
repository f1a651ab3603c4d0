//! kubegate: an identity-aware gateway for the Kubernetes API, as a proxy-wasm filter.
//!
//! Everything except `filter` is plain Rust with no proxy-wasm in it, so the logic
//! tests natively, under wasm-bindgen-test, and through the real ABI in the host harness.

pub mod audit;
pub mod authn;
#[cfg(feature = "cel")]
mod cel;
pub mod config;
pub mod expression;
pub mod gate;
pub mod identity;
pub mod json_path;
pub mod jwks;
pub mod jwt;
pub mod path;
pub mod policy;
pub mod request_info;
pub mod route;
pub mod status;
pub mod token;
pub mod token_cache;
pub mod upstream;

#[cfg(target_os = "wasi")]
mod filter;

/// The claims of a verified token: the JWT payload as a JSON object.
pub type Claims = serde_json::Map<String, serde_json::Value>;
