//! One request through the front: headers (with pseudo-headers) through the
//! filter, then the request forwarded upstream over HTTP/1.1 with the filter's
//! changes applied, bodies streamed through the body callbacks both ways, and
//! HTTP/1.1 upgrades (WebSocket, SPDY/3.1) turned into byte tunnels once the
//! upstream answers 101.
//!
//! Host: the upstream receives the request's (possibly filter-changed)
//! `:authority` as `Host`, as Envoy preserves it; TLS to the upstream uses the
//! upstream URL's host (or `sni`) as server name.

use crate::body::{empty, full, BoxError, ChannelBody, FrontBody};
use crate::exchange::{
    BodyVerdict, Failure, HeadersVerdict, LocalReply, StreamInfo, TlsInfo, TrailersVerdict,
};
use crate::headers::HeaderMap;
use crate::plugin::{FilterStream, Plugin};
use crate::spec::UpstreamSpec;
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::{mpsc, oneshot, Mutex};

/// What every request of the front needs.
pub(crate) struct Front {
    pub plugin: Arc<Plugin>,
    pub upstream: UpstreamSpec,
}

/// Facts of one downstream connection.
pub(crate) struct Connection {
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub protocol: &'static str,
    pub tls: Option<TlsInfo>,
    pub id: u64,
}

/// Connection-specific headers a proxy must not pass on (RFC 9110 7.6.1);
/// `host` becomes `:authority`.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "http2-settings",
    "host",
];

fn is_hop_by_hop(name: &str) -> bool {
    HOP_BY_HOP.contains(&name)
}

