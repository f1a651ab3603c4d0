//! The proxy-wasm hostcalls the filter makes, declared here so that every status the host
//! answers comes back as an `Err` to handle. The SDK's helpers (proxy-wasm 0.2,
//! `hostcalls.rs`) `panic!("unexpected status")` on any status they do not expect, and its
//! logger unwraps `proxy_log`: in a proxy-wasm VM a panic is a trap, which kills the VM and
//! fails every request on it (an outage). Nothing here panics or indexes untrusted data.
//!
//! Two SDK paths remain: `dispatch_http_call` (the SDK's dispatcher must record the callout
//! to route its answer back; it handles the statuses Envoy returns, Ok, BadArgument and
//! InternalFailure) and the dispatcher's own `set_effective_context` when it delivers that
//! answer to the root context.

use std::ptr::{null, null_mut};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A status other than Ok (proxy-wasm-cpp-host `WasmResult`), as the raw number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct HostError(pub u32);

pub(super) const NOT_FOUND: u32 = 1;
pub(super) const CAS_MISMATCH: u32 = 8;
const EMPTY: u32 = 7;

/// Map types (ABI `proxy_*_header_map_*`).
pub(super) const REQUEST_HEADERS: u32 = 0;
pub(super) const HTTP_CALL_RESPONSE_HEADERS: u32 = 6;
/// Buffer types (ABI `proxy_get_buffer_bytes`).
pub(super) const HTTP_CALL_RESPONSE_BODY: u32 = 4;
pub(super) const PLUGIN_CONFIGURATION: u32 = 7;
/// Stream types (ABI 0.2.1 `proxy_continue_stream`/`proxy_close_stream`): the request
/// stream is 0 (1 the response, 2 downstream and 3 upstream connections).
const STREAM_HTTP_REQUEST: u32 = 0;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_close_stream(stream_type: u32) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_register_shared_queue(
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_enqueue_shared_queue(queue_id: u32, value_data: *const u8, value_size: usize) -> u32;
    fn proxy_dequeue_shared_queue(
        queue_id: u32,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
}

fn status(raw: u32) -> Result<(), HostError> {
    if raw == 0 {
        Ok(())
    } else {
        Err(HostError(raw))
    }
}

/// Takes ownership of bytes the host allocated through the module's
/// `proxy_on_memory_allocate` (the SDK's allocator: a `Vec<u8>` of exactly `size`).
///
/// # Safety
/// `data` must be null or what the host returned with status Ok for `size` bytes.
unsafe fn owned(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        Vec::new()
    } else {
        Vec::from_raw_parts(data, size, size)
    }
}

/// Writes one log line; a failing `proxy_log` is ignored (there is nowhere to report it).
pub(super) fn log(level: u32, message: &str) {
    // SAFETY: pointer and length of a live &str.
    let _ = unsafe { proxy_log(level, message.as_ptr(), message.len()) };
}

pub(super) fn current_time() -> Result<SystemTime, HostError> {
    let mut nanos: u64 = 0;
    // SAFETY: a valid out-pointer.
    status(unsafe { proxy_get_current_time_nanoseconds(&mut nanos) })?;
    Ok(UNIX_EPOCH + Duration::from_nanos(nanos))
}

pub(super) fn set_tick_period(period: Duration) -> Result<(), HostError> {
    let millis = u32::try_from(period.as_millis()).unwrap_or(u32::MAX);
    // SAFETY: plain values.
    status(unsafe { proxy_set_tick_period_milliseconds(millis) })
}

/// A buffer's bytes; NotFound and Empty read as none.
pub(super) fn buffer(buffer_type: u32, start: usize, max: usize) -> Result<Vec<u8>, HostError> {
    let (mut data, mut size): (*mut u8, usize) = (null_mut(), 0);
    // SAFETY: valid out-pointers; the bytes are owned on Ok only.
    let raw = unsafe { proxy_get_buffer_bytes(buffer_type, start, max, &mut data, &mut size) };
    match raw {
        0 => Ok(unsafe { owned(data, size) }),
        NOT_FOUND | EMPTY => Ok(Vec::new()),
        other => Err(HostError(other)),
    }
}

