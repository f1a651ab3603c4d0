//! The HTTP(S) server and the request pipeline, in the API server's filter order:
//! request info, authentication (401), impersonation (400/403), authorization (403),
//! then the handler (discovery, objects, reviews, exec). Every request is recorded.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::http::request::Parts;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;

use crate::discovery::{self, ResourceType};
use crate::exec::{self, ExecOptions};
use crate::identity::{bearer_token, UserInfo};
use crate::impersonation::{impersonate, Impersonation};
use crate::rbac::{Attributes, Rbac};
use crate::record::{RecordedRequest, Recorder};
use crate::requestinfo::{resolve, Query, RequestInfo, ResolveError};
use crate::resources::{list_document, ObjectStore};
use crate::selectors::{FieldSelector, LabelSelector};
use crate::status::{go_json, go_json_indented, Status};
use crate::{clock, reviews, table};

/// The API server's request body limit (3 MiB).
const MAX_BODY: usize = 3 * 1024 * 1024;

/// The body type of every response.
pub type ResponseBody = BoxBody<Bytes, Infallible>;

/// The objects and the authorizer built from them, changed together.
pub struct World {
    pub store: ObjectStore,
    pub rbac: Rbac,
}

/// What every connection shares.
pub struct State {
    pub token: String,
    pub service_account: UserInfo,
    pub websocket_exec: bool,
    /// `host:port` for `/api`'s serverAddressByClientCIDRs.
    pub server_address: String,
    pub world: RwLock<World>,
    pub recorder: Recorder,
    /// Store changes, for watches.
    pub watchers: tokio::sync::broadcast::Sender<crate::watch::WatchEvent>,
    audit_ids: AtomicU64,
}

impl State {
    pub fn new(
        token: String,
        service_account: UserInfo,
        websocket_exec: bool,
        server_address: String,
        world: World,
    ) -> Self {
        State {
            token,
            service_account,
            websocket_exec,
            server_address,
            world: RwLock::new(world),
            recorder: Recorder::default(),
            watchers: crate::watch::channel(),
            audit_ids: AtomicU64::new(0),
        }
    }
}

/// Accepts connections until the task is dropped; TLS when `tls` is given. HTTP/1.1 and
/// HTTP/2 (by ALPN, or by the connection preface on plain HTTP) on the same port.
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    state: Arc<State>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let (tcp, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    log::warn!("accept: {error}");
                    continue;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let state = state.clone();
        let tls = tls.clone();
        connections.spawn(async move {
            match tls {
                Some(acceptor) => {
                    // A client that never finishes the handshake must not hold a task forever.
                    let handshake = tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        acceptor.accept(tcp),
                    )
                    .await;
                    if let Ok(Ok(stream)) = handshake {
                        serve_connection(stream, state).await;
                    }
                }
                None => serve_connection(tcp, state).await,
            }
        });
    }
}

async fn serve_connection<S>(stream: S, state: Arc<State>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let state = state.clone();
        async move { Ok::<_, Infallible>(handle(state, request).await) }
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    if let Err(error) = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), service)
        .await
    {
        log::debug!("connection: {error}");
    }
}

/// Handles one request and records it.
pub async fn handle(state: Arc<State>, request: Request<Incoming>) -> Response<ResponseBody> {
    let (mut parts, body) = request.into_parts();
    let mut record = RecordedRequest {
        method: parts.method.to_string(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|target| target.as_str().to_string())
            .unwrap_or_else(|| parts.uri.path().to_string()),
        version: format!("{:?}", parts.version),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        ..RecordedRequest::default()
    };
    let response = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => {
            let body = collected.to_bytes();
            record.body = body.to_vec();
            decide(&state, &mut parts, &body, &mut record)
        }
        Err(_) => {
            record.decision = "request body too large".to_string();
            status_response(&Status::failure_with(
                413,
                "RequestEntityTooLarge",
                format!("Request entity too large: limit is {MAX_BODY}"),
            ))
        }
    };
    let mut response = response;
    let audit_id = crate::identity::stable_uid(&format!(
        "audit/{}",
        state.audit_ids.fetch_add(1, Ordering::Relaxed)
    ));
    if let Ok(value) = HeaderValue::from_str(&audit_id) {
        response.headers_mut().insert("audit-id", value);
    }
    record.status = response.status().as_u16();
    state.recorder.push(record);
    response
}

