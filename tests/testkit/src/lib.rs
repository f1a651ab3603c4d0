//! The client side of kubegate's end-to-end tests and of `make run`: session tokens signed
//! by a test key, ExecCredential output as kubectl's credential plugins print it, and a
//! kubectl wrapper with a fresh HOME and kubeconfig.

pub mod kubectl;
pub mod tokens;

pub use kubectl::Kubectl;
pub use tokens::{SessionClaims, Signer};
