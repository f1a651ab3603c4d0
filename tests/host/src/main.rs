//! `kubegate-host`: serves a proxy-wasm filter in front of an upstream, the way
//! Envoy would, from one configuration file.

use std::path::PathBuf;

const HELP: &str = "\
kubegate-host: run a proxy-wasm filter (ABI 0.2.1, Envoy semantics) in front of an HTTP upstream

USAGE:
    kubegate-host --config <FILE> [--ca-out <FILE>]
    kubegate-host --help

OPTIONS:
    -c, --config <FILE>   YAML or JSON configuration (see below)
        --ca-out <FILE>   write the PEM clients should trust (the generated CA) to FILE
    -h, --help            print this help

CONFIGURATION (unknown fields are errors; paths are relative to the file):
    listen: 127.0.0.1:8443             # default; loopback only unless you change it
    tls: {names: [k8s.example.com]}    # generated CA + certificate for 127.0.0.1, localhost, ::1 + names
    # tls: {cert: server.pem, key: server.key}   or   tls: {plain: true}
    wasm: target/wasm32-wasip1/release/kubegate.wasm
    plugin:
      name: kubegate
      configuration: {...}             # inline JSON/YAML (or a string), or configuration_file: FILE
      vm_configuration: \"\"
      vms: 2                           # VM instances, like Envoy worker threads
      log_level: info                  # trace|debug|info|warn|error|critical
      pause_timeout_ms: 30000          # a paused request fails closed (503) after this
    vm_env:                            # Envoy's vm_config.environment_variables
      key_values: {KUBEGATE_SA_TOKEN: \"...\"}
      host_env_keys: [SOME_VAR]        # copied from this process's environment
    upstream: {url: https://127.0.0.1:6443, ca_file: ca.crt}   # or tls_skip_verify: true; sni: NAME
    clusters:                          # names for dispatch_http_call
      idp: {url: http://127.0.0.1:9000}
";

struct Args {
    config: PathBuf,
    ca_out: Option<PathBuf>,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut config = None;
    let mut ca_out = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "-c" | "--config" => {
                config = Some(PathBuf::from(args.next().ok_or("--config needs a file")?))
            }
            "--ca-out" => ca_out = Some(PathBuf::from(args.next().ok_or("--ca-out needs a file")?)),
            other => return Err(format!("unknown argument {other:?} (see --help)")),
        }
    }
    let config = config.ok_or("missing --config <FILE> (see --help)")?;
    Ok(Some(Args { config, ca_out }))
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{HELP}");
            return;
        }
        Err(message) => {
            eprintln!("kubegate-host: {message}");
            std::process::exit(2);
        }
    };
    if let Err(error) = run(args).await {
        eprintln!("kubegate-host: {error:#}");
        std::process::exit(1);
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = kubegate_host::load_config(&args.config)?;
    let upstream = config.upstream.url.clone();
    let gateway = kubegate_host::start_gateway(config).await?;
    if let Some(path) = &args.ca_out {
        std::fs::write(path, &gateway.ca_pem)?;
        eprintln!("kubegate-host: CA written to {}", path.display());
    }
    eprintln!("kubegate-host: serving {} -> {upstream}", gateway.url());
    tokio::signal::ctrl_c().await?;
    eprintln!("kubegate-host: stopping");
    gateway.shutdown().await;
    Ok(())
}