/// The pipeline: request info, authentication, impersonation, authorization, handler.
fn decide(
    state: &Arc<State>,
    parts: &mut Parts,
    body: &Bytes,
    record: &mut RecordedRequest,
) -> Response<ResponseBody> {
    let raw_path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let info = match resolve(parts.method.as_str(), &raw_path, &raw_query) {
        Ok(info) => info,
        Err(ResolveError::BadPath) => {
            record.decision = "bad request: malformed path".to_string();
            return text_response(StatusCode::BAD_REQUEST, "400 Bad Request");
        }
        Err(ResolveError::NoResource(reason)) => {
            record.decision = format!("internal error: {reason}");
            return text_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!(
                    "Internal Server Error: {}: failed to create RequestInfo: {reason}\n",
                    crate::status::go_quote(&record.path_and_query)
                ),
            );
        }
    };

    let authenticated = bearer_token(
        parts
            .headers
            .get("authorization")
            .map(|value| value.as_bytes()),
    )
    .is_some_and(|token| constant_time_equal(token.as_bytes(), state.token.as_bytes()))
        || crate::identity::websocket_protocol_tokens(&parts.headers)
            .iter()
            .any(|token| constant_time_equal(token.as_bytes(), state.token.as_bytes()));
    if !authenticated {
        record.decision = "unauthorized".to_string();
        return status_response(&Status::unauthorized());
    }
    let caller = state.service_account.clone();
    record.caller = Some(caller.username.clone());

    let world = match state.world.read() {
        Ok(world) => world,
        Err(poisoned) => poisoned.into_inner(),
    };
    let user = match impersonate(&caller, &parts.headers, &world.rbac) {
        Impersonation::None => caller,
        Impersonation::Acting(user) => {
            record.impersonated = Some(user.clone());
            user
        }
        Impersonation::Refused(status) => {
            record.decision = describe_refusal(&status);
            return status_response(&status);
        }
    };

    let attributes = Attributes::for_request(&user, &info);
    let decision = world.rbac.authorize(&attributes);
    if !decision.allowed {
        let status = Status::forbidden(&attributes, &decision.reason);
        record.decision = describe_refusal(&status);
        return status_response(&status);
    }
    record.decision = format!("allowed: {}", decision.reason);
    drop(world);

    if !info.is_resource_request {
        return non_resource(state, &info, &parts.method);
    }
    let outcome = resource(state, parts, &info, &user, body);
    if outcome.status().is_client_error() || outcome.status().is_server_error() {
        record.decision = format!("{}; then {}", record.decision, outcome.status());
    }
    outcome
}

fn describe_refusal(status: &Status) -> String {
    format!("{}: {}", status.reason.to_ascii_lowercase(), status.message)
}

fn constant_time_equal(left: &[u8], right: &[u8]) -> bool {
    left.len() == right.len()
        && left
            .iter()
            .zip(right)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Discovery, version and health endpoints.
fn non_resource(
    state: &State,
    info: &RequestInfo,
    method: &hyper::Method,
) -> Response<ResponseBody> {
    if method != hyper::Method::GET && method != hyper::Method::HEAD {
        return not_found_page();
    }
    let segments: Vec<&str> = info.path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["version"] => bytes_response(
            StatusCode::OK,
            "application/json",
            go_json_indented(&discovery::version()),
        ),
        ["healthz"] | ["livez"] | ["readyz"] => text_response(StatusCode::OK, "ok"),
        ["api"] => json_response(
            StatusCode::OK,
            &discovery::api_versions(&state.server_address),
        ),
        ["apis"] => json_response(StatusCode::OK, &discovery::api_group_list()),
        ["api", version] => discovery::api_resource_list("", version)
            .map(|list| json_response(StatusCode::OK, &list))
            .unwrap_or_else(not_found_page),
        ["apis", group] => discovery::api_group(group)
            .map(|document| json_response(StatusCode::OK, &document))
            .unwrap_or_else(not_found_page),
        ["apis", group, version] => discovery::api_resource_list(group, version)
            .map(|list| json_response(StatusCode::OK, &list))
            .unwrap_or_else(not_found_page),
        _ => not_found_page(),
    }
}

