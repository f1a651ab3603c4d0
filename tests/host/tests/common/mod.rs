//! Shared helpers of the integration tests: the SDK-built test filter, small
//! local servers on 127.0.0.1, bounded waits.
#![allow(dead_code)]

use kubegate_host::{FilterRequest, PluginSpec};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Builds tests/host/testdata-filter for wasm32-wasip1 once per test binary and
/// returns the module's path. Its own target dir keeps it off the workspace lock.
pub fn test_filter_wasm() -> PathBuf {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let filter_dir = manifest_dir.join("testdata-filter");
        let target_dir = manifest_dir.join("../../target/host-testdata-filter");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let status = Command::new(cargo)
            .args(["build", "--release", "--target", "wasm32-wasip1", "--manifest-path"])
            .arg(filter_dir.join("Cargo.toml"))
            .env("CARGO_TARGET_DIR", &target_dir)
            .env_remove("RUSTFLAGS")
            .status()
            .expect("running cargo to build the test filter");
        assert!(status.success(), "building the test filter failed");
        target_dir.join("wasm32-wasip1/release/kubegate_host_testdata_filter.wasm")
    })
    .clone()
}

/// A spec for the test filter with quiet logs and a short pause timeout.
pub fn test_spec(configuration: &str) -> PluginSpec {
    PluginSpec {
        wasm_path: test_filter_wasm(),
        configuration: configuration.as_bytes().to_vec(),
        vm_configuration: b"vm-config".to_vec(),
        root_id: "test_root".to_string(),
        vm_id: "test_vm".to_string(),
        name: "test_plugin".to_string(),
        print_logs: false,
        pause_timeout: Duration::from_secs(5),
        ..PluginSpec::default()
    }
}

/// A GET request naming the test filter's action.
pub fn action(name: &str) -> FilterRequest {
    FilterRequest::new("GET", "/api/v1/pods?limit=1", "k8s.example.com").header("x-test-action", name)
}

/// Polls `condition` until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    condition()
}
