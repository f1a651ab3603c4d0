//! A loaded plugin: several VM workers sharing one compiled module, requests
//! spread over them, reconfiguration that swaps in fresh VMs only when every
//! one of them accepts the new configuration.

use crate::abi;
use crate::context::HostState;
use crate::exchange::{
    BodyVerdict, Failure, FilterOutcome, FilterRequest, FilterResponse, HeadersVerdict, StreamInfo,
    TrailersVerdict,
};
use crate::headers::HeaderMap;
use crate::logs::{LogLine, LogSink};
use crate::metrics::{MetricRegistry, MetricValue};
use crate::plugin_state::{PluginState, EPOCH_TICK};
use crate::shared_data::{SharedData, SharedQueues};
use crate::spec::PluginSpec;
use crate::vm::ABI_VERSIONS;
use crate::worker::{WorkerCommand, WorkerHandle};
use anyhow::{anyhow, bail, Context};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::sync::oneshot;
use wasmtime::{Config, Engine, Linker, Module};

/// The variable naming a directory where compiled modules are kept between loads and
/// processes (wasmtime's code cache). The test suites load the same module some hundreds of
/// times across a couple of dozen test binaries, so `make test` sets it and each build of a
/// module is compiled once; unset (the host binary, `make bench`), every load compiles.
pub const COMPILE_CACHE_ENV: &str = "KUBEGATE_HOST_COMPILE_CACHE";

fn compile_cache() -> anyhow::Result<Option<wasmtime::Cache>> {
    let Some(directory) = std::env::var_os(COMPILE_CACHE_ENV).filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    let mut cache_config = wasmtime::CacheConfig::new();
    cache_config.with_directory(directory);
    let cache = wasmtime::Cache::new(cache_config)
        .map_err(abi::wasm_error)
        .context("opening the compiled-module cache")?;
    Ok(Some(cache))
}

/// The VMs serving one configuration.
struct WorkerSet {
    workers: Vec<Arc<WorkerHandle>>,
    next: AtomicUsize,
}

pub struct Plugin {
    state: Arc<PluginState>,
    workers: RwLock<Arc<WorkerSet>>,
    vms: usize,
    _runtime: IoRuntime,
    _watchdog: Watchdog,
}

/// Advances the engine's epoch every [`EPOCH_TICK`] so that a call running
/// past its deadline traps; stops when the plugin is dropped.
struct Watchdog(Arc<std::sync::atomic::AtomicBool>);

impl Watchdog {
    fn start(engine: Engine) -> anyhow::Result<Watchdog> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("kubegate-host-epoch".to_string())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .context("starting the watchdog thread")?;
        Ok(Watchdog(stop))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The runtime for http calls; shut down without blocking, so a plugin may be
/// dropped inside async code.
struct IoRuntime(Option<tokio::runtime::Runtime>);

impl Drop for IoRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.state.name)
            .field("vms", &self.vms)
            .finish()
    }
}

/// Starts `count` workers in parallel; all must configure successfully.
fn start_workers(
    state: &Arc<PluginState>,
    configuration: Arc<Vec<u8>>,
    count: usize,
) -> anyhow::Result<WorkerSet> {
    let waiting: Vec<_> = (0..count)
        .map(|index| WorkerHandle::start(state.clone(), configuration.clone(), index))
        .collect();
    let mut workers = Vec::with_capacity(count);
    let mut errors = Vec::new();
    for (index, ready) in waiting.into_iter().enumerate() {
        match ready.recv() {
            Ok(Ok(worker)) => workers.push(worker),
            Ok(Err(error)) => errors.push(format!("VM {index}: {error:#}")),
            Err(_) => errors.push(format!("VM {index}: the VM thread ended while starting")),
        }
    }
    if !errors.is_empty() {
        // Dropping the started workers stops them.
        drop(workers);
        bail!("{}", errors.join("; "));
    }
    Ok(WorkerSet {
        workers,
        next: AtomicUsize::new(0),
    })
}