/// Every pair of a header map, duplicates and order kept. A malformed answer is an error.
pub(super) fn header_pairs(map_type: u32) -> Result<Vec<(String, Vec<u8>)>, HostError> {
    let (mut data, mut size): (*mut u8, usize) = (null_mut(), 0);
    // SAFETY: valid out-pointers; the bytes are owned on Ok only.
    status(unsafe { proxy_get_header_map_pairs(map_type, &mut data, &mut size) })?;
    let bytes = unsafe { owned(data, size) };
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    // proxy-wasm's encoding; anything that does not parse is the host's error.
    deserialize_pairs(&bytes).ok_or(HostError(u32::MAX))
}

pub(super) fn add_header(map_type: u32, name: &str, value: &str) -> Result<(), HostError> {
    // SAFETY: pointers and lengths of live strings.
    status(unsafe {
        proxy_add_header_map_value(
            map_type,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

pub(super) fn replace_header(map_type: u32, name: &str, value: &str) -> Result<(), HostError> {
    // SAFETY: pointers and lengths of live strings.
    status(unsafe {
        proxy_replace_header_map_value(
            map_type,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

pub(super) fn remove_header(map_type: u32, name: &str) -> Result<(), HostError> {
    // SAFETY: pointer and length of a live string.
    status(unsafe { proxy_remove_header_map_value(map_type, name.as_ptr(), name.len()) })
}

/// A property's value; `Ok(None)` when the proxy has none (NotFound).
pub(super) fn property(path: &[&str]) -> Result<Option<Vec<u8>>, HostError> {
    let path = path.join("\0");
    let (mut data, mut size): (*mut u8, usize) = (null_mut(), 0);
    // SAFETY: valid pointers; the bytes are owned on Ok only.
    let raw = unsafe { proxy_get_property(path.as_ptr(), path.len(), &mut data, &mut size) };
    match raw {
        0 => Ok(Some(unsafe { owned(data, size) })),
        NOT_FOUND => Ok(None),
        other => Err(HostError(other)),
    }
}

/// Sets a property (Envoy keeps it as filter state `wasm.<path>`).
pub(super) fn set_property(path: &[&str], value: &[u8]) -> Result<(), HostError> {
    let path = path.join("\0");
    // SAFETY: pointers and lengths of live slices.
    status(unsafe { proxy_set_property(path.as_ptr(), path.len(), value.as_ptr(), value.len()) })
}

pub(super) fn send_local_response(
    code: u32,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(), HostError> {
    let headers = serialize_pairs(headers);
    // SAFETY: pointers and lengths of live buffers.
    status(unsafe {
        proxy_send_local_response(
            code,
            null(),
            0,
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

pub(super) fn resume_http_request() -> Result<(), HostError> {
    // SAFETY: a plain value.
    status(unsafe { proxy_continue_stream(STREAM_HTTP_REQUEST) })
}

/// Resets the request's stream (the last resort when no answer can be sent).
pub(super) fn reset_http_request() -> Result<(), HostError> {
    // SAFETY: a plain value.
    status(unsafe { proxy_close_stream(STREAM_HTTP_REQUEST) })
}

pub(super) fn set_effective_context(context_id: u32) -> Result<(), HostError> {
    // SAFETY: a plain value.
    status(unsafe { proxy_set_effective_context(context_id) })
}

/// 0 counter, 1 gauge.
pub(super) fn define_metric(metric_type: u32, name: &str) -> Result<u32, HostError> {
    let mut id: u32 = 0;
    // SAFETY: live string, valid out-pointer.
    status(unsafe { proxy_define_metric(metric_type, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub(super) fn increment_metric(id: u32, offset: i64) -> Result<(), HostError> {
    // SAFETY: plain values.
    status(unsafe { proxy_increment_metric(id, offset) })
}

pub(super) fn record_metric(id: u32, value: u64) -> Result<(), HostError> {
    // SAFETY: plain values.
    status(unsafe { proxy_record_metric(id, value) })
}

pub(super) fn register_shared_queue(name: &str) -> Result<u32, HostError> {
    let mut id: u32 = 0;
    // SAFETY: live string, valid out-pointer.
    status(unsafe { proxy_register_shared_queue(name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

pub(super) fn enqueue_shared_queue(queue: u32, value: &[u8]) -> Result<(), HostError> {
    // SAFETY: live buffer.
    status(unsafe { proxy_enqueue_shared_queue(queue, value.as_ptr(), value.len()) })
}

/// The next item, `None` when the queue is empty.
pub(super) fn dequeue_shared_queue(queue: u32) -> Result<Option<Vec<u8>>, HostError> {
    let (mut data, mut size): (*mut u8, usize) = (null_mut(), 0);
    // SAFETY: valid out-pointers; the bytes are owned on Ok only.
    match unsafe { proxy_dequeue_shared_queue(queue, &mut data, &mut size) } {
        0 => Ok(Some(unsafe { owned(data, size) })),
        EMPTY | NOT_FOUND => Ok(None),
        other => Err(HostError(other)),
    }
}

/// The value and its CAS; `None` when the key is not set.
pub(super) fn get_shared_data(key: &str) -> Result<Option<(Vec<u8>, u32)>, HostError> {
    let (mut data, mut size, mut cas): (*mut u8, usize, u32) = (null_mut(), 0, 0);
    // SAFETY: valid pointers; the bytes are owned on Ok only.
    match unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) }
    {
        0 => Ok(Some((unsafe { owned(data, size) }, cas))),
        NOT_FOUND => Ok(None),
        other => Err(HostError(other)),
    }
}

/// `cas` 0 writes unconditionally (the ABI's meaning).
pub(super) fn set_shared_data(key: &str, value: &[u8], cas: u32) -> Result<(), HostError> {
    // SAFETY: live buffers.
    status(unsafe {
        proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    })
}

/// proxy-wasm's map encoding: u32 count, then (u32 name length, u32 value length) per
/// pair, then each name and value followed by a NUL; all little-endian.
fn serialize_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&len32(pairs.len()).to_le_bytes());
    for (name, value) in pairs {
        out.extend_from_slice(&len32(name.len()).to_le_bytes());
        out.extend_from_slice(&len32(value.len()).to_le_bytes());
    }
    for (name, value) in pairs {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out
}

fn len32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// The inverse of [`serialize_pairs`], checked at every step; names are lossy UTF-8.
fn deserialize_pairs(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let word = |at: usize| -> Option<usize> {
        let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(raw)).ok()
    };
    let count = word(0)?;
    // Each pair needs 8 bytes of lengths: a count that does not fit is malformed.
    if count > bytes.len() / 8 {
        return None;
    }
    let mut lengths = Vec::with_capacity(count);
    for i in 0..count {
        let at = 4usize.checked_add(i.checked_mul(8)?)?;
        lengths.push((word(at)?, word(at.checked_add(4)?)?));
    }
    let mut at = 4usize.checked_add(count.checked_mul(8)?)?;
    let mut out = Vec::with_capacity(count);
    for (name_len, value_len) in lengths {
        let name = bytes.get(at..at.checked_add(name_len)?)?;
        at = at.checked_add(name_len)?.checked_add(1)?;
        let value = bytes.get(at..at.checked_add(value_len)?)?;
        at = at.checked_add(value_len)?.checked_add(1)?;
        out.push((String::from_utf8_lossy(name).into_owned(), value.to_vec()));
    }
    Some(out)
}

/// The `log` facade's backend: every line goes to `proxy_log`, whose failure is ignored.
struct Logger;

static LOGGER: Logger = Logger;

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // proxy-wasm levels: trace 0, debug 1, info 2, warn 3, error 4.
        let level = match record.level() {
            log::Level::Trace => 0,
            log::Level::Debug => 1,
            log::Level::Info => 2,
            log::Level::Warn => 3,
            log::Level::Error => 4,
        };
        log(level, &record.args().to_string());
    }

    fn flush(&self) {}
}

/// Installs the logger at info and a panic hook that logs without unwrapping (the SDK's
/// `set_log_level` installs ones that unwrap `proxy_log`).
pub(super) fn init_logging() {
    if log::set_logger(&LOGGER).is_ok() {
        std::panic::set_hook(Box::new(|info| log(5, &info.to_string())));
    }
    log::set_max_level(log::LevelFilter::Info);
}
