//! What a `.wasm` imports and exports, for checks such as "imports only
//! `env.proxy_*` and `wasi_snapshot_preview1.*`".

use anyhow::Context;
use wasmtime::{Config, Engine, Module};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleInfo {
    /// (module, name) of every import.
    pub imports: Vec<(String, String)>,
    pub exports: Vec<String>,
}

impl ModuleInfo {
    /// Imports outside `env.proxy_*` and `wasi_snapshot_preview1.*` (what
    /// Envoy offers a filter); empty for a module any proxy can load.
    pub fn foreign_imports(&self) -> Vec<(String, String)> {
        self.imports
            .iter()
            .filter(|(module, name)| {
                !(module == "env" && name.starts_with("proxy_"))
                    && module != "wasi_snapshot_preview1"
            })
            .cloned()
            .collect()
    }

    /// Whether the module declares a proxy-wasm ABI version this host runs.
    pub fn has_proxy_wasm_abi(&self) -> bool {
        crate::vm::ABI_VERSIONS
            .iter()
            .any(|v| self.exports.iter().any(|e| e == v))
    }
}

/// Compiles (validates) the module and lists its imports and exports.
pub fn inspect_module(bytes: &[u8]) -> anyhow::Result<ModuleInfo> {
    let engine = Engine::new(&Config::new()).map_err(crate::abi::wasm_error)?;
    let module = Module::new(&engine, bytes)
        .map_err(crate::abi::wasm_error)
        .context("compiling the module")?;
    Ok(ModuleInfo {
        imports: module
            .imports()
            .map(|i| (i.module().to_string(), i.name().to_string()))
            .collect(),
        exports: module.exports().map(|e| e.name().to_string()).collect(),
    })
}