impl Plugin {
    /// Compiles the module, checks its ABI, and starts `spec.vms` configured
    /// VMs. A false from `on_vm_start` or `on_configure` (or a trap) refuses
    /// the plugin, as Envoy rejects it.
    pub fn load(spec: PluginSpec) -> anyhow::Result<Plugin> {
        let bytes = match &spec.wasm_bytes {
            Some(bytes) => bytes.clone(),
            None => std::fs::read(&spec.wasm_path)
                .with_context(|| format!("reading {}", spec.wasm_path.display()))?,
        };
        let mut config = Config::new();
        // A runaway call is interrupted by epoch (the watchdog thread below).
        config.epoch_interruption(true);
        config.consume_fuel(spec.consume_fuel);
        if let Some(cache) = compile_cache()? {
            config.cache(Some(cache));
        }
        let engine = Engine::new(&config).map_err(abi::wasm_error)?;
        let module = Module::new(&engine, &bytes)
            .map_err(abi::wasm_error)
            .with_context(|| format!("compiling {}", spec.wasm_path.display()))?;
        let exports: Vec<String> = module.exports().map(|e| e.name().to_string()).collect();
        if !ABI_VERSIONS.iter().any(|v| exports.iter().any(|e| e == v)) {
            bail!("Missing or unknown Proxy-Wasm ABI version (the module must export proxy_abi_version_0_2_1)");
        }
        if !exports
            .iter()
            .any(|e| e == "malloc" || e == "proxy_on_memory_allocate")
        {
            bail!("Wasm module is missing malloc function (proxy_on_memory_allocate)");
        }
        let mut linker: Linker<HostState> = Linker::new(&engine);
        abi::link(&mut linker)?;
        crate::wasi::link(&mut linker)?;
        let instance_pre = linker
            .instantiate_pre(&module)
            .map_err(|e| anyhow!("the module imports what this host does not provide: {e:?}"))?;
        let runtime = IoRuntime(Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("kubegate-host-io")
                .enable_all()
                .build()
                .context("starting the I/O runtime")?,
        ));
        let io = runtime
            .0
            .as_ref()
            .map(|r| r.handle().clone())
            .ok_or_else(|| anyhow!("no I/O runtime"))?;
        let prefix = format!(" {} {} {}", spec.name, spec.root_id, spec.vm_id);
        let state = Arc::new(PluginState {
            name: spec.name.clone(),
            root_id: spec.root_id.clone(),
            vm_id: spec.vm_id.clone(),
            vm_configuration: spec.vm_configuration.clone(),
            env: spec.env.clone(),
            clusters: spec.clusters.clone(),
            node: spec.node.clone(),
            clock: spec
                .clock
                .clone()
                .unwrap_or_else(|| Arc::new(SystemTime::now)),
            pause_timeout: spec.pause_timeout,
            trap_status: spec.trap_status,
            call_deadline_ticks: (spec.call_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1)
                as u64,
            consume_fuel: spec.consume_fuel,
            upstream_cluster: spec.upstream_cluster.clone(),
            faults: spec.faults.clone(),
            fuel_consumed: std::sync::atomic::AtomicU64::new(0),
            logs: LogSink::new(spec.log_level, spec.print_logs, prefix),
            metrics: MetricRegistry::default(),
            shared_data: SharedData::default(),
            queues: SharedQueues::default(),
            io,
            engine,
            instance_pre,
        });
        let watchdog = Watchdog::start(state.engine.clone())?;
        let vms = spec.vms.max(1);
        let set = start_workers(&state, Arc::new(spec.configuration.clone()), vms)
            .context("the plugin was refused")?;
        Ok(Plugin {
            state,
            workers: RwLock::new(Arc::new(set)),
            vms,
            _runtime: runtime,
            _watchdog: watchdog,
        })
    }

    fn current(&self) -> Arc<WorkerSet> {
        self.workers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Pushes a new plugin configuration. Fresh VMs are configured with it; if
    /// any refuses (or traps), nothing changes and the old VMs keep serving.
    /// Otherwise new streams go to the new VMs; streams in flight finish on the old.
    pub fn reconfigure(&self, configuration: impl Into<Vec<u8>>) -> anyhow::Result<()> {
        let set = start_workers(&self.state, Arc::new(configuration.into()), self.vms)
            .context("the new plugin configuration was refused; the previous one stays")?;
        *self.workers.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        Ok(())
    }

    /// Opens a stream on the next VM (round robin).
    pub fn open_stream(&self, info: StreamInfo) -> FilterStream {
        let set = self.current();
        let index = set.next.fetch_add(1, Ordering::Relaxed) % set.workers.len();
        self.open(set, index, info)
    }

    /// Opens a stream on a given VM (e.g. per connection, as Envoy pins a
    /// connection to one worker); the index wraps around.
    pub fn open_stream_on(&self, vm: usize, info: StreamInfo) -> FilterStream {
        let set = self.current();
        let index = vm % set.workers.len();
        self.open(set, index, info)
    }

    fn open(&self, set: Arc<WorkerSet>, index: usize, info: StreamInfo) -> FilterStream {
        let worker = set.workers[index].clone();
        let context = worker.next_context_id();
        FilterStream {
            worker,
            context,
            info: Some(info),
            timeout: self.state.pause_timeout,
            finished: false,
        }
    }

    /// Runs a whole request through the request callbacks, then ends the
    /// stream (on_log, on_done, on_delete) without a response.
    pub async fn handle(&self, request: FilterRequest) -> FilterOutcome {
        let (outcome, _) = self.exchange(request, None).await;
        outcome
    }

    /// Like [`Plugin::handle`], and when the request is forwarded, runs
    /// `response` through the response callbacks. Returns what the client gets.
    pub async fn handle_with_response(
        &self,
        request: FilterRequest,
        response: FilterResponse,
    ) -> (FilterOutcome, Option<FilterResponse>) {
        self.exchange(request, Some(response)).await
    }

    async fn exchange(
        &self,
        request: FilterRequest,
        response: Option<FilterResponse>,
    ) -> (FilterOutcome, Option<FilterResponse>) {
        let mut stream = self.open_stream(request.stream_info());
        let headers = HeaderMap::from_pairs(
            request
                .headers
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_bytes())),
        );
        let no_body = request.body.is_empty() && request.trailers.is_empty();
        let forwarded_headers = match stream.request_headers(headers, no_body).await {
            HeadersVerdict::Continue(headers) => headers,
            HeadersVerdict::LocalReply(reply) => {
                return (FilterOutcome::from_local_reply(reply), None)
            }
            HeadersVerdict::Failed(failure) => return (failed(failure), None),
        };
        let mut body = Vec::new();
        if !request.body.is_empty() {
            match stream
                .request_body(request.body.clone(), request.trailers.is_empty())
                .await
            {
                BodyVerdict::Continue(data) => body.extend_from_slice(&data),
                BodyVerdict::Buffered => {}
                BodyVerdict::LocalReply(reply) => {
                    return (FilterOutcome::from_local_reply(reply), None)
                }
                BodyVerdict::Failed(failure) => return (failed(failure), None),
            }
        }
        if !request.trailers.is_empty() {
            let trailers = HeaderMap::from_pairs(
                request
                    .trailers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_bytes())),
            );
            match stream.request_trailers(trailers).await {
                TrailersVerdict::Continue { body: data, .. } => body.extend_from_slice(&data),
                TrailersVerdict::LocalReply(reply) => {
                    return (FilterOutcome::from_local_reply(reply), None)
                }
                TrailersVerdict::Failed(failure) => return (failed(failure), None),
            }
        }
        let outcome = FilterOutcome::Forward {
            headers: forwarded_headers.to_string_pairs(),
            body,
        };
        let Some(response) = response else {
            return (outcome, None);
        };
        let mut headers = HeaderMap::new();
        headers.add(":status", response.status.to_string().as_bytes());
        for (name, value) in &response.headers {
            headers.add(name, value.as_bytes());
        }
        let client_response = match stream
            .response_headers(headers, response.body.is_empty())
            .await
        {
            HeadersVerdict::Continue(headers) => {
                let mut body = Vec::new();
                if !response.body.is_empty() {
                    match stream.response_body(response.body.clone(), true).await {
                        BodyVerdict::Continue(data) => body = data,
                        BodyVerdict::Buffered => {}
                        BodyVerdict::LocalReply(reply) => {
                            return (outcome, Some(response_of_reply(reply)))
                        }
                        BodyVerdict::Failed(failure) => {
                            return (outcome, Some(response_of_failure(failure)))
                        }
                    }
                }
                let status = headers
                    .get_first_str(":status")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(response.status);
                let headers = headers
                    .to_string_pairs()
                    .into_iter()
                    .filter(|(n, _)| !n.starts_with(':'))
                    .collect();
                FilterResponse {
                    status,
                    headers,
                    body,
                }
            }
            HeadersVerdict::LocalReply(reply) => response_of_reply(reply),
            HeadersVerdict::Failed(failure) => response_of_failure(failure),
        };
        (outcome, Some(client_response))
    }

    /// A counter or gauge value, or a histogram's sample count.
    pub fn metric(&self, name: &str) -> Option<u64> {
        self.state.metrics.get(name).map(|m| m.value)
    }

    pub fn metric_details(&self, name: &str) -> Option<MetricValue> {
        self.state.metrics.get(name)
    }

    pub fn metrics(&self) -> Vec<MetricValue> {
        self.state.metrics.all()
    }

    /// Captured filter log lines (and the host's own lines about the plugin).
    pub fn logs(&self) -> Vec<LogLine> {
        self.state.logs.snapshot()
    }

    pub fn shared_data(&self, key: &str) -> Option<Vec<u8>> {
        self.state.shared_data.get(key).map(|(value, _)| value)
    }

    /// The value and its CAS, as `proxy_get_shared_data` reports them.
    pub fn shared_data_with_cas(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.state.shared_data.get(key)
    }

    pub fn shared_data_keys(&self) -> Vec<String> {
        self.state.shared_data.keys()
    }

    /// The fuel (about one unit per wasm instruction) all VMs of this plugin have
    /// burnt since it was loaded, start-up included; `None` without `consume_fuel`.
    pub fn fuel_consumed(&self) -> Option<u64> {
        self.state
            .consume_fuel
            .then(|| self.state.fuel_consumed.load(Ordering::Relaxed))
    }

    /// Each current VM's linear memory size in bytes, in VM order (`None` for a VM being
    /// replaced after a trap). Read-only: for tests that bound the filter's memory.
    pub async fn memory_sizes(&self) -> Vec<Option<usize>> {
        let set = self.current();
        let mut sizes = Vec::with_capacity(set.workers.len());
        for worker in &set.workers {
            let (reply, rx) = oneshot::channel();
            let sent = worker.send(WorkerCommand::MemorySize { reply });
            sizes.push(if sent { rx.await.ok().flatten() } else { None });
        }
        sizes
    }

    pub fn vm_count(&self) -> usize {
        self.vms
    }

    pub fn pause_timeout(&self) -> Duration {
        self.state.pause_timeout
    }
}

