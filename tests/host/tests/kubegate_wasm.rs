//! The real filter (the root crate's kubegate.wasm) in this host. Until the
//! filter exports the proxy-wasm ABI, the checks are skipped with a note.

mod common;

use kubegate_host::{inspect_module, FilterOutcome, FilterRequest, Plugin, PluginSpec};
use std::path::PathBuf;

fn kubegate_wasm() -> Option<(PathBuf, Vec<u8>)> {
    built_module("KUBEGATE_WASM", "release/kubegate.wasm")
}

/// The module with the CEL interpreter (`make build` writes both).
fn kubegate_cel_wasm() -> Option<(PathBuf, Vec<u8>)> {
    built_module("KUBEGATE_CEL_WASM", "release-cel/kubegate-cel.wasm")
}

/// The module `variable` names (make says where it built it: then a missing file is a
/// failure), else the default build's, skipped when absent.
fn built_module(variable: &str, default: &str) -> Option<(PathBuf, Vec<u8>)> {
    let (path, required) = match std::env::var_os(variable) {
        Some(path) => (PathBuf::from(path), true),
        None => (
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/wasm32-wasip1")
                .join(default),
            false,
        ),
    };
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if required => panic!("{variable}={}: {e}", path.display()),
        Err(_) => return None,
    };
    let info = inspect_module(&bytes).ok()?;
    if !info.has_proxy_wasm_abi() {
        eprintln!("skipped: {} is not a proxy-wasm filter yet", path.display());
        return None;
    }
    Some((path, bytes))
}

#[test]
fn the_test_filter_imports_only_what_envoy_offers() {
    let bytes = std::fs::read(common::test_filter_wasm()).unwrap();
    let info = inspect_module(&bytes).unwrap();
    assert!(info.has_proxy_wasm_abi());
    assert_eq!(info.foreign_imports(), vec![]);
}

#[test]
fn kubegate_imports_only_proxy_and_wasi() {
    let Some((_, bytes)) = kubegate_wasm() else {
        return;
    };
    let info = inspect_module(&bytes).unwrap();
    assert_eq!(
        info.foreign_imports(),
        vec![],
        "a module Envoy could not load"
    );
}

#[test]
fn kubegate_cel_imports_only_proxy_and_wasi() {
    let Some((_, bytes)) = kubegate_cel_wasm() else {
        return;
    };
    let info = inspect_module(&bytes).unwrap();
    assert_eq!(
        info.foreign_imports(),
        vec![],
        "a module Envoy could not load"
    );
}

#[tokio::test]
async fn kubegate_loads_with_the_dev_configuration_and_fails_closed_without_a_token() {
    let Some((path, _)) = kubegate_wasm() else {
        return;
    };
    let config = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../filter-config/dev.json"),
    )
    .unwrap();
    let spec = PluginSpec {
        wasm_path: path,
        configuration: config,
        env: vec![(
            "KUBEGATE_SA_TOKEN".to_string(),
            "sa-token-for-tests".to_string(),
        )],
        vms: 2,
        print_logs: false,
        ..PluginSpec::default()
    };
    let plugin =
        Plugin::load(spec).expect("kubegate.wasm loads and accepts filter-config/dev.json");
    let outcome = plugin
        .handle(FilterRequest::new(
            "GET",
            "/api/v1/namespaces/default/pods",
            "localhost",
        ))
        .await;
    assert!(
        !matches!(outcome, FilterOutcome::Forward { .. }),
        "a request without a token passed: {outcome:?}"
    );
}
