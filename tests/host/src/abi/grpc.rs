//! gRPC calls (`proxy_grpc_call`, `proxy_grpc_stream`, `proxy_grpc_send`,
//! `proxy_grpc_cancel`, `proxy_grpc_close`). The SDK imports them all; this
//! host has no gRPC clusters, so a call names an unknown service (Envoy:
//! ParseFailure) and tokens are never valid (NotFound).

use super::logging::refuse_while_starting;
use super::Status;
use crate::context::HostState;
use wasmtime::{Caller, Linker};

pub(super) fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    linker
        .func_wrap(
            "env",
            "proxy_grpc_call",
            |caller: Caller<'_, HostState>,
             _sp: i32,
             _sl: i32,
             _np: i32,
             _nl: i32,
             _mp: i32,
             _ml: i32,
             _ip: i32,
             _il: i32,
             _rp: i32,
             _rl: i32,
             _timeout: i32,
             _token_ptr: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_grpc_call")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_grpc_call") {
                    return Ok(status);
                }
                Ok(Status::ParseFailure.code())
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_grpc_stream",
            |caller: Caller<'_, HostState>,
             _sp: i32,
             _sl: i32,
             _np: i32,
             _nl: i32,
             _mp: i32,
             _ml: i32,
             _ip: i32,
             _il: i32,
             _token_ptr: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_grpc_stream")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_grpc_stream") {
                    return Ok(status);
                }
                Ok(Status::ParseFailure.code())
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_grpc_send",
            |caller: Caller<'_, HostState>,
             _token: i32,
             _mp: i32,
             _ml: i32,
             _end: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_grpc_send")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_grpc_send") {
                    return Ok(status);
                }
                Ok(Status::NotFound.code())
            },
        )
        .map_err(super::wasm_error)?;
    for name in ["proxy_grpc_cancel", "proxy_grpc_close"] {
        linker
            .func_wrap(
                "env",
                name,
                move |caller: Caller<'_, HostState>, _token: i32| -> wasmtime::Result<i32> {
                    refuse_while_starting(&caller, name)?;
                    Ok(Status::NotFound.code())
                },
            )
            .map_err(super::wasm_error)?;
    }
    Ok(())
}
