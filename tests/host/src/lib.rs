//! kubegate-host: a proxy-wasm host (ABI 0.2.1, wasmtime) that runs a filter
//! the way Envoy does, and an HTTP front that puts it before an upstream.
//!
//! - [`Plugin`]: load a `.wasm` with its configurations and environment into
//!   several VM instances, run requests through it ([`Plugin::handle`], or
//!   streaming with [`FilterStream`]), reconfigure it, read its logs, metrics
//!   and shared data.
//! - [`start_gateway`]: a TLS (h2 + http/1.1) or plain listener that runs every
//!   request through the plugin and forwards what passes to the upstream.

mod abi;
mod body;
mod client;
mod config;
mod context;
mod dispatch;
mod exchange;
mod front;
mod gateway;
mod headers;
mod logs;
mod metrics;
mod module_info;
mod plugin;
mod plugin_state;
mod shared_data;
mod spec;
mod tls;
mod vm;
mod wasi;
mod worker;

pub use config::{load_config, parse_config};
pub use exchange::{
    BodyVerdict, Failure, FilterOutcome, FilterRequest, FilterResponse, HeadersVerdict, LocalReply,
    StreamInfo, TlsInfo, TrailersVerdict,
};
pub use gateway::{start_gateway, GatewayConfig, RunningGateway};
pub use headers::HeaderMap;
pub use logs::LogLine;
pub use metrics::{MetricKind, MetricValue};
pub use module_info::{inspect_module, ModuleInfo};
pub use plugin::{FilterStream, Plugin};
pub use spec::{
    Clock, ClusterSpec, HostFaults, LogLevel, ManualClock, NodeInfo, PluginSpec, UpstreamSpec,
    DEFAULT_UPSTREAM_CLUSTER,
};
pub use tls::{generate_certificates, TlsMode};
pub use wasi::FUNCTIONS as WASI_FUNCTIONS;
