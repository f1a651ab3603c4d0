//! What a plugin is loaded from: the module, its configurations, its VM
//! environment and the upstream clusters its `dispatch_http_call` may name.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The host's wall clock as the filter sees it (`proxy_get_current_time_nanoseconds`
/// and WASI `clock_time_get(REALTIME)`), so tests can set the time.
pub type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

/// A clock that tests move by hand.
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<Mutex<SystemTime>>,
}

impl ManualClock {
    pub fn new(start: SystemTime) -> ManualClock {
        ManualClock {
            now: Arc::new(Mutex::new(start)),
        }
    }

    pub fn set(&self, now: SystemTime) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }

    pub fn now(&self) -> SystemTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn clock(&self) -> Clock {
        let this = self.clone();
        Arc::new(move || this.now())
    }
}

/// proxy-wasm log levels (the SDK's `LogLevel`; Envoy's spdlog levels).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl LogLevel {
    pub fn from_raw(raw: u32) -> Option<LogLevel> {
        Some(match raw {
            0 => LogLevel::Trace,
            1 => LogLevel::Debug,
            2 => LogLevel::Info,
            3 => LogLevel::Warn,
            4 => LogLevel::Error,
            5 => LogLevel::Critical,
            _ => return None,
        })
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        };
        f.write_str(name)
    }
}

/// An HTTP(S) endpoint on this machine: the gateway's upstream or a named
/// cluster for `dispatch_http_call`. Requests go out as HTTP/1.1.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamSpec {
    /// `http://127.0.0.1:8080` or `https://localhost:6443`; a path prefix is not used.
    pub url: String,
    /// Accept any server certificate (Pomerium's `tls_skip_verify`).
    #[serde(default)]
    pub tls_skip_verify: bool,
    /// PEM of the CA that signs the server certificate (instead of the system roots).
    #[serde(default)]
    pub ca_pem: Option<String>,
    /// TLS server name; defaults to the URL's host.
    #[serde(default)]
    pub sni: Option<String>,
}

/// A named cluster for `proxy_dispatch_http_call` (Envoy's cluster name).
pub type ClusterSpec = UpstreamSpec;

impl UpstreamSpec {
    pub fn http(address: std::net::SocketAddr) -> UpstreamSpec {
        UpstreamSpec {
            url: format!("http://{address}"),
            ..UpstreamSpec::default()
        }
    }
}

/// Identity of the proxy as the `node.*` / `xds.node.*` properties report it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: String,
    pub cluster: String,
}

impl Default for NodeInfo {
    fn default() -> NodeInfo {
        NodeInfo {
            id: "kubegate-host".to_string(),
            cluster: "kubegate".to_string(),
        }
    }
}

/// A host that misbehaves on purpose, to test that the filter fails closed: the named
/// hostcalls (ABI names such as `proxy_add_header_map_value`) either answer an error
/// status, or answer Ok without doing anything (a write that silently does nothing, a
/// read that returns nothing). Applies to every VM of the plugin from its start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostFaults {
    /// Hostcalls that answer `status` and do nothing.
    pub fail: Vec<String>,
    /// Hostcalls that answer Ok and do nothing.
    pub ignore: Vec<String>,
    /// The status `fail` answers (2, BadArgument, by default).
    pub status: u32,
}

impl Default for HostFaults {
    fn default() -> HostFaults {
        HostFaults {
            fail: Vec::new(),
            ignore: Vec::new(),
            status: 2,
        }
    }
}

impl HostFaults {
    /// Every header-map write.
    pub const HEADER_WRITES: [&'static str; 4] = [
        "proxy_add_header_map_value",
        "proxy_replace_header_map_value",
        "proxy_remove_header_map_value",
        "proxy_set_header_map_pairs",
    ];

    /// `names` answer `status` (BadArgument unless changed) and do nothing.
    pub fn failing(names: &[&str]) -> HostFaults {
        HostFaults {
            fail: names.iter().map(|n| n.to_string()).collect(),
            ..HostFaults::default()
        }
    }

    /// `names` answer Ok and do nothing.
    pub fn ignoring(names: &[&str]) -> HostFaults {
        HostFaults {
            ignore: names.iter().map(|n| n.to_string()).collect(),
            ..HostFaults::default()
        }
    }

