//! Watches: a chunked stream of `{"type":"ADDED|MODIFIED|DELETED","object":...}` lines.
//!
//! A watch without a `resourceVersion` (or with "0") starts with ADDED events for what
//! exists, as the API server does; one from a list's version sends only later changes.
//! It ends after `timeoutSeconds` (at most 30 minutes here) or when the client leaves.
//! With a Table `Accept` (kubectl get -w), each object is sent as a one-row Table.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame};
use hyper::{Response, StatusCode};
use serde_json::Value;
use tokio::sync::{broadcast, mpsc};

use crate::discovery::ResourceType;
use crate::requestinfo::{Query, RequestInfo};
use crate::server::{selectors, status_response, ResponseBody, State};
use crate::status::Status;
use crate::{clock, table};

const LONGEST_WATCH: Duration = Duration::from_secs(30 * 60);

/// A change to the store.
#[derive(Clone, Debug)]
pub struct WatchEvent {
    pub group: &'static str,
    pub resource: &'static str,
    pub kind: &'static str,
    pub object: Value,
}

/// The broadcast of store changes.
pub fn channel() -> broadcast::Sender<WatchEvent> {
    broadcast::channel(256).0
}

/// Announces the result of a successful write.
pub fn notify(
    state: &State,
    resource_type: &'static ResourceType,
    info: &RequestInfo,
    result: &Result<(StatusCode, Value), Status>,
) {
    let Ok((_, object)) = result else {
        return;
    };
    let event = |kind: &'static str, object: Value| WatchEvent {
        group: resource_type.group,
        resource: resource_type.name,
        kind,
        object,
    };
    match info.verb.as_str() {
        "create" => drop(state.watchers.send(event("ADDED", object.clone()))),
        "update" | "patch" => drop(state.watchers.send(event("MODIFIED", object.clone()))),
        "delete" if object.get("kind").and_then(Value::as_str) != Some("Status") => {
            drop(state.watchers.send(event("DELETED", object.clone())))
        }
        "deletecollection" => {
            for item in object
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
            {
                drop(state.watchers.send(event("DELETED", item)));
            }
        }
        _ => {}
    }
}

/// `metav1.WatchEvent`, in the API server's field order.
#[derive(serde::Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    object: &'a Value,
}

struct ChannelBody {
    receiver: mpsc::Receiver<Bytes>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.receiver
            .poll_recv(context)
            .map(|chunk| chunk.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// Starts a watch of `resource_type` in the request's namespace (all when empty).
pub fn start(
    state: &Arc<State>,
    resource_type: &'static ResourceType,
    info: &RequestInfo,
    query: &Query,
    as_table: bool,
) -> Response<ResponseBody> {
    let (labels, fields) = match selectors(resource_type, query) {
        Ok(selectors) => selectors,
        Err(status) => return status_response(&status),
    };
    let mut changes = state.watchers.subscribe();
    let initial: Vec<Value> = match query.first("resourceVersion").as_deref() {
        None | Some("") | Some("0") => {
            let world = match state.world.read() {
                Ok(world) => world,
                Err(poisoned) => poisoned.into_inner(),
            };
            world
                .store
                .list(resource_type, &info.namespace, &labels, &fields)
                .into_iter()
                .cloned()
                .collect()
        }
        Some(_) => Vec::new(),
    };
    let timeout = query
        .first("timeoutSeconds")
        .and_then(|seconds| seconds.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(LONGEST_WATCH)
        .min(LONGEST_WATCH);
    let namespace = info.namespace.clone();
    let (sender, receiver) = mpsc::channel::<Bytes>(16);
    let encode = move |kind: &str, object: &Value| -> Bytes {
        let object = if as_table {
            let version = object
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            table::table(
                resource_type,
                &[object],
                version,
                "Metadata",
                clock::now_seconds(),
            )
        } else {
            object.clone()
        };
        Bytes::from(crate::status::go_json(&Event {
            kind,
            object: &object,
        }))
    };
    tokio::spawn(async move {
        let stream = async {
            for object in &initial {
                if sender.send(encode("ADDED", object)).await.is_err() {
                    return;
                }
            }
            loop {
                let event = match changes.recv().await {
                    Ok(event) => event,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                let in_scope = event.group == resource_type.group
                    && event.resource == resource_type.name
                    && (namespace.is_empty()
                        || event
                            .object
                            .pointer("/metadata/namespace")
                            .and_then(Value::as_str)
                            == Some(namespace.as_str()));
                if in_scope
                    && labels.matches(&event.object)
                    && fields.matches(&event.object)
                    && sender
                        .send(encode(event.kind, &event.object))
                        .await
                        .is_err()
                {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, stream).await;
    });
    let mut response = Response::new(ChannelBody { receiver }.boxed());
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}
