//! What every VM of a plugin shares: the compiled module, the plugin's identity
//! and environment, and the plugin-wide services (logs, metrics, shared data,
//! queues, the I/O runtime for http calls).

use crate::context::HostState;
use crate::logs::LogSink;
use crate::metrics::MetricRegistry;
use crate::shared_data::{SharedData, SharedQueues};
use crate::spec::{Clock, ClusterSpec, HostFaults, NodeInfo};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use wasmtime::{Engine, InstancePre};

/// How often the engine's epoch advances; VM calls are interrupted after
/// `call_timeout / EPOCH_TICK` ticks.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

pub(crate) struct PluginState {
    pub name: String,
    pub root_id: String,
    pub vm_id: String,
    pub vm_configuration: Vec<u8>,
    pub env: Vec<(String, String)>,
    pub clusters: HashMap<String, ClusterSpec>,
    pub node: NodeInfo,
    pub clock: Clock,
    pub pause_timeout: Duration,
    pub trap_status: u16,
    /// Epoch ticks a VM call may take (see [`EPOCH_TICK`]).
    pub call_deadline_ticks: u64,
    pub consume_fuel: bool,
    pub upstream_cluster: Option<String>,
    pub faults: HostFaults,
    /// Fuel burnt by every VM of the plugin (only counted with `consume_fuel`).
    pub fuel_consumed: AtomicU64,
    pub logs: LogSink,
    pub metrics: MetricRegistry,
    pub shared_data: SharedData,
    pub queues: SharedQueues,
    pub io: tokio::runtime::Handle,
    pub engine: Engine,
    pub instance_pre: InstancePre<HostState>,
}
