//! Logging, log level, time and the root context's timer.

use super::memory;
use super::{status_of, Status};
use crate::context::HostState;
use crate::spec::LogLevel;
use std::time::{Duration, UNIX_EPOCH};
use wasmtime::{Caller, Linker};

/// Envoy refuses most calls while `_initialize`/`main`/`_start` run (its
/// "restricted callbacks"): such a call fails the VM.
pub(crate) fn refuse_while_starting(
    caller: &Caller<'_, HostState>,
    name: &str,
) -> wasmtime::Result<()> {
    if caller.data().starting {
        return Err(wasmtime::Error::msg(format!(
            "Function: {name} is not allowed while the VM is starting"
        )));
    }
    Ok(())
}

pub(crate) fn now_nanos(state: &HostState) -> u64 {
    (state.plugin.clock)()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

pub(super) fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    linker
        .func_wrap(
            "env",
            "proxy_log",
            |mut caller: Caller<'_, HostState>, level: i32, ptr: i32, len: i32| -> i32 {
                if let Some(status) = super::injected_fault(&caller, "proxy_log") {
                    return status;
                }
                let Some(level) = LogLevel::from_raw(level as u32) else {
                    return Status::BadArgument.code();
                };
                status_of(memory::read(&mut caller, ptr, len).map(|message| {
                    let state = caller.data();
                    let message = String::from_utf8_lossy(&message);
                    state
                        .plugin
                        .logs
                        .filter_line(state.vm_index, level, &message);
                }))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_get_log_level",
            |mut caller: Caller<'_, HostState>, level_ptr: i32| -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_get_log_level")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_get_log_level") {
                    return Ok(status);
                }
                let level = caller.data().plugin.logs.threshold() as u32;
                Ok(status_of(memory::write_u32(&mut caller, level_ptr, level)))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_get_current_time_nanoseconds",
            |mut caller: Caller<'_, HostState>, time_ptr: i32| -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_get_current_time_nanoseconds")?;
                if let Some(status) =
                    super::injected_fault(&caller, "proxy_get_current_time_nanoseconds")
                {
                    return Ok(status);
                }
                let now = now_nanos(caller.data());
                Ok(status_of(memory::write_u64(&mut caller, time_ptr, now)))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_set_tick_period_milliseconds",
            |mut caller: Caller<'_, HostState>, period: i32| -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_set_tick_period_milliseconds")?;
                if let Some(status) =
                    super::injected_fault(&caller, "proxy_set_tick_period_milliseconds")
                {
                    return Ok(status);
                }
                // The timer always belongs to the root context (Envoy `setTimerPeriod`).
                let period = period as u32;
                caller.data_mut().tick_period =
                    (period > 0).then(|| Duration::from_millis(u64::from(period)));
                Ok(Status::Ok.code())
            },
        )
        .map_err(super::wasm_error)?;
    Ok(())
}
