//! The kubegate configurations embedded in envoy-examples/ (an Envoy bootstrap's StringValue,
//! a WasmPlugin's pluginConfig as Istio hands it over, an EnvoyExtensionPolicy's wasm[].config
//! as Envoy Gateway hands it over), parsed by kubegate itself.
//! `make validate-examples` extracts them to build/examples-config/ (listed in INDEX) and
//! runs before these tests in `make test`; KUBEGATE_EXAMPLES_CONFIG names another directory.

use kubegate::config::Config;
use std::path::PathBuf;

fn extracted() -> PathBuf {
    let dir = std::env::var_os("KUBEGATE_EXAMPLES_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("build/examples-config"));
    assert!(
        dir.join("INDEX").exists(),
        "{} has no INDEX: run `make validate-examples` (or `make test`, which runs it first)",
        dir.display()
    );
    dir
}

/// Every variable a configuration names stands for a service-account token or secret; the
/// values only have to be well formed.
fn env(name: &str) -> Option<String> {
    if name.contains("HMAC") || name.contains("SECRET") {
        // 32 bytes, base64: the shortest HMAC secret kubegate accepts.
        Some("a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=".to_string())
    } else {
        Some("example-service-account-token".to_string())
    }
}

#[test]
fn every_configuration_in_the_examples_is_accepted_by_kubegate() {
    let dir = extracted();
    let index = std::fs::read_to_string(dir.join("INDEX")).unwrap();
    let mut checked = Vec::new();
    for line in index.lines().filter(|l| !l.trim().is_empty()) {
        let (name, source) = line.split_once('\t').unwrap_or((line, "?"));
        let bytes = std::fs::read(dir.join(name)).unwrap();
        let config = Config::parse(&bytes, &env)
            .unwrap_or_else(|e| panic!("{name} (from {source}) is refused: {e}"));
        assert!(!config.routes.is_empty(), "{name}");
        checked.push(source.to_string());
    }
    // Three Envoy bootstraps, the Istio WasmPlugin and the Envoy Gateway policy.
    assert!(checked.len() >= 5, "{checked:?}");
    assert!(checked.iter().any(|s| s.contains("istio/")), "{checked:?}");
    assert!(checked.iter().any(|s| s.contains("envoy/")), "{checked:?}");
    assert!(
        checked.iter().any(|s| s.contains("envoy-gateway/")),
        "{checked:?}"
    );
}