fn failed(failure: Failure) -> FilterOutcome {
    FilterOutcome::Failed {
        status: failure.status,
        reason: failure.reason,
    }
}

fn response_of_reply(reply: crate::exchange::LocalReply) -> FilterResponse {
    FilterResponse {
        status: reply.status,
        headers: reply.headers.to_string_pairs(),
        body: reply.body,
    }
}

fn response_of_failure(failure: Failure) -> FilterResponse {
    FilterResponse {
        status: failure.status,
        headers: Vec::new(),
        body: failure.reason.into_bytes(),
    }
}

/// One HTTP stream through the filter. Each call waits for the filter's
/// verdict, at most the plugin's pause timeout (then it fails closed with 503).
/// Dropping the stream ends it (on_log, on_done, on_delete).
pub struct FilterStream {
    worker: Arc<WorkerHandle>,
    context: u32,
    info: Option<StreamInfo>,
    timeout: Duration,
    finished: bool,
}

fn unavailable() -> Failure {
    Failure {
        status: 503,
        reason: "the plugin's VM is not running".to_string(),
    }
}

impl FilterStream {
    /// The VM instance serving this stream.
    pub fn vm_index(&self) -> usize {
        self.worker.index
    }

    async fn wait<T>(&self, rx: oneshot::Receiver<T>, sent: bool, failed: fn(Failure) -> T) -> T {
        if !sent {
            return failed(unavailable());
        }
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(verdict)) => verdict,
            Ok(Err(_)) => failed(unavailable()),
            Err(_) => failed(Failure {
                status: 503,
                reason: format!("the filter held the stream longer than {:?}", self.timeout),
            }),
        }
    }

    pub async fn request_headers(
        &mut self,
        headers: HeaderMap,
        end_of_stream: bool,
    ) -> HeadersVerdict {
        let (reply, rx) = oneshot::channel();
        let info = self.info.take().unwrap_or_default();
        let sent = self.worker.send(WorkerCommand::RequestHeaders {
            context: self.context,
            info,
            headers,
            end_of_stream,
            reply,
        });
        self.wait(rx, sent, HeadersVerdict::Failed).await
    }

    pub async fn request_body(&mut self, chunk: Vec<u8>, end_of_stream: bool) -> BodyVerdict {
        let (reply, rx) = oneshot::channel();
        let sent = self.worker.send(WorkerCommand::RequestBody {
            context: self.context,
            chunk,
            end_of_stream,
            reply,
        });
        self.wait(rx, sent, BodyVerdict::Failed).await
    }

    pub async fn request_trailers(&mut self, trailers: HeaderMap) -> TrailersVerdict {
        let (reply, rx) = oneshot::channel();
        let sent = self.worker.send(WorkerCommand::RequestTrailers {
            context: self.context,
            trailers,
            reply,
        });
        self.wait(rx, sent, TrailersVerdict::Failed).await
    }

    /// `headers` must include `:status`.
    pub async fn response_headers(
        &mut self,
        headers: HeaderMap,
        end_of_stream: bool,
    ) -> HeadersVerdict {
        let (reply, rx) = oneshot::channel();
        let sent = self.worker.send(WorkerCommand::ResponseHeaders {
            context: self.context,
            headers,
            end_of_stream,
            reply,
        });
        self.wait(rx, sent, HeadersVerdict::Failed).await
    }

    pub async fn response_body(&mut self, chunk: Vec<u8>, end_of_stream: bool) -> BodyVerdict {
        let (reply, rx) = oneshot::channel();
        let sent = self.worker.send(WorkerCommand::ResponseBody {
            context: self.context,
            chunk,
            end_of_stream,
            reply,
        });
        self.wait(rx, sent, BodyVerdict::Failed).await
    }

    pub async fn response_trailers(&mut self, trailers: HeaderMap) -> TrailersVerdict {
        let (reply, rx) = oneshot::channel();
        let sent = self.worker.send(WorkerCommand::ResponseTrailers {
            context: self.context,
            trailers,
            reply,
        });
        self.wait(rx, sent, TrailersVerdict::Failed).await
    }

    /// The filter state the filter set on this stream (`proxy_set_property`), by path
    /// (segments joined by NUL), as Envoy would keep it for the access log. Empty once the
    /// stream has ended or when the VM is gone.
    pub async fn filter_state(&self) -> std::collections::BTreeMap<String, String> {
        let (reply, rx) = oneshot::channel();
        let sent = self.worker.send(WorkerCommand::FilterState {
            context: self.context,
            reply,
        });
        if !sent {
            return Default::default();
        }
        rx.await
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(&k).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect()
    }

    /// Ends the stream now (the same happens on drop).
    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        if !self.finished {
            self.finished = true;
            self.worker.send(WorkerCommand::Finish {
                context: self.context,
            });
        }
    }
}

impl Drop for FilterStream {
    fn drop(&mut self) {
        self.end();
    }
}
