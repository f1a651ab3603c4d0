//! Bounds-checked access to the guest's linear memory, and allocation through
//! the module's `proxy_on_memory_allocate` (or `malloc`) export, as Envoy does
//! for every value it hands to the guest.

use super::Status;
use crate::context::HostState;
use wasmtime::Caller;

fn range(ptr: i32, len: i32) -> Result<std::ops::Range<usize>, Status> {
    let start = ptr as u32 as usize;
    let end = start
        .checked_add(len as u32 as usize)
        .ok_or(Status::InvalidMemoryAccess)?;
    Ok(start..end)
}

/// Copies `len` bytes at `ptr` out of guest memory.
pub(crate) fn read(
    caller: &mut Caller<'_, HostState>,
    ptr: i32,
    len: i32,
) -> Result<Vec<u8>, Status> {
    let memory = caller.data().memory.ok_or(Status::InvalidMemoryAccess)?;
    let range = range(ptr, len)?;
    memory
        .data(&*caller)
        .get(range)
        .map(<[u8]>::to_vec)
        .ok_or(Status::InvalidMemoryAccess)
}

/// Reads guest bytes as text; invalid UTF-8 is replaced (names and keys only).
pub(crate) fn read_string(
    caller: &mut Caller<'_, HostState>,
    ptr: i32,
    len: i32,
) -> Result<String, Status> {
    read(caller, ptr, len).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// Writes `bytes` at `ptr`.
pub(crate) fn write(
    caller: &mut Caller<'_, HostState>,
    ptr: i32,
    bytes: &[u8],
) -> Result<(), Status> {
    let memory = caller.data().memory.ok_or(Status::InvalidMemoryAccess)?;
    let range = range(ptr, bytes.len() as i32)?;
    memory
        .data_mut(&mut *caller)
        .get_mut(range)
        .ok_or(Status::InvalidMemoryAccess)?
        .copy_from_slice(bytes);
    Ok(())
}

pub(crate) fn write_u32(
    caller: &mut Caller<'_, HostState>,
    ptr: i32,
    value: u32,
) -> Result<(), Status> {
    write(caller, ptr, &value.to_le_bytes())
}

pub(crate) fn write_u64(
    caller: &mut Caller<'_, HostState>,
    ptr: i32,
    value: u64,
) -> Result<(), Status> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Allocates `len` bytes in the guest and checks that the block lies in memory.
fn allocate(caller: &mut Caller<'_, HostState>, len: usize) -> Result<i32, Status> {
    let allocate = caller
        .data()
        .allocate
        .clone()
        .ok_or(Status::InvalidMemoryAccess)?;
    let len32 = i32::try_from(len).map_err(|_| Status::InvalidMemoryAccess)?;
    let ptr = allocate
        .call(&mut *caller, len32)
        .map_err(|_| Status::InvalidMemoryAccess)?;
    if ptr == 0 {
        return Err(Status::InvalidMemoryAccess);
    }
    let memory = caller.data().memory.ok_or(Status::InvalidMemoryAccess)?;
    let end = (ptr as u32 as usize)
        .checked_add(len)
        .ok_or(Status::InvalidMemoryAccess)?;
    if end > memory.data_size(&*caller) {
        return Err(Status::InvalidMemoryAccess);
    }
    Ok(ptr)
}

/// Hands `bytes` to the guest the way `copyToPointerSize` does: allocate, copy,
/// then store the address and size at `ptr_ptr` / `size_ptr`. An empty value is
/// address 0, size 0 (no allocation), which the SDK reads as "no data".
pub(crate) fn copy_out(
    caller: &mut Caller<'_, HostState>,
    bytes: &[u8],
    ptr_ptr: i32,
    size_ptr: i32,
) -> Result<(), Status> {
    let address = if bytes.is_empty() {
        0
    } else {
        let address = allocate(caller, bytes.len())?;
        write(caller, address, bytes)?;
        address
    };
    write_u32(caller, ptr_ptr, address as u32)?;
    write_u32(caller, size_ptr, bytes.len() as u32)
}
