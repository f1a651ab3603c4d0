//! Carries out `proxy_http_call` requests. Failures become responses, as
//! Envoy's async client reports them: 504 "upstream request timeout" after the
//! timeout, 503 when the cluster cannot be reached.

use crate::context::HttpCallResponse;
use crate::headers::HeaderMap;
use crate::spec::UpstreamSpec;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use std::time::Duration;

fn local_response(status: u16, body: &str) -> HttpCallResponse {
    let mut headers = HeaderMap::new();
    headers.add(":status", status.to_string().as_bytes());
    headers.add("content-length", body.len().to_string().as_bytes());
    headers.add("content-type", b"text/plain");
    HttpCallResponse {
        headers,
        body: body.as_bytes().to_vec(),
        trailers: HeaderMap::new(),
    }
}

async fn exchange(
    spec: &UpstreamSpec,
    headers: HeaderMap,
    body: Vec<u8>,
) -> anyhow::Result<HttpCallResponse> {
    let mut request = hyper::Request::builder()
        .method(
            headers
                .get_first_str(":method")
                .unwrap_or_default()
                .as_str(),
        )
        .uri(headers.get_first_str(":path").unwrap_or_default());
    request = request.header(
        hyper::header::HOST,
        headers.get_first(":authority").unwrap_or_default(),
    );
    for (name, value) in headers.entries() {
        if !name.starts_with(':') && name != "host" && name != "content-length" {
            request = request.header(name.as_str(), value.as_slice());
        }
    }
    if !body.is_empty() {
        request = request.header(hyper::header::CONTENT_LENGTH, body.len());
    }
    let request = request.body(Full::new(Bytes::from(body)))?;
    let mut sender = crate::client::connect::<Full<Bytes>>(spec).await?;
    let response = sender.send_request(request).await?;
    let (parts, body) = response.into_parts();
    let collected = body.collect().await?;
    let trailers = collected.trailers().cloned();
    let body = collected.to_bytes().to_vec();
    let mut map = HeaderMap::new();
    map.add(":status", parts.status.as_str().as_bytes());
    for (name, value) in &parts.headers {
        map.add(name.as_str(), value.as_bytes());
    }
    let mut trailer_map = HeaderMap::new();
    for (name, value) in trailers.iter().flatten() {
        trailer_map.add(name.as_str(), value.as_bytes());
    }
    Ok(HttpCallResponse {
        headers: map,
        body,
        trailers: trailer_map,
    })
}

/// Sends the call and always produces a response for `on_http_call_response`.
pub(crate) async fn call(
    spec: &UpstreamSpec,
    cluster: &str,
    headers: HeaderMap,
    body: Vec<u8>,
    _trailers: HeaderMap,
    timeout: Option<Duration>,
) -> HttpCallResponse {
    let outcome = match timeout {
        Some(limit) => match tokio::time::timeout(limit, exchange(spec, headers, body)).await {
            Ok(result) => result,
            Err(_) => return local_response(504, "upstream request timeout"),
        },
        None => exchange(spec, headers, body).await,
    };
    match outcome {
        Ok(response) => response,
        Err(error) => {
            log::warn!("http call to cluster {cluster} failed: {error:#}");
            local_response(
                503,
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            )
        }
    }
}
