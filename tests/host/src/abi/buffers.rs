//! Buffers: bodies, configurations and the http-call response body
//! (`proxy_get_buffer_bytes`, `proxy_set_buffer_bytes`, `proxy_get_buffer_status`).

use super::logging::refuse_while_starting;
use super::{memory, status_of, BufferType, Status};
use crate::context::HostState;
use wasmtime::{Caller, Linker};

/// A copy of the buffer the filter asked for, or `None` when Envoy has none now.
fn buffer(state: &HostState, kind: BufferType) -> Option<Vec<u8>> {
    match kind {
        BufferType::VmConfiguration => Some(state.plugin.vm_configuration.clone()),
        // Only while on_configure runs (Envoy's `temp_plugin_`).
        BufferType::PluginConfiguration => state.configuring.then(|| state.configuration.to_vec()),
        BufferType::HttpCallResponseBody => {
            state.http_call_response.as_ref().map(|r| r.body.clone())
        }
        BufferType::RequestBody => {
            let stream = state.active_stream()?;
            if stream.request_released {
                return None;
            }
            stream.request_body.clone()
        }
        BufferType::ResponseBody => {
            let stream = state.active_stream()?;
            if stream.response_released {
                return None;
            }
            stream.response_body.clone()
        }
        BufferType::DownstreamData
        | BufferType::UpstreamData
        | BufferType::GrpcReceiveBuffer
        | BufferType::CallData => None,
    }
}

fn get_bytes(
    caller: &mut Caller<'_, HostState>,
    kind: i32,
    start: i32,
    length: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> Result<(), Status> {
    let kind = BufferType::from_raw(kind).ok_or(Status::BadArgument)?;
    let data = buffer(caller.data(), kind).ok_or(Status::NotFound)?;
    let start = start as u32 as usize;
    let length = length as u32 as usize;
    let end = start.checked_add(length).ok_or(Status::BadArgument)?;
    if start > data.len() {
        return Err(Status::BadArgument);
    }
    // Don't over-read; a zero-length read writes nothing (the SDK sees None).
    let end = end.min(data.len());
    if end > start {
        memory::copy_out(caller, &data[start..end], ptr_ptr, size_ptr)?;
    }
    Ok(())
}

/// Envoy's `Buffer::copyFrom` for a mutable body: prepend (start 0, length 0),
/// replace all (start 0, length >= size) or append (start >= size).
fn splice(body: &mut Vec<u8>, start: usize, length: usize, data: &[u8]) -> Result<(), Status> {
    if start == 0 {
        if length == 0 {
            body.splice(0..0, data.iter().copied());
            Ok(())
        } else if length >= body.len() {
            body.clear();
            body.extend_from_slice(data);
            Ok(())
        } else {
            Err(Status::BadArgument)
        }
    } else if start >= body.len() {
        body.extend_from_slice(data);
        Ok(())
    } else {
        Err(Status::BadArgument)
    }
}

fn set_bytes(
    caller: &mut Caller<'_, HostState>,
    kind: i32,
    start: i32,
    length: i32,
    ptr: i32,
    len: i32,
) -> Result<(), Status> {
    let kind = BufferType::from_raw(kind).ok_or(Status::BadArgument)?;
    if buffer(caller.data(), kind).is_none() {
        return Err(Status::NotFound);
    }
    let data = memory::read(caller, ptr, len)?;
    let stream = caller
        .data_mut()
        .active_stream_mut()
        .ok_or(Status::BadArgument)?;
    let body = match kind {
        BufferType::RequestBody => stream.request_body.as_mut(),
        BufferType::ResponseBody => stream.response_body.as_mut(),
        // Configurations and call responses are read-only.
        _ => return Err(Status::BadArgument),
    };
    let body = body.ok_or(Status::NotFound)?;
    splice(body, start as u32 as usize, length as u32 as usize, &data)
}

pub(super) fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    linker
        .func_wrap(
            "env",
            "proxy_get_buffer_bytes",
            |mut caller: Caller<'_, HostState>,
             kind: i32,
             start: i32,
             len: i32,
             pp: i32,
             sp: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_get_buffer_bytes")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_get_buffer_bytes") {
                    return Ok(status);
                }
                Ok(status_of(get_bytes(&mut caller, kind, start, len, pp, sp)))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_set_buffer_bytes",
            |mut caller: Caller<'_, HostState>,
             kind: i32,
             start: i32,
             len: i32,
             ptr: i32,
             size: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_set_buffer_bytes")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_set_buffer_bytes") {
                    return Ok(status);
                }
                Ok(status_of(set_bytes(
                    &mut caller,
                    kind,
                    start,
                    len,
                    ptr,
                    size,
                )))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_get_buffer_status",
            |mut caller: Caller<'_, HostState>,
             kind: i32,
             length_ptr: i32,
             flags_ptr: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_get_buffer_status")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_get_buffer_status") {
                    return Ok(status);
                }
                let result = BufferType::from_raw(kind)
                    .ok_or(Status::BadArgument)
                    .and_then(|kind| {
                        let size = buffer(caller.data(), kind).ok_or(Status::NotFound)?.len();
                        memory::write_u32(&mut caller, length_ptr, size as u32)?;
                        memory::write_u32(&mut caller, flags_ptr, 0)
                    });
                Ok(status_of(result))
            },
        )
        .map_err(super::wasm_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::splice;
    use crate::abi::Status;

    #[test]
    fn splice_follows_envoy_copy_from() {
        let mut body = b"hello".to_vec();
        splice(&mut body, 0, 0, b">").unwrap();
        assert_eq!(body, b">hello");
        splice(&mut body, 6, 0, b"<").unwrap();
        assert_eq!(body, b">hello<");
        splice(&mut body, 0, 100, b"new").unwrap();
        assert_eq!(body, b"new");
        assert_eq!(splice(&mut body, 1, 1, b"x"), Err(Status::BadArgument));
        assert_eq!(splice(&mut body, 0, 1, b"x"), Err(Status::BadArgument));
    }
}
