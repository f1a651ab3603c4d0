//! The proxy-wasm ABI 0.2.1 host functions (module `env`), one file per family.
//!
//! Every function validates guest pointers and lengths and answers a status code
//! (`InvalidMemoryAccess` for bad memory, as proxy-wasm-cpp-host does); the host
//! itself never panics on guest input. Only calls that Envoy makes fatal trap:
//! a restricted call while the VM starts.

mod buffers;
mod grpc;
mod headers;
mod http_call;
mod logging;
pub(crate) mod memory;
mod metrics;
pub(crate) mod pairs;
mod properties;
mod shared;
mod stream;

use crate::context::HostState;
use wasmtime::Linker;

/// Status codes of the ABI (proxy-wasm-cpp-host `WasmResult`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    ParseFailure = 4,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
}

impl Status {
    pub(crate) fn code(self) -> i32 {
        self as i32
    }
}

/// Folds a hostcall body's `Result` into the status the guest sees.
pub(crate) fn status_of(result: Result<(), Status>) -> i32 {
    match result {
        Ok(()) => Status::Ok.code(),
        Err(status) => status.code(),
    }
}

/// Header map types (`proxy_*_header_map_*` first argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapType {
    RequestHeaders,
    RequestTrailers,
    ResponseHeaders,
    ResponseTrailers,
    GrpcReceiveInitialMetadata,
    GrpcReceiveTrailingMetadata,
    HttpCallResponseHeaders,
    HttpCallResponseTrailers,
}

impl MapType {
    pub(crate) fn from_raw(raw: i32) -> Option<MapType> {
        Some(match raw {
            0 => MapType::RequestHeaders,
            1 => MapType::RequestTrailers,
            2 => MapType::ResponseHeaders,
            3 => MapType::ResponseTrailers,
            4 => MapType::GrpcReceiveInitialMetadata,
            5 => MapType::GrpcReceiveTrailingMetadata,
            6 => MapType::HttpCallResponseHeaders,
            7 => MapType::HttpCallResponseTrailers,
            _ => return None,
        })
    }
}

/// Buffer types (`proxy_get_buffer_bytes` first argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufferType {
    RequestBody,
    ResponseBody,
    DownstreamData,
    UpstreamData,
    HttpCallResponseBody,
    GrpcReceiveBuffer,
    VmConfiguration,
    PluginConfiguration,
    CallData,
}

impl BufferType {
    pub(crate) fn from_raw(raw: i32) -> Option<BufferType> {
        Some(match raw {
            0 => BufferType::RequestBody,
            1 => BufferType::ResponseBody,
            2 => BufferType::DownstreamData,
            3 => BufferType::UpstreamData,
            4 => BufferType::HttpCallResponseBody,
            5 => BufferType::GrpcReceiveBuffer,
            6 => BufferType::VmConfiguration,
            7 => BufferType::PluginConfiguration,
            8 => BufferType::CallData,
            _ => return None,
        })
    }
}

/// Registers every `env.proxy_*` function of ABI 0.2.1.
pub(crate) fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    logging::link(linker)?;
    headers::link(linker)?;
    buffers::link(linker)?;
    properties::link(linker)?;
    stream::link(linker)?;
    http_call::link(linker)?;
    shared::link(linker)?;
    metrics::link(linker)?;
    grpc::link(linker)?;
    Ok(())
}

pub(crate) use logging::{now_nanos, refuse_while_starting};

/// The status a hostcall answers instead of doing its work, when the plugin's
/// [`crate::HostFaults`] name it: the fault's error status, or Ok without any effect.
pub(crate) fn injected_fault(caller: &wasmtime::Caller<'_, HostState>, name: &str) -> Option<i32> {
    let faults = &caller.data().plugin.faults;
    if faults.fail.iter().any(|f| f == name) {
        return Some(faults.status as i32);
    }
    if faults.ignore.iter().any(|f| f == name) {
        return Some(Status::Ok.code());
    }
    None
}

/// Converts wasmtime's error type (not `std::error::Error`) into anyhow's.
pub(crate) fn wasm_error(error: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!("{error:?}")
}
