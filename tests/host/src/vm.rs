//! One VM instance: a wasmtime `Store` with the instantiated module, started
//! and configured as Envoy does it, and typed access to the module's
//! `proxy_on_*` exports. A trap comes back as [`Trap`]; the caller decides
//! what fails (the host itself never panics on filter behaviour).

use crate::abi::wasm_error;
use crate::context::{AfterCall, HostState};
use crate::spec::LogLevel;
use anyhow::{anyhow, bail, Context};
use wasmtime::{Instance, Store, TypedFunc, WasmParams, WasmResults};

/// A trap (or a refused call) inside the filter, with wasmtime's message.
#[derive(Debug, Clone)]
pub(crate) struct Trap(pub String);

impl std::fmt::Display for Trap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

type F1 = TypedFunc<i32, ()>;
type F2 = TypedFunc<(i32, i32), ()>;
type F2R = TypedFunc<(i32, i32), i32>;
type F3R = TypedFunc<(i32, i32, i32), i32>;
type F1R = TypedFunc<i32, i32>;
type F5 = TypedFunc<(i32, i32, i32, i32, i32), ()>;

/// The callbacks the module exports; a missing one behaves as Envoy's default.
struct Exports {
    on_context_create: Option<F2>,
    on_vm_start: Option<F2R>,
    on_configure: Option<F2R>,
    on_tick: Option<F1>,
    on_queue_ready: Option<F2>,
    on_request_headers: Option<F3R>,
    on_request_body: Option<F3R>,
    on_request_trailers: Option<F2R>,
    on_response_headers: Option<F3R>,
    on_response_body: Option<F3R>,
    on_response_trailers: Option<F2R>,
    on_log: Option<F1>,
    on_done: Option<F1R>,
    on_delete: Option<F1>,
    on_http_call_response: Option<F5>,
}

pub(crate) struct Vm {
    pub store: Store<HostState>,
    exports: Exports,
}

fn typed<P: WasmParams, R: WasmResults>(
    store: &mut Store<HostState>,
    instance: &Instance,
    name: &str,
) -> anyhow::Result<Option<TypedFunc<P, R>>> {
    match instance.get_func(&mut *store, name) {
        None => Ok(None),
        Some(func) => func
            .typed::<P, R>(&*store)
            .map(Some)
            .map_err(|e| anyhow!("export {name} has an unexpected signature: {e}")),
    }
}

/// Adds the fuel burnt since `before` (a reading of the store's fuel, or `None`
/// when metering is off) to the plugin's total.
fn count_fuel(store: &Store<HostState>, before: Option<u64>) {
    if let (Some(before), Ok(after)) = (before, store.get_fuel()) {
        store.data().plugin.fuel_consumed.fetch_add(
            before.saturating_sub(after),
            std::sync::atomic::Ordering::Relaxed,
        );
    }
}

/// The ABI versions whose exports this host understands.
pub(crate) const ABI_VERSIONS: &[&str] = &["proxy_abi_version_0_2_1", "proxy_abi_version_0_2_0"];

impl Vm {
    /// Instantiates the module and runs `_initialize` (+ `main`) or `_start`
    /// with only the start-up calls Envoy allows.
    pub(crate) fn instantiate(state: HostState) -> anyhow::Result<Vm> {
        let plugin = state.plugin.clone();
        let mut store = Store::new(&plugin.engine, state);
        store.set_epoch_deadline(plugin.call_deadline_ticks);
        if plugin.consume_fuel {
            // Metering counts, it does not limit: the epoch watchdog bounds runaway calls.
            store.set_fuel(u64::MAX).map_err(wasm_error)?;
        }
        let instance = plugin
            .instance_pre
            .instantiate(&mut store)
            .map_err(wasm_error)
            .context("instantiating the module")?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| anyhow!("the module exports no memory"))?;
        let allocate = match typed::<i32, i32>(&mut store, &instance, "malloc")? {
            Some(f) => Some(f),
            None => typed::<i32, i32>(&mut store, &instance, "proxy_on_memory_allocate")?,
        };
        let Some(allocate) = allocate else {
            bail!("Wasm module is missing malloc function (proxy_on_memory_allocate)");
        };
        store.data_mut().memory = Some(memory);
        store.data_mut().allocate = Some(allocate);