/// A resource request that passed authorization.
fn resource(
    state: &Arc<State>,
    parts: &mut Parts,
    info: &RequestInfo,
    user: &UserInfo,
    body: &Bytes,
) -> Response<ResponseBody> {
    let name = if info.subresource.is_empty() {
        info.resource.clone()
    } else {
        format!("{}/{}", info.resource, info.subresource)
    };
    let Some(resource_type) = discovery::find(&info.api_group, &info.api_version, &name) else {
        return not_found_page();
    };
    // Routes exist only in the right scope: a cluster-scoped resource under a namespace,
    // or a namespaced object named without one, is no route at all.
    let namespace_in_path = path_has_namespace(info);
    if (!resource_type.namespaced && namespace_in_path && resource_type.name != "namespaces")
        || (resource_type.namespaced && !namespace_in_path && !info.name.is_empty())
        || (resource_type.namespaced && !namespace_in_path && info.verb == "create")
    {
        return not_found_page();
    }
    let query = Query::parse(parts.uri.query().unwrap_or(""));
    match resource_type.name {
        "pods/exec" => return exec_request(state, parts, info, user, &query),
        "pods/log" => return pod_log(state, info),
        "pods/status" => {
            return stored_get(
                state,
                discovery::find("", "v1", "pods"),
                info,
                &parts.headers,
                &query,
            )
        }
        _ => {}
    }
    if !resource_type.verbs.contains(&info.verb.as_str()) {
        return status_response(&Status::method_not_supported(
            resource_type.group,
            resource_type.name,
            &info.verb,
        ));
    }
    let rbac_snapshot = || match state.world.read() {
        Ok(world) => world.rbac.clone(),
        Err(poisoned) => poisoned.into_inner().rbac.clone(),
    };
    match (resource_type.name, info.verb.as_str()) {
        ("selfsubjectreviews", "create") => {
            json_response(StatusCode::CREATED, &reviews::self_subject_review(user))
        }
        ("selfsubjectaccessreviews", "create") => respond(
            reviews::access_review(user, body, &rbac_snapshot(), "SelfSubjectAccessReview"),
            StatusCode::CREATED,
        ),
        ("subjectaccessreviews", "create") => respond(
            reviews::access_review(user, body, &rbac_snapshot(), "SubjectAccessReview"),
            StatusCode::CREATED,
        ),
        ("selfsubjectrulesreviews", "create") => respond(
            reviews::rules_review(user, body, &rbac_snapshot()),
            StatusCode::CREATED,
        ),
        (_, "get") => stored_get(state, Some(resource_type), info, &parts.headers, &query),
        (_, "list") => stored_list(state, resource_type, info, &parts.headers, &query),
        (_, "watch") => crate::watch::start(
            state,
            resource_type,
            info,
            &query,
            wants_table(&parts.headers),
        ),
        (_, "create" | "update" | "patch" | "delete" | "deletecollection") => {
            stored_write(state, resource_type, info, &parts.headers, &query, body)
        }
        _ => status_response(&Status::method_not_supported(
            resource_type.group,
            resource_type.name,
            &info.verb,
        )),
    }
}

/// Whether the path named a namespace (`/namespaces/NS/...`), which request info folds away.
fn path_has_namespace(info: &RequestInfo) -> bool {
    let trimmed = info.path.trim_matches('/');
    let mut segments = trimmed.split('/');
    let skip = if info.api_prefix == "apis" { 3 } else { 2 };
    let after_version: Vec<&str> = segments.by_ref().skip(skip).collect();
    let after_verb: &[&str] = match after_version.first() {
        Some(&"watch") | Some(&"proxy") => &after_version[1..],
        _ => &after_version[..],
    };
    after_verb.first() == Some(&"namespaces") && after_verb.len() > 2
}