    /// The same faults answering another error status.
    pub fn with_status(mut self, status: u32) -> HostFaults {
        self.status = status;
        self
    }
}

/// The cluster the gateway's upstream has by default (`xds.cluster_name`), the API
/// server's cluster in envoy-examples/envoy/*.yaml.
pub const DEFAULT_UPSTREAM_CLUSTER: &str = "kube_apiserver";

/// Everything needed to load one plugin, like Envoy's `envoy.filters.http.wasm` config.
#[derive(Clone)]
pub struct PluginSpec {
    /// The compiled filter (`.wasm`).
    pub wasm_path: PathBuf,
    /// The module itself; when set, `wasm_path` is only used in messages. Tests
    /// may put WAT text here.
    pub wasm_bytes: Option<Vec<u8>>,
    /// Bytes `on_configure` reads (`PluginConfiguration`).
    pub configuration: Vec<u8>,
    /// Bytes `on_vm_start` reads (`VmConfiguration`).
    pub vm_configuration: Vec<u8>,
    /// The VM's environment (`vm_config.environment_variables`); nothing else
    /// from the host's environment is visible.
    pub env: Vec<(String, String)>,
    pub root_id: String,
    pub vm_id: String,
    /// Plugin name (`plugin_name` property, log prefix).
    pub name: String,
    /// VM instances, like Envoy's worker threads; at least 1.
    pub vms: usize,
    pub clusters: HashMap<String, ClusterSpec>,
    pub clock: Option<Clock>,
    /// Lowest level captured and printed; Envoy's default is info.
    pub log_level: LogLevel,
    /// Print captured filter logs to stderr as well.
    pub print_logs: bool,
    /// How long a paused request or response may wait before it fails closed.
    pub pause_timeout: Duration,
    /// Status of a request failed closed because the VM trapped. The brief for
    /// this host says 500; Envoy itself answers 503 (`wasm_fail_stream`).
    pub trap_status: u16,
    /// Longest a single call into the filter may run before the host traps it
    /// (and replaces the VM). Envoy has no such watchdog; here a runaway
    /// filter must not hang a test.
    pub call_timeout: Duration,
    pub node: NodeInfo,
    /// Meter every VM call with wasmtime fuel (about one unit per wasm
    /// instruction) and total it in [`crate::Plugin::fuel_consumed`]. Off by
    /// default: metering makes every call slower, so benchmarks time with it off.
    pub consume_fuel: bool,
    /// The Envoy cluster requests are routed to (`xds.cluster_name`, `cluster_name`)
    /// unless a stream says otherwise ([`crate::StreamInfo::upstream_cluster`]); `None`:
    /// the property is NotFound, as for a request with no route.
    pub upstream_cluster: Option<String>,
    /// Hostcalls that misbehave on purpose (none by default).
    pub faults: HostFaults,
}

impl Default for PluginSpec {
    fn default() -> PluginSpec {
        PluginSpec {
            wasm_path: PathBuf::new(),
            wasm_bytes: None,
            configuration: Vec::new(),
            vm_configuration: Vec::new(),
            env: Vec::new(),
            root_id: String::new(),
            vm_id: String::new(),
            name: "kubegate".to_string(),
            vms: 1,
            clusters: HashMap::new(),
            clock: None,
            log_level: LogLevel::Info,
            print_logs: true,
            pause_timeout: Duration::from_secs(30),
            trap_status: 500,
            call_timeout: Duration::from_secs(10),
            node: NodeInfo::default(),
            consume_fuel: false,
            upstream_cluster: Some(DEFAULT_UPSTREAM_CLUSTER.to_string()),
            faults: HostFaults::default(),
        }
    }
}

impl fmt::Debug for PluginSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginSpec")
            .field("wasm_path", &self.wasm_path)
            .field("configuration_bytes", &self.configuration.len())
            .field(
                "env_names",
                &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("root_id", &self.root_id)
            .field("vm_id", &self.vm_id)
            .field("vms", &self.vms)
            .field("clusters", &self.clusters.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}
