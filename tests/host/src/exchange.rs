//! The values that cross between the HTTP side and a filter stream.

use crate::headers::HeaderMap;
use std::net::SocketAddr;
use std::time::SystemTime;

/// TLS facts of the downstream connection (`connection.*` properties).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsInfo {
    pub sni: Option<String>,
    pub version: String,
    /// The client presented a certificate (`connection.mtls`).
    pub peer_certificate: bool,
}

/// Connection and request facts the filter reads as properties.
#[derive(Clone, Debug)]
pub struct StreamInfo {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    /// `HTTP/1.1` or `HTTP/2` (`request.protocol`).
    pub protocol: String,
    pub tls: Option<TlsInfo>,
    pub connection_id: u64,
    pub start_time: SystemTime,
    /// The Envoy cluster this request is routed to (`xds.cluster_name`); `None`: the
    /// plugin's [`crate::PluginSpec::upstream_cluster`].
    pub upstream_cluster: Option<String>,
}

impl Default for StreamInfo {
    fn default() -> StreamInfo {
        StreamInfo {
            source: SocketAddr::from(([127, 0, 0, 1], 40000)),
            destination: SocketAddr::from(([127, 0, 0, 1], 8443)),
            protocol: "HTTP/1.1".to_string(),
            tls: None,
            connection_id: 0,
            start_time: SystemTime::now(),
            upstream_cluster: None,
        }
    }
}

/// A whole request for [`crate::Plugin::handle`].
#[derive(Clone, Debug)]
pub struct FilterRequest {
    /// Pseudo-headers (`:method`, `:path`, `:authority`, `:scheme`) first, then the rest.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub protocol: String,
    pub tls: Option<TlsInfo>,
    /// The Envoy cluster the request is routed to; `None`: the plugin's default.
    pub upstream_cluster: Option<String>,
}

impl FilterRequest {
    /// A request with the four pseudo-headers set, from 127.0.0.1.
    pub fn new(method: &str, path: &str, authority: &str) -> FilterRequest {
        FilterRequest {
            headers: vec![
                (":method".to_string(), method.to_string()),
                (":path".to_string(), path.to_string()),
                (":authority".to_string(), authority.to_string()),
                (":scheme".to_string(), "https".to_string()),
            ],
            ..FilterRequest::default()
        }
    }

    /// Appends a header (builder style).
    pub fn header(mut self, name: &str, value: &str) -> FilterRequest {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// Routes the request to another Envoy cluster (`xds.cluster_name`).
    pub fn upstream_cluster(mut self, cluster: &str) -> FilterRequest {
        self.upstream_cluster = Some(cluster.to_string());
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> FilterRequest {
        self.body = body.into();
        self
    }

    pub(crate) fn stream_info(&self) -> StreamInfo {
        StreamInfo {
            source: self.source,
            destination: self.destination,
            protocol: self.protocol.clone(),
            tls: self.tls.clone(),
            upstream_cluster: self.upstream_cluster.clone(),
            ..StreamInfo::default()
        }
    }
}

impl Default for FilterRequest {
    fn default() -> FilterRequest {
        let info = StreamInfo::default();
        FilterRequest {
            headers: Vec::new(),
            body: Vec::new(),
            trailers: Vec::new(),
            source: info.source,
            destination: info.destination,
            protocol: info.protocol,
            tls: None,
            upstream_cluster: None,
        }
    }
}

/// An upstream response for [`crate::Plugin::handle_with_response`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterResponse {
    pub status: u16,
    /// Regular headers (no `:status`).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl FilterResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A reply the filter produced itself (`proxy_send_local_response`), after it
/// went through the filter's own response callbacks as Envoy sends it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    /// Regular headers, without `:status`.
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub details: String,
}

/// Why a stream was failed closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub status: u16,
    pub reason: String,
}

/// What became of a request after the filter's request callbacks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterOutcome {
    /// Passed: the headers (with pseudo-headers) and body to send upstream.
    Forward {
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// The filter answered itself.
    LocalReply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    },
    /// Failed closed: 500 (or `trap_status`) for a trap, 503 for a pause that timed out.
    Failed { status: u16, reason: String },
}

impl FilterOutcome {
    /// The first value of a forwarded header, for tests.
    pub fn forwarded_header(&self, name: &str) -> Option<&str> {
        match self {
            FilterOutcome::Forward { headers, .. } => headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str()),
            _ => None,
        }
    }

    pub(crate) fn from_local_reply(reply: LocalReply) -> FilterOutcome {
        FilterOutcome::LocalReply {
            status: reply.status,
            headers: reply.headers.to_string_pairs(),
            body: reply.body,
        }
    }
}

/// The filter's answer to a headers callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadersVerdict {
    /// Go on with these (possibly modified) headers.
    Continue(HeaderMap),
    LocalReply(LocalReply),
    Failed(Failure),
}

/// The filter's answer to a body chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyVerdict {
    /// Send these bytes on (the buffered body so far, possibly modified).
    Continue(Vec<u8>),
    /// The filter is buffering; send nothing yet.
    Buffered,
    LocalReply(LocalReply),
    Failed(Failure),
}

/// The filter's answer to trailers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrailersVerdict {
    /// Go on: any body the filter had buffered, then these trailers.
    Continue {
        body: Vec<u8>,
        trailers: HeaderMap,
    },
    LocalReply(LocalReply),
    Failed(Failure),
}
