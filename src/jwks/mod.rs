//! Remote signing keys (`jwt[].keys.remote`): fetched from the identity provider through an
//! Envoy cluster, shared by all of the proxy's VMs, refreshed on a timer, refetched
//! (rate-limited) when a token names an unknown key.
//!
//! Everything here is plain Rust, tested natively; the proxy-wasm glue in filter/ only
//! moves bytes between these functions and the proxy:
//! - settings.rs: the compiled configuration and the shared-data key names;
//! - discovery.rs: OpenID Connect discovery (issuer -> document -> JWKS path);
//! - response.rs: which answers are key sets, and which are failures;
//! - coordination.rs: the shared record (fetch lease, schedule, staleness, rate limit);
//! - waiting.rs: requests paused until the keys they need arrive.

pub mod coordination;
pub mod discovery;
pub mod response;
pub mod settings;
pub mod waiting;

pub use coordination::{FetchReason, FetchState, RefetchVerdict};
pub use response::{FetchFailure, ParsedKeySet};
pub use settings::{KeySource, RemoteJwksSettings};
pub use waiting::{Waiter, WaitingList};

/// Text from the network cut to a length fit for a log line (escape it with `{:?}`).
fn shorten(text: &str) -> String {
    const MAX_CHARS: usize = 80;
    let mut chars = text.chars();
    let mut kept: String = chars.by_ref().take(MAX_CHARS).collect();
    if chars.next().is_some() {
        kept.push('…');
    }
    kept
}
