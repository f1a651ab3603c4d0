//! Metrics: `proxy_define_metric`, `proxy_increment_metric`,
//! `proxy_record_metric`, `proxy_get_metric`.

use super::logging::refuse_while_starting;
use super::{memory, status_of, Status};
use crate::context::HostState;
use crate::metrics::{MetricError, MetricKind};
use wasmtime::{Caller, Linker};

fn status(error: MetricError) -> Status {
    match error {
        MetricError::NotFound => Status::NotFound,
        MetricError::BadArgument => Status::BadArgument,
    }
}

fn name_of(state: &HostState, id: i32) -> Result<String, Status> {
    // The low two bits carry the type, as in Envoy's metric ids.
    if MetricKind::from_raw(id & 3).is_none() {
        return Err(Status::BadArgument);
    }
    state
        .metric_ids
        .get(&(id as u32))
        .cloned()
        .ok_or(Status::NotFound)
}

fn define(
    caller: &mut Caller<'_, HostState>,
    kind: i32,
    name: (i32, i32),
    id_ptr: i32,
) -> Result<(), Status> {
    let kind = MetricKind::from_raw(kind).ok_or(Status::BadArgument)?;
    let name = memory::read_string(caller, name.0, name.1)?;
    let state = caller.data_mut();
    state.plugin.metrics.define(&name, kind);
    let id = (state.next_metric_id << 2) | kind as u32;
    state.next_metric_id += 1;
    state.metric_ids.insert(id, name);
    memory::write_u32(caller, id_ptr, id)
}

pub(super) fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    linker
        .func_wrap(
            "env",
            "proxy_define_metric",
            |mut caller: Caller<'_, HostState>,
             kind: i32,
             np: i32,
             nl: i32,
             id_ptr: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_define_metric")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_define_metric") {
                    return Ok(status);
                }
                Ok(status_of(define(&mut caller, kind, (np, nl), id_ptr)))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_increment_metric",
            |caller: Caller<'_, HostState>, id: i32, offset: i64| -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_increment_metric")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_increment_metric") {
                    return Ok(status);
                }
                let state = caller.data();
                let result = name_of(state, id).and_then(|name| {
                    state
                        .plugin
                        .metrics
                        .increment(&name, offset)
                        .map_err(status)
                });
                Ok(status_of(result))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_record_metric",
            |caller: Caller<'_, HostState>, id: i32, value: i64| -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_record_metric")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_record_metric") {
                    return Ok(status);
                }
                let state = caller.data();
                let result = name_of(state, id).and_then(|name| {
                    state
                        .plugin
                        .metrics
                        .record(&name, value as u64)
                        .map_err(status)
                });
                Ok(status_of(result))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_get_metric",
            |mut caller: Caller<'_, HostState>, id: i32, value_ptr: i32| -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_get_metric")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_get_metric") {
                    return Ok(status);
                }
                let result = name_of(caller.data(), id)
                    .and_then(|name| caller.data().plugin.metrics.read(&name).map_err(status))
                    .and_then(|value| memory::write_u64(&mut caller, value_ptr, value));
                Ok(status_of(result))
            },
        )
        .map_err(super::wasm_error)?;
    Ok(())
}