fn respond(result: Result<Value, Status>, code: StatusCode) -> Response<ResponseBody> {
    match result {
        Ok(value) => json_response(code, &value),
        Err(status) => status_response(&status),
    }
}

fn wants_table(headers: &hyper::HeaderMap) -> bool {
    headers
        .get_all("accept")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(table::accepts_table)
}

fn stored_get(
    state: &State,
    resource_type: Option<&'static ResourceType>,
    info: &RequestInfo,
    headers: &hyper::HeaderMap,
    query: &Query,
) -> Response<ResponseBody> {
    let Some(resource_type) = resource_type else {
        return not_found_page();
    };
    let world = match state.world.read() {
        Ok(world) => world,
        Err(poisoned) => poisoned.into_inner(),
    };
    let Some(object) = world.store.get(resource_type, &info.namespace, &info.name) else {
        return status_response(&Status::not_found(
            resource_type.group,
            resource_type.name,
            &info.name,
        ));
    };
    if wants_table(headers) {
        let include = query.first("includeObject").unwrap_or_default();
        let version = object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        return json_response(
            StatusCode::OK,
            &table::table(
                resource_type,
                &[object],
                version,
                &include,
                clock::now_seconds(),
            ),
        );
    }
    json_response(StatusCode::OK, object)
}

/// Parses `labelSelector` and `fieldSelector`, or the 400 the API server would answer.
pub fn selectors(
    resource_type: &ResourceType,
    query: &Query,
) -> Result<(LabelSelector, FieldSelector), Status> {
    let labels = LabelSelector::parse(&query.first("labelSelector").unwrap_or_default())
        .map_err(Status::bad_request)?;
    let extra_fields: &[&str] = match resource_type.name {
        "pods" => &["spec.nodeName", "status.phase"],
        "secrets" => &["type"],
        "namespaces" => &["status.phase"],
        _ => &[],
    };
    let fields = FieldSelector::parse(
        &query.first("fieldSelector").unwrap_or_default(),
        extra_fields,
    )
    .map_err(Status::bad_request)?;
    Ok((labels, fields))
}

fn stored_list(
    state: &State,
    resource_type: &'static ResourceType,
    info: &RequestInfo,
    headers: &hyper::HeaderMap,
    query: &Query,
) -> Response<ResponseBody> {
    let (labels, fields) = match selectors(resource_type, query) {
        Ok(selectors) => selectors,
        Err(status) => return status_response(&status),
    };
    let world = match state.world.read() {
        Ok(world) => world,
        Err(poisoned) => poisoned.into_inner(),
    };
    let items = world
        .store
        .list(resource_type, &info.namespace, &labels, &fields);
    let version = world.store.resource_version();
    if wants_table(headers) {
        let include = query.first("includeObject").unwrap_or_default();
        return json_response(
            StatusCode::OK,
            &table::table(
                resource_type,
                &items,
                &version,
                &include,
                clock::now_seconds(),
            ),
        );
    }
    json_response(
        StatusCode::OK,
        &list_document(resource_type, &items, &version),
    )
}

