//! What the stand-in saw: every request, as it arrived and as it was judged, so tests can
//! assert on what the gateway forwarded.

use std::sync::{Arc, Mutex};

use crate::identity::UserInfo;

/// One request as received and decided.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// Path and query exactly as on the request line (or `:path`).
    pub path_and_query: String,
    /// `HTTP/1.1` or `HTTP/2.0`.
    pub version: String,
    /// Every header with its received value; names are lower case. A repeated header
    /// keeps every value in the order received; different names are in the order each
    /// was first seen (hyper does not keep interleaving across names).
    pub headers: Vec<(String, String)>,
    /// The request body (up to the size limit), e.g. a review's JSON.
    pub body: Vec<u8>,
    /// The user the bearer token authenticated, if any.
    pub caller: Option<String>,
    /// The identity the request acted as when impersonation was accepted.
    pub impersonated: Option<UserInfo>,
    /// The HTTP status answered (101 for an accepted upgrade).
    pub status: u16,
    /// A short account of the decision: `allowed: RBAC: allowed by ...` (with `; then
    /// <status>` when the handler then failed), `unauthorized`, `forbidden: <message>`,
    /// `badrequest: <message>`.
    pub decision: String,
}

impl RecordedRequest {
    /// The values of a header (name in any case), in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(candidate, _)| candidate.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .collect()
    }

    /// The first value of a header, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).into_iter().next()
    }

    /// The user the request was authorized as: the impersonated one, else the caller.
    pub fn effective_user(&self) -> Option<&str> {
        self.impersonated
            .as_ref()
            .map(|user| user.username.as_str())
            .or(self.caller.as_deref())
    }
}

/// The shared, append-only log of requests.
#[derive(Clone, Default)]
pub struct Recorder {
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
}

impl Recorder {
    pub fn push(&self, request: RecordedRequest) {
        if let Ok(mut requests) = self.requests.lock() {
            requests.push(request);
        }
    }

    pub fn snapshot(&self) -> Vec<RecordedRequest> {
        self.requests
            .lock()
            .map(|requests| requests.clone())
            .unwrap_or_default()
    }

    pub fn clear(&self) {
        if let Ok(mut requests) = self.requests.lock() {
            requests.clear();
        }
    }
}
