//! The state a VM's hostcalls work on (the wasmtime `Store` data): which context
//! is running, the HTTP streams of this VM with the header maps and buffers
//! Envoy exposes at each moment, and the actions deferred until the VM call
//! returns (Envoy's `addAfterVmCallAction`).

use crate::abi::MapType;
use crate::exchange::{LocalReply, StreamInfo};
use crate::headers::HeaderMap;
use crate::plugin_state::PluginState;
use crate::worker::WorkerCommand;
use std::collections::HashMap;
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::{Memory, TypedFunc};

/// Request or response direction of an HTTP stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    Request,
    Response,
}

/// Work the host does once the current VM call has returned.
#[derive(Debug)]
pub(crate) enum AfterCall {
    Continue(u32, Direction),
    LocalReply(u32, LocalReply),
    /// `proxy_close_stream`: Envoy resets the whole stream either way.
    Close(u32),
    /// `proxy_done` from a root context whose `on_done` returned false.
    RootDone,
}

/// A response to `proxy_http_call`, readable during `on_http_call_response`.
#[derive(Clone, Debug, Default)]
pub(crate) struct HttpCallResponse {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
}

/// One HTTP context's view of its stream.
pub(crate) struct HttpStream {
    pub info: StreamInfo,
    pub request_headers: Option<HeaderMap>,
    pub request_trailers: Option<HeaderMap>,
    /// The request body buffer the filter sees (what is buffered so far).
    pub request_body: Option<Vec<u8>>,
    pub response_headers: Option<HeaderMap>,
    pub response_trailers: Option<HeaderMap>,
    pub response_body: Option<Vec<u8>>,
    /// Final maps for `on_log` (Envoy's access-log phase).
    pub logged_request_headers: HeaderMap,
    pub logged_response_headers: Option<HeaderMap>,
    pub logged_response_trailers: Option<HeaderMap>,
    pub access_log_phase: bool,
    /// `proxy_continue_stream` ran: Envoy drops its pointers to the request
    /// maps and body at once, so later calls in the same VM call see none.
    pub request_released: bool,
    pub response_released: bool,
    pub request_id: String,
    pub response_code: Option<u16>,
    /// `proxy_set_property` values (Envoy keeps them as filter state).
    pub filter_state: HashMap<Vec<u8>, Vec<u8>>,
}

impl HttpStream {
    pub(crate) fn new(info: StreamInfo, request_id: String) -> HttpStream {
        HttpStream {
            info,
            request_headers: None,
            request_trailers: None,
            request_body: None,
            response_headers: None,
            response_trailers: None,
            response_body: None,
            logged_request_headers: HeaderMap::new(),
            logged_response_headers: None,
            logged_response_trailers: None,
            access_log_phase: false,
            request_released: false,
            response_released: false,
            request_id,
            response_code: None,
            filter_state: HashMap::new(),
        }
    }

    /// The request headers as properties see them: live, or the logged copy in `on_log`.
    pub(crate) fn visible_request_headers(&self) -> Option<&HeaderMap> {
        if self.access_log_phase {
            Some(&self.logged_request_headers)
        } else {
            self.request_headers.as_ref()
        }
    }
}

/// Store data of one VM instance.
pub(crate) struct HostState {
    pub plugin: Arc<PluginState>,
    pub vm_index: usize,
    pub configuration: Arc<Vec<u8>>,
    pub memory: Option<Memory>,
    pub allocate: Option<TypedFunc<i32, i32>>,
    pub root_context_id: u32,
    /// `_initialize`/`main`/`_start` are running: only a few calls are allowed.
    pub starting: bool,
    /// `on_configure` is running: the plugin configuration buffer is readable.
    pub configuring: bool,
    pub current_context: u32,
    pub effective_context: Option<u32>,
    pub streams: HashMap<u32, HttpStream>,
    pub after_call: Vec<AfterCall>,
    pub tick_period: Option<Duration>,
    pub http_call_response: Option<HttpCallResponse>,
    pub next_http_call_token: u32,
    /// Metric id (per VM) -> metric name.
    pub metric_ids: HashMap<u32, String>,
    pub next_metric_id: u32,
    pub commands: Sender<WorkerCommand>,
    pub generation: u64,
    pub root_done_pending: bool,
    pub monotonic_origin: Instant,
}

