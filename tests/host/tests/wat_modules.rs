//! Hand-written WAT modules for what an SDK filter never does: bad pointers and
//! lengths, bad enum values, a lying allocator, restricted calls at start-up,
//! missing imports, deep recursion. The host answers statuses (or fails the
//! stream closed) and keeps serving; it never panics.

mod common;

use common::action;
use kubegate_host::{FilterOutcome, Plugin, PluginSpec};

fn spec(wat: &str) -> PluginSpec {
    PluginSpec {
        wasm_bytes: Some(wat.as_bytes().to_vec()),
        print_logs: false,
        ..PluginSpec::default()
    }
}

const IMPORTS: &str = r#"
  (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $prop (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $buf (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_header_map_pairs" (func $setpairs (param i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $reply (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_http_call" (func $call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $effective (param i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
  (import "env" "proxy_increment_metric" (func $inc (param i32 i64) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env_sizes (param i32 i32) (result i32)))
"#;

/// Each call's status is stored as one byte; the bytes come back as a local reply body.
fn probe_module(allocator_result: &str) -> String {
    format!(
        r#"(module {IMPORTS}
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 8192))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $p i32)
    global.get $heap
    local.set $p
    global.get $heap
    local.get $size
    i32.add
    global.set $heap
    {allocator_result})
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param i32 i32) (result i32)
    ;; 0: key beyond memory -> InvalidMemoryAccess (6)
    (i32.store8 (i32.const 1024) (call $get (i32.const 0) (i32.const 70000) (i32.const 4) (i32.const 2000) (i32.const 2004)))
    ;; 1: existing key, result pointer beyond memory -> 6
    (i32.store8 (i32.const 1025) (call $get (i32.const 0) (i32.const 100) (i32.const 5) (i32.const 65534) (i32.const 2004)))
    ;; 2: map type 9 -> BadArgument (2)
    (i32.store8 (i32.const 1026) (call $get (i32.const 9) (i32.const 100) (i32.const 5) (i32.const 2000) (i32.const 2004)))
    ;; 3: log level 9 -> 2
    (i32.store8 (i32.const 1027) (call $log (i32.const 9) (i32.const 100) (i32.const 5)))
    ;; 4: message at 0xffffffff -> 6
    (i32.store8 (i32.const 1028) (call $log (i32.const 2) (i32.const -1) (i32.const 5)))
    ;; 5: unknown property -> NotFound (1)
    (i32.store8 (i32.const 1029) (call $prop (i32.const 200) (i32.const 7) (i32.const 2000) (i32.const 2004)))
    ;; 6: buffer type 42 -> 2
    (i32.store8 (i32.const 1030) (call $buf (i32.const 42) (i32.const 0) (i32.const 10) (i32.const 2000) (i32.const 2004)))
    ;; 7: pairs claiming 5 entries in 8 bytes -> 2
    (i32.store8 (i32.const 1031) (call $setpairs (i32.const 0) (i32.const 300) (i32.const 8)))
    ;; 8: http call to an unknown cluster -> 2
    (i32.store8 (i32.const 1032) (call $call (i32.const 400) (i32.const 4) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 1000) (i32.const 2008)))
    ;; 9: missing header -> 1
    (i32.store8 (i32.const 1033) (call $get (i32.const 0) (i32.const 200) (i32.const 7) (i32.const 2000) (i32.const 2004)))
    ;; 10: http-call response headers outside on_http_call_response -> 2
    (i32.store8 (i32.const 1034) (call $get (i32.const 6) (i32.const 100) (i32.const 5) (i32.const 2000) (i32.const 2004)))
    ;; 11: effective context that does not exist -> 2
    (i32.store8 (i32.const 1035) (call $effective (i32.const 999)))
    ;; 12: stream type 7 -> 2
    (i32.store8 (i32.const 1036) (call $continue (i32.const 7)))
    ;; 13: metric never defined -> 1
    (i32.store8 (i32.const 1037) (call $inc (i32.const 4) (i64.const 1)))
    ;; 14: WASI fd_write to fd 9 -> EBADF (8)
    (i32.store8 (i32.const 1038) (call $fd_write (i32.const 9) (i32.const 0) (i32.const 0) (i32.const 2000)))
    ;; 15: WASI environ_sizes_get with a pointer beyond memory -> EFAULT (21)
    (i32.store8 (i32.const 1039) (call $env_sizes (i32.const 65535) (i32.const 2000)))
    ;; 16: existing key, good pointers -> Ok unless the allocator lies
    (i32.store8 (i32.const 1040) (call $get (i32.const 0) (i32.const 100) (i32.const 5) (i32.const 2000) (i32.const 2004)))
    (drop (call $reply (i32.const 200) (i32.const 0) (i32.const 0) (i32.const 1024) (i32.const 17)
                       (i32.const 0) (i32.const 0) (i32.const -1)))
    (i32.const 1))
  (data (i32.const 100) ":path")
  (data (i32.const 200) "no.such")
  (data (i32.const 300) "\05\00\00\00\ff\00\00\00")
  (data (i32.const 400) "nope"))"#
    )
}

