//! Stream control: `proxy_continue_stream`, `proxy_close_stream`,
//! `proxy_send_local_response`, `proxy_set_effective_context`, `proxy_done`,
//! plus `proxy_get_status` and `proxy_call_foreign_function`.

use super::logging::refuse_while_starting;
use super::{memory, pairs, status_of, Status};
use crate::context::{AfterCall, Direction, HostState};
use crate::exchange::LocalReply;
use crate::headers::HeaderMap;
use wasmtime::{Caller, Linker};

fn direction(raw: i32) -> Result<Option<Direction>, Status> {
    match raw {
        0 => Ok(Some(Direction::Request)),
        1 => Ok(Some(Direction::Response)),
        // Downstream/Upstream belong to network filters; an HTTP stream has none.
        2 | 3 => Ok(None),
        _ => Err(Status::BadArgument),
    }
}

fn continue_stream(caller: &mut Caller<'_, HostState>, raw: i32) -> Result<(), Status> {
    let Some(direction) = direction(raw)? else {
        return Err(Status::BadArgument);
    };
    let state = caller.data_mut();
    let id = state.active_context();
    // Envoy defers the actual continue until the VM call returns and, at once,
    // stops exposing the request maps and body.
    if let Some(stream) = state.streams.get_mut(&id) {
        match direction {
            Direction::Request => stream.request_released = true,
            Direction::Response => stream.response_released = true,
        }
        state.after_call.push(AfterCall::Continue(id, direction));
    }
    Ok(())
}

fn close_stream(caller: &mut Caller<'_, HostState>, raw: i32) -> Result<(), Status> {
    if direction(raw)?.is_none() {
        return Ok(());
    }
    let state = caller.data_mut();
    let id = state.active_context();
    if state.streams.contains_key(&id) {
        state.after_call.push(AfterCall::Close(id));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn send_local_response(
    caller: &mut Caller<'_, HostState>,
    status: i32,
    details: (i32, i32),
    body: (i32, i32),
    headers: (i32, i32),
) -> Result<(), Status> {
    let details = memory::read_string(caller, details.0, details.1)?;
    let body = memory::read(caller, body.0, body.1)?;
    let headers = memory::read(caller, headers.0, headers.1)?;
    // Envoy's `toPairs` reads a malformed map as empty.
    let headers = pairs::deserialize(&headers).unwrap_or_default();
    let headers = HeaderMap::from_pairs(
        headers
            .iter()
            .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), v.clone())),
    );
    let state = caller.data_mut();
    let id = state.active_context();
    // Only an HTTP context can answer (Envoy: `decoder_callbacks_` only).
    if state.streams.contains_key(&id) {
        let status = u16::try_from(status as u32).unwrap_or(500);
        state.after_call.push(AfterCall::LocalReply(
            id,
            LocalReply {
                status,
                headers,
                body,
                details,
            },
        ));
    }
    Ok(())
}

pub(super) fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    linker
        .func_wrap(
            "env",
            "proxy_continue_stream",
            |mut caller: Caller<'_, HostState>, kind: i32| -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_continue_stream")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_continue_stream") {
                    return Ok(status);
                }
                Ok(status_of(continue_stream(&mut caller, kind)))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_close_stream",
            |mut caller: Caller<'_, HostState>, kind: i32| -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_close_stream")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_close_stream") {
                    return Ok(status);
                }
                Ok(status_of(close_stream(&mut caller, kind)))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_send_local_response",
            |mut caller: Caller<'_, HostState>,
             status: i32,
             dp: i32,
             dl: i32,
             bp: i32,
             bl: i32,
             hp: i32,
             hl: i32,
             _grpc_status: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_send_local_response")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_send_local_response") {
                    return Ok(status);
                }
                Ok(status_of(send_local_response(
                    &mut caller,
                    status,
                    (dp, dl),
                    (bp, bl),
                    (hp, hl),
                )))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_set_effective_context",
            |mut caller: Caller<'_, HostState>, context_id: i32| -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_set_effective_context")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_set_effective_context")
                {
                    return Ok(status);
                }
                let id = context_id as u32;
                let state = caller.data_mut();
                if !state.context_exists(id) {
                    return Ok(Status::BadArgument.code());
                }
                state.effective_context = Some(id);
                Ok(Status::Ok.code())
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_done",
            |mut caller: Caller<'_, HostState>| -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_done")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_done") {
                    return Ok(status);
                }
                let state = caller.data_mut();
                // Only a root context whose on_done returned false may finish later.
                if !state.root_done_pending {
                    return Ok(Status::NotFound.code());
                }
                state.root_done_pending = false;
                state.after_call.push(AfterCall::RootDone);
                Ok(Status::Ok.code())
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_get_status",
            |mut caller: Caller<'_, HostState>,
             code_ptr: i32,
             msg_pp: i32,
             msg_sp: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_get_status")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_get_status") {
                    return Ok(status);
                }
                let result = memory::write_u32(&mut caller, code_ptr, 0)
                    .and_then(|()| memory::copy_out(&mut caller, b"", msg_pp, msg_sp));
                Ok(status_of(result))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_call_foreign_function",
            |caller: Caller<'_, HostState>,
             _np: i32,
             _nl: i32,
             _ap: i32,
             _al: i32,
             _rpp: i32,
             _rsp: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_call_foreign_function")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_call_foreign_function")
                {
                    return Ok(status);
                }
                // No foreign functions are registered in this host.
                Ok(Status::NotFound.code())
            },
        )
        .map_err(super::wasm_error)?;
    Ok(())
}