impl HostState {
    pub(crate) fn new(
        plugin: Arc<PluginState>,
        vm_index: usize,
        configuration: Arc<Vec<u8>>,
        commands: Sender<WorkerCommand>,
        generation: u64,
    ) -> HostState {
        HostState {
            plugin,
            vm_index,
            configuration,
            memory: None,
            allocate: None,
            root_context_id: 0,
            starting: false,
            configuring: false,
            current_context: 0,
            effective_context: None,
            streams: HashMap::new(),
            after_call: Vec::new(),
            tick_period: None,
            http_call_response: None,
            next_http_call_token: 1,
            metric_ids: HashMap::new(),
            next_metric_id: 1,
            commands,
            generation,
            root_done_pending: false,
            monotonic_origin: Instant::now(),
        }
    }

    /// The context hostcalls act on: the effective one if set and alive
    /// (proxy-wasm-cpp-host `ContextOrEffectiveContext`), else the running one.
    pub(crate) fn active_context(&self) -> u32 {
        match self.effective_context {
            Some(id) if id == self.root_context_id || self.streams.contains_key(&id) => id,
            _ => self.current_context,
        }
    }

    pub(crate) fn context_exists(&self, id: u32) -> bool {
        id == self.root_context_id || self.streams.contains_key(&id)
    }

    pub(crate) fn active_stream(&self) -> Option<&HttpStream> {
        self.streams.get(&self.active_context())
    }

    pub(crate) fn active_stream_mut(&mut self) -> Option<&mut HttpStream> {
        let id = self.active_context();
        self.streams.get_mut(&id)
    }

    /// The map a read sees, or `None` when Envoy would have none at this moment.
    pub(crate) fn readable_map(&self, map: MapType) -> Option<&HeaderMap> {
        match map {
            MapType::HttpCallResponseHeaders => {
                self.http_call_response.as_ref().map(|r| &r.headers)
            }
            MapType::HttpCallResponseTrailers => {
                self.http_call_response.as_ref().map(|r| &r.trailers)
            }
            MapType::GrpcReceiveInitialMetadata | MapType::GrpcReceiveTrailingMetadata => None,
            MapType::RequestHeaders => {
                let stream = self.active_stream()?;
                if stream.access_log_phase {
                    Some(&stream.logged_request_headers)
                } else if stream.request_released {
                    None
                } else {
                    stream.request_headers.as_ref()
                }
            }
            MapType::RequestTrailers => {
                let stream = self.active_stream()?;
                if stream.access_log_phase || stream.request_released {
                    None
                } else {
                    stream.request_trailers.as_ref()
                }
            }
            MapType::ResponseHeaders => {
                let stream = self.active_stream()?;
                if stream.access_log_phase {
                    stream.logged_response_headers.as_ref()
                } else if stream.response_released {
                    None
                } else {
                    stream.response_headers.as_ref()
                }
            }
            MapType::ResponseTrailers => {
                let stream = self.active_stream()?;
                if stream.access_log_phase {
                    stream.logged_response_trailers.as_ref()
                } else if stream.response_released {
                    None
                } else {
                    stream.response_trailers.as_ref()
                }
            }
        }
    }

    /// True while `on_log` runs for the active stream.
    pub(crate) fn in_access_log_phase(&self) -> bool {
        self.active_stream().is_some_and(|s| s.access_log_phase)
    }

    /// The map a write changes; only live request/response maps are writable.
    pub(crate) fn writable_map(&mut self, map: MapType) -> Option<&mut HeaderMap> {
        let stream = self.active_stream_mut()?;
        if stream.access_log_phase {
            return None;
        }
        match map {
            MapType::RequestHeaders if !stream.request_released => stream.request_headers.as_mut(),
            MapType::RequestTrailers if !stream.request_released => {
                stream.request_trailers.as_mut()
            }
            MapType::ResponseHeaders if !stream.response_released => {
                stream.response_headers.as_mut()
            }
            MapType::ResponseTrailers if !stream.response_released => {
                stream.response_trailers.as_mut()
            }
            _ => None,
        }
    }
}
