//! Shared by the integration tests that run the real kubegate.wasm in our host.
#![allow(dead_code)]

use kubegate_host::{Plugin, PluginSpec};
use std::path::PathBuf;

pub const SA_TOKEN: &str = "sa-token-for-tests";

/// The built filter: `make test` builds it and says where (KUBEGATE_WASM); a missing module
/// is a failure, never a skip.
pub fn wasm_path() -> PathBuf {
    let path = std::env::var_os("KUBEGATE_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target/wasm32-wasip1/release/kubegate.wasm")
        });
    assert!(
        path.exists(),
        "{} is missing: run `make build` (or `make test`, which builds it first)",
        path.display()
    );
    path
}

/// The second module, with CEL (`make build` writes it beside kubegate.wasm).
pub fn cel_wasm_path() -> PathBuf {
    let path = std::env::var_os("KUBEGATE_CEL_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("target/wasm32-wasip1/release-cel/kubegate-cel.wasm")
        });
    assert!(
        path.exists(),
        "{} is missing: run `make build` (or `make test`, which builds it first)",
        path.display()
    );
    path
}

/// kubegate-cel.wasm with `config`, as [`load`] does for kubegate.wasm.
pub fn load_cel(config: &serde_json::Value) -> Plugin {
    let spec = PluginSpec {
        wasm_path: cel_wasm_path(),
        ..spec(config, 2)
    };
    Plugin::load(spec).expect("kubegate-cel.wasm loads with the configuration")
}

pub fn example_config(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("filter-config")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
}

/// kubegate.wasm with `config`, the service-account token in the VM environment, `vms` VMs.
pub fn spec(config: &serde_json::Value, vms: usize) -> PluginSpec {
    PluginSpec {
        wasm_path: wasm_path(),
        configuration: config.to_string().into_bytes(),
        env: vec![("KUBEGATE_SA_TOKEN".to_string(), SA_TOKEN.to_string())],
        vms,
        print_logs: false,
        ..PluginSpec::default()
    }
}

pub fn load(config: &serde_json::Value) -> Plugin {
    Plugin::load(spec(config, 2)).expect("kubegate.wasm loads with the configuration")
}

pub mod jwks_server;
