//! `make run`'s launcher as a newcomer uses it: start kubegate-demo, take the kubeconfig it
//! prints, and run the kubectl commands it suggests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn wasm() -> PathBuf {
    let path = std::env::var_os("KUBEGATE_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/wasm32-wasip1/release/kubegate.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `make build`",
        path.display()
    );
    path
}

/// Kills the launcher when the test ends, pass or fail.
struct Launcher(Child);

impl Drop for Launcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn kubectl(home: &Path, kubeconfig: &str, args: &[&str]) -> (bool, String) {
    let output = Command::new("kubectl")
        .arg("--request-timeout=20s")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("kubectl runs");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

#[test]
fn the_printed_kubectl_commands_work() {
    let out = std::env::temp_dir().join(format!("kubegate-demo-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let mut launcher = Launcher(
        Command::new(env!("CARGO_BIN_EXE_kubegate-demo"))
            .arg("--wasm")
            .arg(wasm())
            .arg("--config")
            .arg(workspace().join("filter-config/dev.json"))
            .args(["--listen", "127.0.0.1:0", "--out"])
            .arg(&out)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("kubegate-demo starts"),
    );
    let stdout = launcher.0.stdout.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut printed = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        printed.push(line.clone());
        if line.contains("Ctrl-C stops it.") || Instant::now() > deadline {
            break;
        }
    }
    let kubeconfig = printed
        .iter()
        .find_map(|l| l.trim().strip_prefix("export KUBECONFIG="))
        .unwrap_or_else(|| panic!("no kubeconfig printed: {printed:#?}"))
        .to_string();
    assert!(
        printed.iter().any(|l| l.contains("https://localhost:")),
        "{printed:#?}"
    );
    let home = out.join("home");
    std::fs::create_dir_all(&home).unwrap();

    let (ok, text) = kubectl(&home, &kubeconfig, &["get", "pods"]);
    assert!(ok, "{text}");
    assert!(text.contains("nginx-1"), "{text}");
    let (ok, text) = kubectl(&home, &kubeconfig, &["auth", "whoami"]);
    assert!(ok && text.contains("someuser@example.com"), "{text}");
    let (ok, text) = kubectl(&home, &kubeconfig, &["exec", "nginx-1", "--", "echo", "hi"]);
    assert!(ok && text.trim() == "hi", "{text}");
    let (ok, text) = kubectl(
        &home,
        &kubeconfig,
        &["--context", "outsider", "get", "pods"],
    );
    assert!(!ok);
    assert!(
        text.contains("kubegate: user \"mallory@evil.example\" is not allowed"),
        "{text}"
    );
    drop(launcher);
    let _ = std::fs::remove_dir_all(&out);
}