        let exports = Exports {
            on_context_create: typed(&mut store, &instance, "proxy_on_context_create")?,
            on_vm_start: typed(&mut store, &instance, "proxy_on_vm_start")?,
            on_configure: typed(&mut store, &instance, "proxy_on_configure")?,
            on_tick: typed(&mut store, &instance, "proxy_on_tick")?,
            on_queue_ready: typed(&mut store, &instance, "proxy_on_queue_ready")?,
            on_request_headers: typed(&mut store, &instance, "proxy_on_request_headers")?,
            on_request_body: typed(&mut store, &instance, "proxy_on_request_body")?,
            on_request_trailers: typed(&mut store, &instance, "proxy_on_request_trailers")?,
            on_response_headers: typed(&mut store, &instance, "proxy_on_response_headers")?,
            on_response_body: typed(&mut store, &instance, "proxy_on_response_body")?,
            on_response_trailers: typed(&mut store, &instance, "proxy_on_response_trailers")?,
            on_log: typed(&mut store, &instance, "proxy_on_log")?,
            on_done: typed(&mut store, &instance, "proxy_on_done")?,
            on_delete: typed(&mut store, &instance, "proxy_on_delete")?,
            on_http_call_response: typed(&mut store, &instance, "proxy_on_http_call_response")?,
        };

