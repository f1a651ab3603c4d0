//! `proxy_http_call` (the SDK's `dispatch_http_call`): a request to a named
//! cluster, answered later through `proxy_on_http_call_response` on the root
//! context, as Envoy does (its `http_call` runs on `root_context()`).

use super::logging::refuse_while_starting;
use super::{memory, pairs, Status};
use crate::context::HostState;
use crate::headers::HeaderMap;
use crate::worker::WorkerCommand;
use std::time::Duration;
use wasmtime::{Caller, Linker};

struct CallArgs {
    cluster: (i32, i32),
    headers: (i32, i32),
    body: (i32, i32),
    trailers: (i32, i32),
    timeout_ms: i32,
    token_ptr: i32,
}

fn http_call(caller: &mut Caller<'_, HostState>, args: CallArgs) -> Result<(), Status> {
    let cluster = memory::read_string(caller, args.cluster.0, args.cluster.1)?;
    let headers = memory::read(caller, args.headers.0, args.headers.1)?;
    let body = memory::read(caller, args.body.0, args.body.1)?;
    let trailers = memory::read(caller, args.trailers.0, args.trailers.1)?;
    // Check the token address before starting anything (as proxy-wasm-cpp-host).
    memory::write_u32(caller, args.token_ptr, 0)?;
    if args.timeout_ms < 0 {
        return Err(Status::BadArgument);
    }
    let to_map = |bytes: &[u8]| {
        let parsed = pairs::deserialize(bytes).unwrap_or_default();
        HeaderMap::from_pairs(
            parsed
                .iter()
                .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), v.clone())),
        )
    };
    let headers = to_map(&headers);
    let trailers = to_map(&trailers);
    let state = caller.data_mut();
    // An unknown cluster is BadArgument (Envoy: no thread-local cluster).
    let spec = state
        .plugin
        .clusters
        .get(&cluster)
        .cloned()
        .ok_or(Status::BadArgument)?;
    // Envoy requires :path, :method and :authority.
    for required in [":path", ":method", ":authority"] {
        if headers.get_first(required).is_none() {
            return Err(Status::BadArgument);
        }
    }
    let token = state.next_http_call_token;
    state.next_http_call_token = state.next_http_call_token.wrapping_add(1).max(1);
    let timeout = (args.timeout_ms > 0).then(|| Duration::from_millis(args.timeout_ms as u64));
    let commands = state.commands.clone();
    let generation = state.generation;
    state.plugin.io.spawn(async move {
        let response =
            crate::dispatch::call(&spec, &cluster, headers, body, trailers, timeout).await;
        let _ = commands.send(WorkerCommand::HttpCallDone {
            generation,
            token,
            response,
        });
    });
    memory::write_u32(caller, args.token_ptr, token)
}

pub(super) fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    linker
        .func_wrap(
            "env",
            "proxy_http_call",
            |mut caller: Caller<'_, HostState>,
             up: i32,
             ul: i32,
             hp: i32,
             hl: i32,
             bp: i32,
             bl: i32,
             tp: i32,
             tl: i32,
             timeout_ms: i32,
             token_ptr: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_http_call")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_http_call") {
                    return Ok(status);
                }
                let args = CallArgs {
                    cluster: (up, ul),
                    headers: (hp, hl),
                    body: (bp, bl),
                    trailers: (tp, tl),
                    timeout_ms,
                    token_ptr,
                };
                Ok(super::status_of(http_call(&mut caller, args)))
            },
        )
        .map_err(super::wasm_error)?;
    Ok(())
}