/// Header names the `Connection` header nominates: hop-by-hop as well.
fn nominated(headers: &hyper::HeaderMap) -> Vec<String> {
    headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The `Upgrade` value of an HTTP/1.1 upgrade request.
fn upgrade_of(request: &Request<Incoming>) -> Option<HeaderValue> {
    if request.version() != hyper::Version::HTTP_11 {
        return None;
    }
    let connection = request.headers().get_all(hyper::header::CONNECTION);
    let asks = connection
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    if !asks {
        return None;
    }
    request.headers().get(hyper::header::UPGRADE).cloned()
}

fn random_request_id() -> String {
    let mut bytes = [0u8; 16];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .is_err()
    {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = nanos.to_le_bytes();
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The request headers as Envoy hands them to the filter: pseudo-headers
/// first, lower-case names, hop-by-hop headers gone (kept for an upgrade),
/// `x-request-id` generated when missing, `x-forwarded-proto` set.
fn filter_request_headers(
    request: &Request<Incoming>,
    connection: &Connection,
    upgrade: Option<&HeaderValue>,
) -> HeaderMap {
    let scheme = if connection.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut map = HeaderMap::new();
    map.add(":method", request.method().as_str().as_bytes());
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    map.add(":path", path.as_bytes());
    let authority = match request.uri().authority() {
        Some(authority) => authority.as_str().as_bytes().to_vec(),
        None => request
            .headers()
            .get(hyper::header::HOST)
            .map(|h| h.as_bytes().to_vec())
            .unwrap_or_default(),
    };
    map.add(":authority", &authority);
    map.add(":scheme", scheme.as_bytes());
    let nominated = nominated(request.headers());
    for (name, value) in request.headers() {
        if !is_hop_by_hop(name.as_str()) && !nominated.iter().any(|n| n == name.as_str()) {
            map.add(name.as_str(), value.as_bytes());
        }
    }
    if let Some(upgrade) = upgrade {
        map.add("upgrade", upgrade.as_bytes());
        map.add("connection", b"upgrade");
    }
    if map.get_first("x-request-id").is_none() {
        map.add("x-request-id", random_request_id().as_bytes());
    }
    map.replace("x-forwarded-proto", scheme.as_bytes());
    map
}

fn text_response(status: u16, text: String) -> Response<FrontBody> {
    let mut response = Response::new(full(text));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain"),
    );
    response
}

fn failure_response(failure: Failure) -> Response<FrontBody> {
    text_response(failure.status, format!("{}\n", failure.reason))
}

/// Copies filter headers into a hyper map; a header HTTP cannot carry fails
/// the request closed rather than being dropped (it may be a credential).
fn to_hyper_headers(map: &HeaderMap, keep_upgrade: bool) -> Result<hyper::HeaderMap, Failure> {
    let mut headers = hyper::HeaderMap::new();
    for (name, value) in map.entries() {
        if name.starts_with(':')
            || (is_hop_by_hop(name)
                && !(keep_upgrade && (name == "upgrade" || name == "connection")))
        {
            continue;
        }
        let invalid = || Failure {
            status: 502,
            reason: format!("the filter produced an invalid header {name:?}"),
        };
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let value = HeaderValue::from_bytes(value).map_err(|_| invalid())?;
        headers.append(name, value);
    }
    Ok(headers)
}

fn local_reply_response(reply: LocalReply) -> Response<FrontBody> {
    let headers = match to_hyper_headers(&reply.headers, false) {
        Ok(headers) => headers,
        Err(failure) => return failure_response(failure),
    };
    let mut response = Response::new(full(reply.body));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    *response.headers_mut() = headers;
    response
}

fn upstream_failure() -> Response<FrontBody> {
    // Envoy's text for an upstream it cannot reach.
    text_response(
        503,
        "upstream connect error or disconnect/reset before headers. reset reason: connection failure".to_string(),
    )
}

type Shared = Arc<Mutex<FilterStream>>;
type FrameSender = mpsc::Sender<Result<Frame<Bytes>, BoxError>>;

/// The body the upstream request carries: empty, or fed by the request pump.
struct UpstreamBody {
    inner: Option<ChannelBody>,
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.inner.as_mut() {
            Some(body) => std::pin::Pin::new(body).poll_frame(cx),
            None => std::task::Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_none()
    }
}

fn aborted(reason: &str) -> BoxError {
    Box::new(std::io::Error::other(reason.to_string()))
}

/// Feeds the downstream request body through the filter to the upstream.
/// A refusal on the way goes to `refusal` (answered if the response has not begun).
async fn pump_request_body(
    mut body: Incoming,
    stream: Shared,
    out: FrameSender,
    refusal: oneshot::Sender<Response<FrontBody>>,
) {
    let refuse = |response: Response<FrontBody>, out: FrameSender| async move {
        let _ = refusal.send(response);
        let _ = out
            .send(Err(aborted("request refused by the filter")))
            .await;
    };
    loop {
        let frame = match body.frame().await {
            None => {
                // The body ended without a flagged last chunk: an empty end-of-stream chunk.
                let verdict = stream.lock().await.request_body(Vec::new(), true).await;
                match verdict {
                    BodyVerdict::Continue(data) if !data.is_empty() => {
                        let _ = out.send(Ok(Frame::data(Bytes::from(data)))).await;
                    }
                    BodyVerdict::Continue(_) | BodyVerdict::Buffered => {}
                    BodyVerdict::LocalReply(reply) => {
                        return refuse(local_reply_response(reply), out).await
                    }
                    BodyVerdict::Failed(failure) => {
                        return refuse(failure_response(failure), out).await
                    }
                }
                return;
            }
            Some(Err(error)) => {
                let _ = out.send(Err(Box::new(error))).await;
                return;
            }
            Some(Ok(frame)) => frame,
        };
        if frame.is_data() {
            let data = frame.into_data().unwrap_or_default();
            let end_of_stream = body.is_end_stream();
            let verdict = stream
                .lock()
                .await
                .request_body(data.to_vec(), end_of_stream)
                .await;
            match verdict {
                BodyVerdict::Continue(data) => {
                    if !data.is_empty()
                        && out.send(Ok(Frame::data(Bytes::from(data)))).await.is_err()
                    {
                        return;
                    }
                }
                BodyVerdict::Buffered => {}
                BodyVerdict::LocalReply(reply) => {
                    return refuse(local_reply_response(reply), out).await
                }
                BodyVerdict::Failed(failure) => {
                    return refuse(failure_response(failure), out).await
                }
            }
            if end_of_stream {
                return;
            }
        } else if let Ok(trailers) = frame.into_trailers() {
            let map =
                HeaderMap::from_pairs(trailers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
            let verdict = stream.lock().await.request_trailers(map).await;
            match verdict {
                TrailersVerdict::Continue { body, trailers } => {
                    if !body.is_empty() {
                        let _ = out.send(Ok(Frame::data(Bytes::from(body)))).await;
                    }
                    if let Ok(trailers) = to_hyper_headers(&trailers, false) {
                        let _ = out.send(Ok(Frame::trailers(trailers))).await;
                    }
                }
                TrailersVerdict::LocalReply(reply) => {
                    return refuse(local_reply_response(reply), out).await
                }
                TrailersVerdict::Failed(failure) => {
                    return refuse(failure_response(failure), out).await
                }
            }
            return;
        }
    }
}

/// Feeds the upstream response body through the filter to the client. A
/// refusal once the response has begun can only abort it (Envoy resets).
async fn pump_response_body(mut body: Incoming, stream: Shared, out: FrameSender) {
    loop {
        let (chunk, end_of_stream, trailers) = match body.frame().await {
            None => (Vec::new(), true, None),
            Some(Err(error)) => {
                let _ = out.send(Err(Box::new(error))).await;
                return;
            }
            Some(Ok(frame)) if frame.is_data() => {
                let data = frame.into_data().unwrap_or_default().to_vec();
                (data, body.is_end_stream(), None)
            }
            Some(Ok(frame)) => match frame.into_trailers() {
                Ok(trailers) => (Vec::new(), false, Some(trailers)),
                Err(_) => continue,
            },
        };
        if let Some(trailers) = trailers {
            let map =
                HeaderMap::from_pairs(trailers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())));
            let verdict = stream.lock().await.response_trailers(map).await;
            match verdict {
                TrailersVerdict::Continue { body, trailers } => {
                    if !body.is_empty() {
                        let _ = out.send(Ok(Frame::data(Bytes::from(body)))).await;
                    }
                    if let Ok(trailers) = to_hyper_headers(&trailers, false) {
                        let _ = out.send(Ok(Frame::trailers(trailers))).await;
                    }
                }
                _ => {
                    let _ = out
                        .send(Err(aborted("response refused by the filter")))
                        .await;
                }
            }
            return;
        }
        let verdict = stream
            .lock()
            .await
            .response_body(chunk, end_of_stream)
            .await;
        match verdict {
            BodyVerdict::Continue(data) => {
                if !data.is_empty() && out.send(Ok(Frame::data(Bytes::from(data)))).await.is_err() {
                    return; // the client went away
                }
            }
            BodyVerdict::Buffered => {}
            BodyVerdict::LocalReply(_) | BodyVerdict::Failed(_) => {
                let _ = out
                    .send(Err(aborted("response refused by the filter")))
                    .await;
                return;
            }
        }
        if end_of_stream {
            return;
        }
    }
}

fn upstream_request(
    headers: &HeaderMap,
    body: UpstreamBody,
    upgrade: bool,
) -> Result<Request<UpstreamBody>, Failure> {
    let bad = |what: &str| Failure {
        status: 502,
        reason: format!("the filter left an invalid {what}"),
    };
    let method = hyper::Method::from_bytes(headers.get_first(":method").unwrap_or(b"GET"))
        .map_err(|_| bad(":method"))?;
    let path = headers
        .get_first_str(":path")
        .unwrap_or_else(|| "/".to_string());
    let uri: hyper::Uri = path.parse().map_err(|_| bad(":path"))?;
    let mut request = Request::new(body);
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.headers_mut() = to_hyper_headers(headers, upgrade)?;
    let authority = headers.get_first(":authority").unwrap_or_default();
    let host = HeaderValue::from_bytes(authority).map_err(|_| bad(":authority"))?;
    request.headers_mut().insert(hyper::header::HOST, host);
    Ok(request)
}

/// Serves one request; never fails at the HTTP level (errors become responses).
pub(crate) async fn serve(
    front: Arc<Front>,
    connection: Arc<Connection>,
    mut request: Request<Incoming>,
) -> Result<Response<FrontBody>, Infallible> {
    let upgrade = upgrade_of(&request);
    let headers = filter_request_headers(&request, &connection, upgrade.as_ref());
    let downstream_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut request));
    let (_, body) = request.into_parts();
    let info = StreamInfo {
        source: connection.source,
        destination: connection.destination,
        protocol: connection.protocol.to_string(),
        tls: connection.tls.clone(),
        connection_id: connection.id,
        start_time: SystemTime::now(),
        upstream_cluster: None,
    };
    // A connection stays on one VM, as on one Envoy worker.
    let mut stream = front.plugin.open_stream_on(connection.id as usize, info);
    let end_of_stream = upgrade.is_some() || body.is_end_stream();
    let headers = match stream.request_headers(headers, end_of_stream).await {
        HeadersVerdict::Continue(headers) => headers,
        HeadersVerdict::LocalReply(reply) => return Ok(local_reply_response(reply)),
        HeadersVerdict::Failed(failure) => return Ok(failure_response(failure)),
    };
    let is_upgrade = upgrade.is_some() && headers.get_first("upgrade").is_some();
    let stream: Shared = Arc::new(Mutex::new(stream));
    let (refusal_tx, refusal_rx) = oneshot::channel();
    let upstream_body = if end_of_stream {
        UpstreamBody { inner: None }
    } else {
        let (tx, channel) = ChannelBody::channel();
        tokio::spawn(pump_request_body(body, stream.clone(), tx, refusal_tx));
        UpstreamBody {
            inner: Some(channel),
        }
    };
    let request = match upstream_request(&headers, upstream_body, is_upgrade) {
        Ok(request) => request,
        Err(failure) => return Ok(failure_response(failure)),
    };
    let upstream = front.upstream.clone();
    let exchange = async move {
        let mut sender = crate::client::connect::<UpstreamBody>(&upstream).await?;
        anyhow::Ok(sender.send_request(request).await?)
    };
    let mut response = tokio::select! {
        result = exchange => match result {
            Ok(response) => response,
            Err(error) => {
                // A refusal from the body pump explains the failure better.
                log::debug!("upstream exchange failed: {error:#}");
                return Ok(upstream_failure());
            }
        },
        Ok(refused) = refusal_rx => return Ok(refused),
    };
    let switching = is_upgrade && response.status() == StatusCode::SWITCHING_PROTOCOLS;
    let upstream_upgrade = switching.then(|| hyper::upgrade::on(&mut response));
    let (parts, body) = response.into_parts();
    let mut map = HeaderMap::new();
    map.add(":status", parts.status.as_str().as_bytes());
    for (name, value) in &parts.headers {
        let keep =
            switching && (name == hyper::header::UPGRADE || name == hyper::header::CONNECTION);
        if keep || !is_hop_by_hop(name.as_str()) {
            map.add(name.as_str(), value.as_bytes());
        }
    }
    let end_of_stream = switching || body.is_end_stream();
    let verdict = stream
        .lock()
        .await
        .response_headers(map, end_of_stream)
        .await;
    let filtered = match verdict {
        HeadersVerdict::Continue(headers) => headers,
        HeadersVerdict::LocalReply(reply) => return Ok(local_reply_response(reply)),
        HeadersVerdict::Failed(failure) => return Ok(failure_response(failure)),
    };
    let status = filtered
        .get_first_str(":status")
        .and_then(|s| s.parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(parts.status);
    let client_headers = match to_hyper_headers(&filtered, switching) {
        Ok(headers) => headers,
        Err(failure) => return Ok(failure_response(failure)),
    };
    let client_body = if switching {
        if let (Some(down), Some(up)) = (downstream_upgrade, upstream_upgrade) {
            let stream = stream.clone();
            tokio::spawn(async move {
                if let (Ok(down), Ok(up)) = tokio::join!(down, up) {
                    let _ = tokio::io::copy_bidirectional(
                        &mut TokioIo::new(down),
                        &mut TokioIo::new(up),
                    )
                    .await;
                }
                // The stream (and its on_log) ends with the tunnel.
                drop(stream);
            });
        }
        empty()
    } else if end_of_stream {
        empty()
    } else {
        let (tx, channel) = ChannelBody::channel();
        tokio::spawn(pump_response_body(body, stream.clone(), tx));
        channel.boxed()
    };
    let mut response = Response::new(client_body);
    *response.status_mut() = status;
    *response.headers_mut() = client_headers;
    Ok(response)
}
