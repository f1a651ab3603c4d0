//! Shared data and shared queues across the plugin's VMs.

use super::logging::refuse_while_starting;
use super::{memory, status_of, Status};
use crate::context::HostState;
use crate::shared_data::SharedDataError;
use crate::worker::WorkerCommand;
use wasmtime::{Caller, Linker};

fn get_data(
    caller: &mut Caller<'_, HostState>,
    key: (i32, i32),
    out: (i32, i32),
    cas_ptr: i32,
) -> Result<(), Status> {
    let key = memory::read_string(caller, key.0, key.1)?;
    let (value, cas) = caller
        .data()
        .plugin
        .shared_data
        .get(&key)
        .ok_or(Status::NotFound)?;
    memory::copy_out(caller, &value, out.0, out.1)?;
    memory::write_u32(caller, cas_ptr, cas)
}

fn set_data(
    caller: &mut Caller<'_, HostState>,
    key: (i32, i32),
    value: (i32, i32),
    cas: i32,
) -> Result<(), Status> {
    let key = memory::read_string(caller, key.0, key.1)?;
    let value = memory::read(caller, value.0, value.1)?;
    caller
        .data()
        .plugin
        .shared_data
        .set(&key, &value, cas as u32)
        .map_err(|SharedDataError::CasMismatch| Status::CasMismatch)
}

fn register_queue(
    caller: &mut Caller<'_, HostState>,
    name: (i32, i32),
    token_ptr: i32,
) -> Result<(), Status> {
    let name = memory::read_string(caller, name.0, name.1)?;
    let state = caller.data();
    let commands = state.commands.clone();
    let generation = state.generation;
    // `on_queue_ready` goes to the registering VM's root context.
    let owner = Box::new(move |token: u32| {
        let _ = commands.send(WorkerCommand::QueueReady { generation, token });
    });
    let token = state
        .plugin
        .queues
        .register(&state.plugin.vm_id, &name, owner);
    memory::write_u32(caller, token_ptr, token)
}

fn resolve_queue(
    caller: &mut Caller<'_, HostState>,
    vm_id: (i32, i32),
    name: (i32, i32),
    token_ptr: i32,
) -> Result<(), Status> {
    let vm_id = memory::read_string(caller, vm_id.0, vm_id.1)?;
    let name = memory::read_string(caller, name.0, name.1)?;
    let plugin = &caller.data().plugin;
    let vm_id = if vm_id.is_empty() {
        plugin.vm_id.clone()
    } else {
        vm_id
    };
    let token = plugin
        .queues
        .resolve(&vm_id, &name)
        .ok_or(Status::NotFound)?;
    memory::write_u32(caller, token_ptr, token)
}

fn dequeue(caller: &mut Caller<'_, HostState>, token: i32, out: (i32, i32)) -> Result<(), Status> {
    let item = caller
        .data()
        .plugin
        .queues
        .dequeue(token as u32)
        .map_err(|()| Status::NotFound)?
        .ok_or(Status::Empty)?;
    memory::copy_out(caller, &item, out.0, out.1)
}

fn enqueue(caller: &mut Caller<'_, HostState>, token: i32, data: (i32, i32)) -> Result<(), Status> {
    let item = memory::read(caller, data.0, data.1)?;
    caller
        .data()
        .plugin
        .queues
        .enqueue(token as u32, item)
        .ok_or(Status::NotFound)
}

pub(super) fn link(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    linker
        .func_wrap(
            "env",
            "proxy_get_shared_data",
            |mut caller: Caller<'_, HostState>,
             kp: i32,
             kl: i32,
             vpp: i32,
             vsp: i32,
             cas_ptr: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_get_shared_data")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_get_shared_data") {
                    return Ok(status);
                }
                Ok(status_of(get_data(
                    &mut caller,
                    (kp, kl),
                    (vpp, vsp),
                    cas_ptr,
                )))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_set_shared_data",
            |mut caller: Caller<'_, HostState>,
             kp: i32,
             kl: i32,
             vp: i32,
             vl: i32,
             cas: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_set_shared_data")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_set_shared_data") {
                    return Ok(status);
                }
                Ok(status_of(set_data(&mut caller, (kp, kl), (vp, vl), cas)))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_register_shared_queue",
            |mut caller: Caller<'_, HostState>,
             np: i32,
             nl: i32,
             token_ptr: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_register_shared_queue")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_register_shared_queue")
                {
                    return Ok(status);
                }
                Ok(status_of(register_queue(&mut caller, (np, nl), token_ptr)))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_resolve_shared_queue",
            |mut caller: Caller<'_, HostState>,
             vp: i32,
             vl: i32,
             np: i32,
             nl: i32,
             token_ptr: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_resolve_shared_queue")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_resolve_shared_queue") {
                    return Ok(status);
                }
                Ok(status_of(resolve_queue(
                    &mut caller,
                    (vp, vl),
                    (np, nl),
                    token_ptr,
                )))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_dequeue_shared_queue",
            |mut caller: Caller<'_, HostState>,
             token: i32,
             dpp: i32,
             dsp: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_dequeue_shared_queue")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_dequeue_shared_queue") {
                    return Ok(status);
                }
                Ok(status_of(dequeue(&mut caller, token, (dpp, dsp))))
            },
        )
        .map_err(super::wasm_error)?;
    linker
        .func_wrap(
            "env",
            "proxy_enqueue_shared_queue",
            |mut caller: Caller<'_, HostState>,
             token: i32,
             dp: i32,
             dl: i32|
             -> wasmtime::Result<i32> {
                refuse_while_starting(&caller, "proxy_enqueue_shared_queue")?;
                if let Some(status) = super::injected_fault(&caller, "proxy_enqueue_shared_queue") {
                    return Ok(status);
                }
                Ok(status_of(enqueue(&mut caller, token, (dp, dl))))
            },
        )
        .map_err(super::wasm_error)?;
    Ok(())
}