fn stored_write(
    state: &State,
    resource_type: &'static ResourceType,
    info: &RequestInfo,
    headers: &hyper::HeaderMap,
    query: &Query,
    body: &Bytes,
) -> Response<ResponseBody> {
    let parsed_body = || -> Result<Value, Status> {
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("");
        if content_type.starts_with(crate::proto::CONTENT_TYPE) {
            if let Some(object) = crate::proto::decode_object(body) {
                return Ok(object);
            }
            return Err(Status::failure_with(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml",
            ));
        }
        serde_json::from_slice::<Value>(body)
            .or_else(|_| serde_yaml::from_slice::<Value>(body))
            .map_err(|error| {
                Status::bad_request(format!(
                    "the body of the request could not be decoded: {error}"
                ))
            })
    };
    let mut world = match state.world.write() {
        Ok(world) => world,
        Err(poisoned) => poisoned.into_inner(),
    };
    let dry_run = query.first("dryRun").is_some_and(|value| value == "All");
    let mut scratch;
    let store: &mut ObjectStore = if dry_run {
        scratch = world.store.clone();
        &mut scratch
    } else {
        &mut world.store
    };
    let result = match info.verb.as_str() {
        "create" => parsed_body()
            .and_then(|object| store.create(resource_type, &info.namespace, object))
            .map(|object| (StatusCode::CREATED, object)),
        "update" => parsed_body()
            .and_then(|object| store.update(resource_type, &info.namespace, &info.name, object))
            .map(|object| (StatusCode::OK, object)),
        "patch" => {
            let content_type = headers
                .get(CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("");
            if content_type.starts_with("application/json-patch+json")
                || content_type.starts_with("application/apply-patch")
            {
                Err(Status::failure_with(
                    415,
                    "UnsupportedMediaType",
                    format!("the stand-in does not support patches of type {content_type}; use merge or strategic merge patches"),
                ))
            } else {
                parsed_body()
                    .and_then(|patch| {
                        store.patch(resource_type, &info.namespace, &info.name, &patch)
                    })
                    .map(|object| (StatusCode::OK, object))
            }
        }
        "delete" => store
            .delete(resource_type, &info.namespace, &info.name)
            .map(|object| {
                if resource_type.name == "pods" || resource_type.name == "namespaces" {
                    (StatusCode::OK, object)
                } else {
                    let uid = object
                        .pointer("/metadata/uid")
                        .and_then(Value::as_str)
                        .unwrap_or("");
                    let status = Status::success_deleted(
                        resource_type.group,
                        resource_type.name,
                        &info.name,
                        uid,
                    );
                    (
                        StatusCode::OK,
                        serde_json::to_value(status).unwrap_or(Value::Null),
                    )
                }
            }),
        _ => selectors(resource_type, query).map(|(labels, fields)| {
            (
                StatusCode::OK,
                store.delete_collection(resource_type, &info.namespace, &labels, &fields),
            )
        }),
    };
    if !dry_run && result.is_ok() {
        crate::watch::notify(state, resource_type, info, &result);
    }
    drop(world);
    match result {
        Ok((code, object)) => json_response(code, &object),
        Err(status) => status_response(&status),
    }
}

fn pod_log(state: &State, info: &RequestInfo) -> Response<ResponseBody> {
    let pods = discovery::find("", "v1", "pods");
    let world = match state.world.read() {
        Ok(world) => world,
        Err(poisoned) => poisoned.into_inner(),
    };
    match pods.and_then(|pods| world.store.get(pods, &info.namespace, &info.name)) {
        Some(_) => text_response(
            StatusCode::OK,
            &format!(
                "{name}: started by the stand-in\n{name}: ready\n",
                name = info.name
            ),
        ),
        None => status_response(&Status::not_found("", "pods", &info.name)),
    }
}

/// `pods/exec` after the filters: the compound `create` check for a WebSocket GET
/// (kube 1.35+ `AuthorizePodWebsocketUpgradeCreatePermission`), the pod's existence, then
/// the upgrade.
fn exec_request(
    state: &Arc<State>,
    parts: &mut Parts,
    info: &RequestInfo,
    user: &UserInfo,
    query: &Query,
) -> Response<ResponseBody> {
    let websocket = exec::is_websocket_upgrade(&parts.headers);
    let spdy = exec::is_spdy_upgrade(&parts.headers);
    {
        let world = match state.world.read() {
            Ok(world) => world,
            Err(poisoned) => poisoned.into_inner(),
        };
        if info.verb == "get" {
            let mut create = Attributes::for_request(user, info);
            create.verb = "create".to_string();
            let decision = world.rbac.authorize(&create);
            if !decision.allowed {
                return status_response(&Status::forbidden(&create, &decision.reason));
            }
        }
        let exists = discovery::find("", "v1", "pods")
            .and_then(|pods| world.store.get(pods, &info.namespace, &info.name))
            .is_some();
        if !exists {
            return status_response(&Status::not_found("", "pods", &info.name));
        }
    }
    let options = ExecOptions::from_query(query);
    if options.command.is_empty() {
        return status_response(&Status::bad_request(
            "you must specify at least one command for the container",
        ));
    }
    let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
        return status_response(&Status::bad_request("Upgrade request required"));
    };
    if websocket && parts.method == hyper::Method::GET {
        if !state.websocket_exec {
            // As an API server that does not translate WebSocket exec: kubectl falls back
            // to SPDY on any refused upgrade.
            return status_response(&Status::bad_request(
                "WebSocket exec is turned off on this stand-in",
            ));
        }
        let Some(protocol) = exec::negotiate(
            &parts.headers,
            "sec-websocket-protocol",
            &exec::WEBSOCKET_PROTOCOLS,
        ) else {
            return status_response(&Status::bad_request(
                "no supported WebSocket subprotocol (want v5.channel.k8s.io or v4.channel.k8s.io)",
            ));
        };
        let Some(key) = parts
            .headers
            .get("sec-websocket-key")
            .and_then(|value| value.to_str().ok())
        else {
            return status_response(&Status::bad_request("missing Sec-WebSocket-Key"));
        };
        let accept = exec::websocket_accept(key);
        let pod = info.name.clone();
        tokio::spawn(async move {
            if let Ok(upgraded) = on_upgrade.await {
                if let Err(error) =
                    exec::serve_websocket(TokioIo::new(upgraded), protocol, &options, &pod).await
                {
                    log::debug!("exec websocket: {error}");
                }
            }
        });
        return upgrade_response(
            "websocket",
            &[
                ("sec-websocket-accept", accept),
                ("sec-websocket-protocol", protocol.to_string()),
            ],
        );
    }
    if spdy && parts.method == hyper::Method::POST {
        let protocol = exec::negotiate(
            &parts.headers,
            "x-stream-protocol-version",
            &exec::SPDY_PROTOCOLS,
        );
        // No SPDY framing: accept the upgrade and close, which kubectl reports as a
        // failed stream after the gateway let it through.
        tokio::spawn(async move {
            drop(on_upgrade.await);
        });
        let mut headers = Vec::new();
        if let Some(protocol) = protocol {
            headers.push(("x-stream-protocol-version", protocol.to_string()));
        }
        return upgrade_response("SPDY/3.1", &headers);
    }
    status_response(&Status::bad_request("Upgrade request required"))
}

