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
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip1",
                "--manifest-path",
            ])
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
    FilterRequest::new("GET", "/api/v1/pods?limit=1", "k8s.example.com")
        .header("x-test-action", name)
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

/// A small HTTP/1.1 server on 127.0.0.1 that answers every request with
/// `status`, an `x-echo-from-filter` header copied from the request, and a
/// body naming the path. Returns its address; it runs until the test ends.
pub async fn spawn_auth_server(status: u16, delay: Duration) -> std::net::SocketAddr {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| async move {
                        tokio::time::sleep(delay).await;
                        let echo = request
                            .headers()
                            .get("x-from-filter")
                            .map(|v| v.to_str().unwrap_or_default().to_string())
                            .unwrap_or_default();
                        let host = request
                            .headers()
                            .get("host")
                            .map(|v| v.to_str().unwrap_or_default().to_string());
                        let body = format!(
                            "auth for {} host={}",
                            request.uri().path(),
                            host.unwrap_or_default()
                        );
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder()
                                .status(status)
                                .header("x-echo-from-filter", echo)
                                .body(Full::new(Bytes::from(body)))
                                .unwrap(),
                        )
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}