fn reply_body(outcome: FilterOutcome) -> Vec<u8> {
    match outcome {
        FilterOutcome::LocalReply {
            status: 200, body, ..
        } => body,
        other => panic!("expected the probe's reply, got {other:?}"),
    }
}

#[tokio::test]
async fn bad_guest_input_gets_statuses_not_panics() {
    let plugin = Plugin::load(spec(&probe_module("local.get $p"))).unwrap();
    let statuses = reply_body(plugin.handle(action("probe")).await);
    assert_eq!(
        statuses,
        vec![6, 6, 2, 2, 6, 1, 2, 2, 2, 1, 2, 2, 2, 1, 8, 21, 0]
    );
}

#[tokio::test]
async fn an_allocator_returning_memory_outside_the_module_is_refused() {
    let plugin = Plugin::load(spec(&probe_module("i32.const -65536"))).unwrap();
    let statuses = reply_body(plugin.handle(action("probe")).await);
    assert_eq!(
        statuses[16], 6,
        "copying out through a bad allocation is InvalidMemoryAccess"
    );
}

const MINIMAL_EXPORTS: &str = r#"
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 4096))
  (func (export "proxy_on_context_create") (param i32 i32))
"#;

#[tokio::test]
async fn only_envoys_start_up_calls_are_allowed_in_initialize() {
    let allowed = format!(
        r#"(module (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32))) {MINIMAL_EXPORTS}
          (func (export "_initialize") (drop (call $log (i32.const 2) (i32.const 100) (i32.const 8))))
          (data (i32.const 100) "starting"))"#
    );
    let plugin = Plugin::load(spec(&allowed)).unwrap();
    assert!(plugin.logs().iter().any(|l| l.message == "starting"));

    let refused = format!(
        r#"(module (import "env" "proxy_get_property" (func $prop (param i32 i32 i32 i32) (result i32))) {MINIMAL_EXPORTS}
          (func (export "_initialize") (drop (call $prop (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)))))"#
    );
    let error = Plugin::load(spec(&refused)).unwrap_err();
    assert!(
        format!("{error:#}").contains("not allowed while the VM is starting"),
        "{error:#}"
    );
}

#[tokio::test]
async fn a_module_importing_what_the_host_lacks_does_not_load() {
    let wat = format!(
        r#"(module (import "env" "proxy_no_such_call" (func (param i32))) {MINIMAL_EXPORTS})"#
    );
    let error = Plugin::load(spec(&wat)).unwrap_err();
    assert!(
        format!("{error:#}").contains("proxy_no_such_call"),
        "{error:#}"
    );
}

#[tokio::test]
async fn stack_exhaustion_fails_the_stream_and_the_host_goes_on() {
    let wat = format!(
        r#"(module {MINIMAL_EXPORTS}
          (global $calls (mut i32) (i32.const 0))
          (func $deep (param i32) (result i32) (call $deep (i32.add (local.get 0) (i32.const 1))))
          (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
            (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
            (if (i32.eq (global.get $calls) (i32.const 1)) (then (drop (call $deep (i32.const 0)))))
            (i32.const 0)))"#
    );
    let plugin = Plugin::load(spec(&wat)).unwrap();
    let first = plugin.handle(action("")).await;
    assert!(
        matches!(&first, FilterOutcome::Failed { status: 500, reason } if reason.contains("trapped")),
        "{first:?}"
    );
    // Each replacement VM starts from scratch, so every request overflows again; the host survives each.
    let second = plugin.handle(action("")).await;
    assert!(
        matches!(second, FilterOutcome::Failed { status: 500, .. }),
        "{second:?}"
    );
    let third = plugin.handle(action("")).await;
    assert!(
        matches!(third, FilterOutcome::Failed { status: 500, .. }),
        "{third:?}"
    );
}

#[tokio::test]
async fn a_module_without_callbacks_passes_requests_as_envoy_does() {
    let wat = format!("(module {MINIMAL_EXPORTS})");
    let plugin = Plugin::load(spec(&wat)).unwrap();
    let outcome = plugin.handle(action("").header("x-kept", "1")).await;
    assert_eq!(outcome.forwarded_header("x-kept"), Some("1"));
}

#[tokio::test]
async fn a_runaway_call_is_interrupted_and_the_vm_replaced() {
    let wat = format!(
        r#"(module {MINIMAL_EXPORTS}
          (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
            (loop $forever (br $forever))
            (i32.const 0)))"#
    );
    let mut spec = spec(&wat);
    spec.call_timeout = std::time::Duration::from_millis(200);
    let plugin = Plugin::load(spec).unwrap();
    let outcome = plugin.handle(action("")).await;
    assert!(
        matches!(&outcome, FilterOutcome::Failed { status: 500, reason } if reason.contains("trapped")),
        "{outcome:?}"
    );
}
