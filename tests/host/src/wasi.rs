//! WASI snapshot preview1, implemented by hand the way Envoy does: only what
//! filters import, with no access to the host's files, arguments or real
//! environment. `fd_write` to stdout/stderr becomes an info/error log line.
//! The same functions are also offered as `wasi_unstable`, as Envoy does.

use crate::abi::memory;
use crate::abi::wasm_error;
use crate::context::HostState;
use crate::spec::LogLevel;
use std::io::Read;
use wasmtime::{Caller, Linker};

const ESUCCESS: i32 = 0;
const EBADF: i32 = 8;
const EFAULT: i32 = 21;
const EINVAL: i32 = 28;
const ENOSYS: i32 = 52;
const ENOTSUP: i32 = 58;

/// Calls Envoy allows while `_initialize`/`_start` run; the rest are refused then.
fn check_start(caller: &Caller<'_, HostState>, name: &str) -> wasmtime::Result<()> {
    crate::abi::refuse_while_starting(caller, name)
}

fn fd_write(
    caller: &mut Caller<'_, HostState>,
    fd: i32,
    iovs: i32,
    iovs_len: i32,
    nwritten_ptr: i32,
) -> i32 {
    let level = match fd {
        1 => LogLevel::Info,
        2 => LogLevel::Error,
        _ => return EBADF,
    };
    let mut text = Vec::new();
    for i in 0..(iovs_len as u32) {
        let Some(at) = (iovs as u32).checked_add(i.saturating_mul(8)) else {
            return EFAULT;
        };
        let Ok(iovec) = memory::read(caller, at as i32, 8) else {
            return EFAULT;
        };
        let buf = i32::from_le_bytes([iovec[0], iovec[1], iovec[2], iovec[3]]);
        let len = i32::from_le_bytes([iovec[4], iovec[5], iovec[6], iovec[7]]);
        if len != 0 {
            match memory::read(caller, buf, len) {
                Ok(bytes) => text.extend_from_slice(&bytes),
                Err(_) => return EFAULT,
            }
        }
    }
    let written = text.len();
    if written > 0 {
        if text.last() == Some(&b'\n') {
            text.pop();
        }
        let state = caller.data();
        state
            .plugin
            .logs
            .filter_line(state.vm_index, level, &String::from_utf8_lossy(&text));
    }
    match memory::write_u32(caller, nwritten_ptr, written as u32) {
        Ok(()) => ESUCCESS,
        Err(_) => EFAULT,
    }
}

fn environ_get(caller: &mut Caller<'_, HostState>, mut array_ptr: i32, mut buf_ptr: i32) -> i32 {
    let env = caller.data().plugin.env.clone();
    for (key, value) in env {
        let mut entry = Vec::with_capacity(key.len() + value.len() + 2);
        entry.extend_from_slice(key.as_bytes());
        entry.push(b'=');
        entry.extend_from_slice(value.as_bytes());
        entry.push(0);
        if memory::write_u32(caller, array_ptr, buf_ptr as u32).is_err()
            || memory::write(caller, buf_ptr, &entry).is_err()
        {
            return EFAULT;
        }
        buf_ptr = buf_ptr.wrapping_add(entry.len() as i32);
        array_ptr = array_ptr.wrapping_add(4);
    }
    ESUCCESS
}

fn environ_sizes_get(caller: &mut Caller<'_, HostState>, count_ptr: i32, size_ptr: i32) -> i32 {
    let env = &caller.data().plugin.env;
    let count = env.len() as u32;
    let size: usize = env.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    if memory::write_u32(caller, count_ptr, count).is_err()
        || memory::write_u32(caller, size_ptr, size as u32).is_err()
    {
        return EFAULT;
    }
    ESUCCESS
}

fn clock_time_get(caller: &mut Caller<'_, HostState>, clock_id: i32, time_ptr: i32) -> i32 {
    let state = caller.data();
    let nanos = match clock_id {
        // REALTIME follows the plugin's (overridable) clock, like proxy_get_current_time.
        0 => crate::abi::now_nanos(state),
        1 => state.monotonic_origin.elapsed().as_nanos() as u64,
        _ => return ENOTSUP,
    };
    match memory::write_u64(caller, time_ptr, nanos) {
        Ok(()) => ESUCCESS,
        Err(_) => EFAULT,
    }
}

fn random_get(caller: &mut Caller<'_, HostState>, buf: i32, len: i32) -> i32 {
    let len = len as u32 as usize;
    if len > 1 << 20 {
        return EINVAL;
    }
    let mut bytes = vec![0u8; len];
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if filled.is_err() {
        return ENOSYS;
    }
    match memory::write(caller, buf, &bytes) {
        Ok(()) => ESUCCESS,
        Err(_) => EFAULT,
    }
}

