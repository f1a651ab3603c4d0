//! Header and trailer maps: `proxy_{get,add,replace,remove}_header_map_value`,
//! `proxy_{get,set}_header_map_pairs`, `proxy_get_header_map_size`.

use super::logging::refuse_while_starting;
use super::{memory, pairs, status_of, MapType, Status};
use crate::context::HostState;
use wasmtime::{Caller, Linker};

fn map_type(raw: i32) -> Result<MapType, Status> {
    MapType::from_raw(raw).ok_or(Status::BadArgument)
}

fn get_value(
    caller: &mut Caller<'_, HostState>,
    map: i32,
    key: (i32, i32),
    out: (i32, i32),
) -> Result<(), Status> {
    let map = map_type(map)?;
    let key = memory::read_string(caller, key.0, key.1)?;
    let value = {
        let state = caller.data();
        match state.readable_map(map) {
            // Envoy: a map that does not exist now is BadArgument, except in the
            // access-log phase where it is NotFound.
            None if state.in_access_log_phase() => return Err(Status::NotFound),
            None => return Err(Status::BadArgument),
            // Only the FIRST value, as Envoy does (its source flags this as a
            // potential security issue): duplicates need get_header_map_pairs.
            Some(headers) => headers.get_first(&key).ok_or(Status::NotFound)?.to_vec(),
        }
    };
    memory::copy_out(caller, &value, out.0, out.1)
}

fn get_pairs(
    caller: &mut Caller<'_, HostState>,
    map: i32,
    ptr_ptr: i32,
    size_ptr: i32,
) -> Result<(), Status> {
    let map = map_type(map)?;
    // A missing map reads as empty (Envoy `headerMapToPairs(nullptr)`).
    let bytes = caller
        .data()
        .readable_map(map)
        .map(|headers| pairs::serialize(headers.entries()))
        .unwrap_or_default();
    memory::copy_out(caller, &bytes, ptr_ptr, size_ptr)
}

fn modify(
    caller: &mut Caller<'_, HostState>,
    map: i32,
    key: (i32, i32),
    value: Option<(i32, i32)>,
    change: fn(&mut crate::headers::HeaderMap, &str, &[u8]),
) -> Result<(), Status> {
    let map = map_type(map)?;
    let key = memory::read_string(caller, key.0, key.1)?;
    let value = match value {
        Some((ptr, len)) => memory::read(caller, ptr, len)?,
        None => Vec::new(),
    };
    let headers = caller
        .data_mut()
        .writable_map(map)
        .ok_or(Status::BadArgument)?;
    change(headers, &key, &value);
    Ok(())
}

fn set_pairs(
    caller: &mut Caller<'_, HostState>,
    map: i32,
    ptr: i32,
    len: i32,
) -> Result<(), Status> {
    let map = map_type(map)?;
    let bytes = memory::read(caller, ptr, len)?;
    let parsed = pairs::deserialize(&bytes).ok_or(Status::BadArgument)?;
    let headers = caller
        .data_mut()
        .writable_map(map)
        .ok_or(Status::BadArgument)?;
    headers.set_all(
        parsed
            .into_iter()
            .map(|(name, value)| (String::from_utf8_lossy(&name).into_owned(), value)),
    );
    Ok(())
}

pub(super) fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    linker
        .func_wrap(
            "env",
            "proxy_get_header_map_value",
            |mut caller: Caller<'_, HostState>,
             map: i32,
             kp: i32,
             kl: i32,
             vpp: i32,
             vsp: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_get_header_map_value")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_get_header_map_value") {
                    return Ok(status);
                }
                Ok(status_of(get_value(&mut caller, map, (kp, kl), (vpp, vsp))))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_get_header_map_pairs",
            |mut caller: Caller<'_, HostState>,
             map: i32,
             ptr_ptr: i32,
             size_ptr: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_get_header_map_pairs")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_get_header_map_pairs") {
                    return Ok(status);
                }
                Ok(status_of(get_pairs(&mut caller, map, ptr_ptr, size_ptr)))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_set_header_map_pairs",
            |mut caller: Caller<'_, HostState>,
             map: i32,
             ptr: i32,
             len: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_set_header_map_pairs")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_set_header_map_pairs") {
                    return Ok(status);
                }
                Ok(status_of(set_pairs(&mut caller, map, ptr, len)))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_add_header_map_value",
            |mut caller: Caller<'_, HostState>,
             map: i32,
             kp: i32,
             kl: i32,
             vp: i32,
             vl: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_add_header_map_value")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_add_header_map_value") {
                    return Ok(status);
                }
                Ok(status_of(modify(
                    &mut caller,
                    map,
                    (kp, kl),
                    Some((vp, vl)),
                    |h, k, v| h.add(k, v),
                )))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_replace_header_map_value",
            |mut caller: Caller<'_, HostState>,
             map: i32,
             kp: i32,
             kl: i32,
             vp: i32,
             vl: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_replace_header_map_value")?;
                if let Some(status) =
                    super::injected_fault(&caller, "proxy_replace_header_map_value")
                {
                    return Ok(status);
                }
                Ok(status_of(modify(
                    &mut caller,
                    map,
                    (kp, kl),
                    Some((vp, vl)),
                    |h, k, v| h.replace(k, v),
                )))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_remove_header_map_value",
            |mut caller: Caller<'_, HostState>,
             map: i32,
             kp: i32,
             kl: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_remove_header_map_value")?;
                if let Some(status) =
                    super::injected_fault(&caller, "proxy_remove_header_map_value")
                {
                    return Ok(status);
                }
                Ok(status_of(modify(
                    &mut caller,
                    map,
                    (kp, kl),
                    None,
                    |h, k, _| h.remove(k),
                )))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_get_header_map_size",
            |mut caller: Caller<'_, HostState>, map: i32, size_ptr: i32| -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_get_header_map_size")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_get_header_map_size") {
                    return Ok(status);
                }
                let result = map_type(map).and_then(|map| {
                    let headers = caller
                        .data_mut()
                        .writable_map(map)
                        .ok_or(Status::BadArgument)?;
                    // Envoy `byteSize`: the bytes of every name and value.
                    let size: usize = headers
                        .entries()
                        .iter()
                        .map(|(n, v)| n.len() + v.len())
                        .sum();
                    memory::write_u32(&mut caller, size_ptr, size as u32)
                });
                Ok(status_of(result))
            },
        )
        .map_err(super::wasm_error)?;
    Ok(())
}