fn upgrade_response(upgrade: &str, headers: &[(&'static str, String)]) -> Response<ResponseBody> {
    let mut response = Response::new(empty_body());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let target = response.headers_mut();
    target.insert("connection", HeaderValue::from_static("Upgrade"));
    if let Ok(value) = HeaderValue::from_str(upgrade) {
        target.insert("upgrade", value);
    }
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_str(value) {
            target.insert(*name, value);
        }
    }
    response
}

pub fn empty_body() -> ResponseBody {
    Full::new(Bytes::new()).boxed()
}

/// A response with the API server's usual headers.
pub fn bytes_response(
    code: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = code;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache, private"));
    response
}

pub fn json_response(code: StatusCode, value: &Value) -> Response<ResponseBody> {
    bytes_response(code, "application/json", go_json(value))
}

pub fn status_response(status: &Status) -> Response<ResponseBody> {
    let code = StatusCode::from_u16(status.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = bytes_response(code, "application/json", status.to_body());
    response.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn text_response(code: StatusCode, text: &str) -> Response<ResponseBody> {
    let mut response = bytes_response(code, "text/plain; charset=utf-8", text.as_bytes().to_vec());
    response.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Go's `http.NotFound`, which the API server answers for paths it has no route for.
fn not_found_page() -> Response<ResponseBody> {
    text_response(StatusCode::NOT_FOUND, "404 page not found\n")
}

/// The listen address as `/api` reports it.
pub fn server_address(address: SocketAddr) -> String {
    address.to_string()
}