        // WASI reactor: _initialize, then main(0, 0) if present; else command: _start.
        store.data_mut().starting = true;
        let fuel_before = store.get_fuel().ok();
        let started = (|| -> anyhow::Result<()> {
            if let Some(init) = typed::<(), ()>(&mut store, &instance, "_initialize")? {
                init.call(&mut store, ())
                    .map_err(wasm_error)
                    .context("_initialize")?;
                if let Some(main) = typed::<(i32, i32), i32>(&mut store, &instance, "main")? {
                    main.call(&mut store, (0, 0))
                        .map_err(wasm_error)
                        .context("main")?;
                }
            } else if let Some(start) = typed::<(), ()>(&mut store, &instance, "_start")? {
                start
                    .call(&mut store, ())
                    .map_err(wasm_error)
                    .context("_start")?;
            }
            Ok(())
        })();
        store.data_mut().starting = false;
        count_fuel(&store, fuel_before);
        started?;
        Ok(Vm { store, exports })
    }

    /// The size of the module's linear memory in bytes (it only ever grows).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.store
            .data()
            .memory
            .map_or(0, |memory| memory.data_size(&self.store))
    }

    fn call<P: WasmParams, R: WasmResults>(
        &mut self,
        context: u32,
        func: &TypedFunc<P, R>,
        params: P,
    ) -> Result<R, Trap> {
        let state = self.store.data_mut();
        state.current_context = context;
        // Every call from the host starts without an effective context
        // (proxy-wasm-cpp-host `SaveRestoreContext`).
        state.effective_context = None;
        let ticks = state.plugin.call_deadline_ticks;
        self.store.set_epoch_deadline(ticks);
        // Err when metering is off: then nothing is counted.
        let fuel_before = self.store.get_fuel().ok();
        let result = func
            .call(&mut self.store, params)
            .map_err(|e| Trap(format!("{e:?}")));
        count_fuel(&self.store, fuel_before);
        result
    }

    /// Actions the filter asked for during the last call.
    pub(crate) fn take_after_call(&mut self) -> Vec<AfterCall> {
        std::mem::take(&mut self.store.data_mut().after_call)
    }

    /// `on_context_create` + `on_vm_start` + `on_configure` for the root
    /// context; a false from either refuses the plugin.
    pub(crate) fn start_root(&mut self, root_context_id: u32) -> anyhow::Result<()> {
        self.store.data_mut().root_context_id = root_context_id;
        let root = root_context_id as i32;
        if let Some(f) = self.exports.on_context_create.clone() {
            self.call(root_context_id, &f, (root, 0))
                .map_err(|t| anyhow!("proxy_on_context_create trapped: {t}"))?;
        }
        if let Some(f) = self.exports.on_vm_start.clone() {
            let size = self.store.data().plugin.vm_configuration.len() as i32;
            let ok = self
                .call(root_context_id, &f, (root, size))
                .map_err(|t| anyhow!("proxy_on_vm_start trapped: {t}"))?;
            if ok == 0 {
                bail!("proxy_on_vm_start returned false: the VM configuration was refused");
            }
        }
        if let Some(f) = self.exports.on_configure.clone() {
            let size = self.store.data().configuration.len() as i32;
            self.store.data_mut().configuring = true;
            let result = self.call(root_context_id, &f, (root, size));
            self.store.data_mut().configuring = false;
            let ok = result.map_err(|t| anyhow!("proxy_on_configure trapped: {t}"))?;
            if ok == 0 {
                // Envoy prints the filter's own log lines; carry its last error here so
                // the refusal says why (the filter names the field).
                let vm = self.store.data().vm_index;
                let reason = self
                    .store
                    .data()
                    .plugin
                    .logs
                    .snapshot()
                    .into_iter()
                    .rev()
                    .find(|line| line.vm == vm && line.level >= LogLevel::Error)
                    .map(|line| format!(" ({})", line.message))
                    .unwrap_or_default();
                bail!("proxy_on_configure returned false: the plugin configuration was refused{reason}");
            }
        }
        Ok(())
    }

    pub(crate) fn context_create(&mut self, context: u32, parent: u32) -> Result<(), Trap> {
        match self.exports.on_context_create.clone() {
            Some(f) => self.call(context, &f, (context as i32, parent as i32)),
            None => Ok(()),
        }
    }

    /// A stream callback returning an action (0 = Continue); missing = Continue.
    fn stream_call3(
        &mut self,
        f: Option<F3R>,
        context: u32,
        size: usize,
        end_of_stream: bool,
    ) -> Result<i32, Trap> {
        match f {
            Some(f) => self.call(
                context,
                &f,
                (context as i32, size as i32, i32::from(end_of_stream)),
            ),
            None => Ok(0),
        }
    }

    pub(crate) fn on_request_headers(
        &mut self,
        context: u32,
        count: usize,
        end_of_stream: bool,
    ) -> Result<i32, Trap> {
        self.stream_call3(
            self.exports.on_request_headers.clone(),
            context,
            count,
            end_of_stream,
        )
    }

    pub(crate) fn on_request_body(
        &mut self,
        context: u32,
        size: usize,
        end_of_stream: bool,
    ) -> Result<i32, Trap> {
        self.stream_call3(
            self.exports.on_request_body.clone(),
            context,
            size,
            end_of_stream,
        )
    }

    pub(crate) fn on_response_headers(
        &mut self,
        context: u32,
        count: usize,
        end_of_stream: bool,
    ) -> Result<i32, Trap> {
        self.stream_call3(
            self.exports.on_response_headers.clone(),
            context,
            count,
            end_of_stream,
        )
    }

    pub(crate) fn on_response_body(
        &mut self,
        context: u32,
        size: usize,
        end_of_stream: bool,
    ) -> Result<i32, Trap> {
        self.stream_call3(
            self.exports.on_response_body.clone(),
            context,
            size,
            end_of_stream,
        )
    }

    pub(crate) fn on_request_trailers(&mut self, context: u32, count: usize) -> Result<i32, Trap> {
        match self.exports.on_request_trailers.clone() {
            Some(f) => self.call(context, &f, (context as i32, count as i32)),
            None => Ok(0),
        }
    }

    pub(crate) fn on_response_trailers(&mut self, context: u32, count: usize) -> Result<i32, Trap> {
        match self.exports.on_response_trailers.clone() {
            Some(f) => self.call(context, &f, (context as i32, count as i32)),
            None => Ok(0),
        }
    }

    pub(crate) fn on_log(&mut self, context: u32) -> Result<(), Trap> {
        match self.exports.on_log.clone() {
            Some(f) => self.call(context, &f, context as i32),
            None => Ok(()),
        }
    }

    /// Returns whether the context is done (missing export: true).
    pub(crate) fn on_done(&mut self, context: u32) -> Result<bool, Trap> {
        match self.exports.on_done.clone() {
            Some(f) => self.call(context, &f, context as i32).map(|r| r != 0),
            None => Ok(true),
        }
    }

    pub(crate) fn on_delete(&mut self, context: u32) -> Result<(), Trap> {
        match self.exports.on_delete.clone() {
            Some(f) => self.call(context, &f, context as i32),
            None => Ok(()),
        }
    }

    pub(crate) fn on_tick(&mut self, root: u32) -> Result<(), Trap> {
        match self.exports.on_tick.clone() {
            Some(f) => self.call(root, &f, root as i32),
            None => Ok(()),
        }
    }

    pub(crate) fn on_queue_ready(&mut self, root: u32, token: u32) -> Result<(), Trap> {
        match self.exports.on_queue_ready.clone() {
            Some(f) => self.call(root, &f, (root as i32, token as i32)),
            None => Ok(()),
        }
    }

    pub(crate) fn on_http_call_response(
        &mut self,
        root: u32,
        token: u32,
        headers: usize,
        body: usize,
        trailers: usize,
    ) -> Result<(), Trap> {
        match self.exports.on_http_call_response.clone() {
            Some(f) => self.call(
                root,
                &f,
                (
                    root as i32,
                    token as i32,
                    headers as i32,
                    body as i32,
                    trailers as i32,
                ),
            ),
            None => Ok(()),
        }
    }
}