fn link_module(linker: &mut Linker<HostState>, module: &str) -> anyhow::Result<()> {
    linker
        .func_wrap(
            module,
            "fd_write",
            |mut c: Caller<'_, HostState>, fd: i32, iovs: i32, n: i32, out: i32| {
                fd_write(&mut c, fd, iovs, n, out)
            },
        )
        .map_err(wasm_error)?;
    linker
        .func_wrap(
            module,
            "fd_read",
            |c: Caller<'_, HostState>, _: i32, _: i32, _: i32, _: i32| -> wasmtime::Result<i32> {
                check_start(&c, "fd_read")?;
                Ok(ENOSYS)
            },
        )
        .map_err(wasm_error)?;
    linker
        .func_wrap(
            module,
            "fd_seek",
            |c: Caller<'_, HostState>, _: i32, _: i64, _: i32, _: i32| -> wasmtime::Result<i32> {
                check_start(&c, "fd_seek")?;
                Ok(ESUCCESS)
            },
        )
        .map_err(wasm_error)?;
    linker
        .func_wrap(
            module,
            "fd_close",
            |c: Caller<'_, HostState>, _: i32| -> wasmtime::Result<i32> {
                check_start(&c, "fd_close")?;
                Ok(ESUCCESS)
            },
        )
        .map_err(wasm_error)?;
    linker
        .func_wrap(
            module,
            "fd_fdstat_get",
            |mut c: Caller<'_, HostState>, fd: i32, stat: i32| -> wasmtime::Result<i32> {
                check_start(&c, "fd_fdstat_get")?;
                if fd != 1 && fd != 2 {
                    return Ok(EBADF);
                }
                // A character device that may be written to (rights_base = FD_WRITE).
                let mut out = [0u8; 24];
                out[8] = 64;
                Ok(match memory::write(&mut c, stat, &out) {
                    Ok(()) => ESUCCESS,
                    Err(_) => EFAULT,
                })
            },
        )
        .map_err(wasm_error)?;
    linker
        .func_wrap(
            module,
            "fd_prestat_get",
            |_: Caller<'_, HostState>, _: i32, _: i32| EBADF,
        )
        .map_err(wasm_error)?;
    linker
        .func_wrap(
            module,
            "fd_prestat_dir_name",
            |_: Caller<'_, HostState>, _: i32, _: i32, _: i32| ENOSYS,
        )
        .map_err(wasm_error)?;
    linker
        .func_wrap(
            module,
            "path_open",
            |c: Caller<'_, HostState>,
             _: i32,
             _: i32,
             _: i32,
             _: i32,
             _: i32,
             _: i64,
             _: i64,
             _: i32,
             _: i32|
             -> wasmtime::Result<i32> {
                check_start(&c, "path_open")?;
                Ok(ENOSYS)
            },
        )
        .map_err(wasm_error)?;
    linker
        .func_wrap(
            module,
            "environ_get",
            |mut c: Caller<'_, HostState>, array: i32, buf: i32| environ_get(&mut c, array, buf),
        )
        .map_err(wasm_error)?;
    linker
        .func_wrap(
            module,
            "environ_sizes_get",
            |mut c: Caller<'_, HostState>, count: i32, size: i32| {
                environ_sizes_get(&mut c, count, size)
            },
        )
        .map_err(wasm_error)?;
    linker
        .func_wrap(
            module,
            "args_get",
            |_: Caller<'_, HostState>, _: i32, _: i32| ESUCCESS,
        )
        .map_err(wasm_error)?;
    linker
        .func_wrap(
            module,
            "args_sizes_get",
            |mut c: Caller<'_, HostState>, argc: i32, size: i32| {
                if memory::write_u32(&mut c, argc, 0).is_err()
                    || memory::write_u32(&mut c, size, 0).is_err()
                {
                    return EFAULT;
                }
                ESUCCESS
            },
        )
        .map_err(wasm_error)?;
    linker
        .func_wrap(
            module,
            "clock_time_get",
            |mut c: Caller<'_, HostState>, id: i32, _precision: i64, out: i32| {
                clock_time_get(&mut c, id, out)
            },
        )
        .map_err(wasm_error)?;
    linker
        .func_wrap(
            module,
            "random_get",
            |mut c: Caller<'_, HostState>, buf: i32, len: i32| random_get(&mut c, buf, len),
        )
        .map_err(wasm_error)?;
    linker
        .func_wrap(
            module,
            "proc_exit",
            |_: Caller<'_, HostState>, code: i32| -> wasmtime::Result<()> {
                // Never returns: the VM is finished (Envoy logs it and the module traps).
                Err(wasmtime::Error::msg(format!(
                    "proc_exit({code}) called by the module"
                )))
            },
        )
        .map_err(wasm_error)?;
    linker
        .func_wrap(
            module,
            "sched_yield",
            |c: Caller<'_, HostState>| -> wasmtime::Result<i32> {
                check_start(&c, "sched_yield")?;
                Ok(ESUCCESS)
            },
        )
        .map_err(wasm_error)?;
    linker
        .func_wrap(
            module,
            "poll_oneoff",
            |c: Caller<'_, HostState>, _: i32, _: i32, _: i32, _: i32| -> wasmtime::Result<i32> {
                check_start(&c, "poll_oneoff")?;
                // A filter must not block its worker: no sleeping.
                Ok(ENOSYS)
            },
        )
        .map_err(wasm_error)?;
    Ok(())
}

/// Registers WASI under both module names Envoy offers.
pub(crate) fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    link_module(linker, "wasi_snapshot_preview1")?;
    link_module(linker, "wasi_unstable")
}

/// WASI functions this host provides (for import checks and docs).
pub const FUNCTIONS: &[&str] = &[
    "fd_write",
    "fd_read",
    "fd_seek",
    "fd_close",
    "fd_fdstat_get",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "path_open",
    "environ_get",
    "environ_sizes_get",
    "args_get",
    "args_sizes_get",
    "clock_time_get",
    "random_get",
    "proc_exit",
    "sched_yield",
    "poll_oneoff",
];
