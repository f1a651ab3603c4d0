//! `kube-apiserver-standin`: the stand-in as a program, for the demo and manual checks.
//!
//! ```text
//! kube-apiserver-standin [--listen 127.0.0.1:6443] (--token-file F | --token T)
//!     [--manifest F]... [--service-account NS/NAME] [--plain-http] [--no-websocket-exec]
//!     [--print-ca F] [--no-seed]
//! ```

use std::net::SocketAddr;

use anyhow::{bail, Context};
use kube_apiserver_standin::{start, Seed, StandinConfig};

const USAGE: &str =
    "usage: kube-apiserver-standin [--listen ADDR] (--token-file F | --token T) [--manifest F]... \
[--service-account NS/NAME] [--plain-http] [--no-websocket-exec] [--print-ca F] [--no-seed]";

fn parse_arguments(arguments: &[String]) -> anyhow::Result<(StandinConfig, Option<String>)> {
    let mut config = StandinConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 6443)),
        ..StandinConfig::default()
    };
    let mut token = None;
    let mut print_ca = None;
    let mut iterator = arguments.iter();
    while let Some(argument) = iterator.next() {
        let mut value = || {
            iterator
                .next()
                .cloned()
                .with_context(|| format!("{argument} needs a value\n{USAGE}"))
        };
        match argument.as_str() {
            "--listen" => config.listen = value()?.parse().context("--listen wants HOST:PORT")?,
            "--token" => token = Some(value()?),
            "--token-file" => {
                let path = value()?;
                let text =
                    std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
                token = Some(text.trim().to_string());
            }
            "--manifest" => {
                let path = value()?;
                config.manifests.push(
                    std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?,
                );
            }
            "--service-account" => {
                let text = value()?;
                let (namespace, name) = text
                    .split_once('/')
                    .context("--service-account wants NS/NAME")?;
                config.service_account = (namespace.to_string(), name.to_string());
            }
            "--plain-http" => config.tls = false,
            "--no-websocket-exec" => config.websocket_exec = false,
            "--no-seed" => config.seed = Seed::empty(),
            "--print-ca" => print_ca = Some(value()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    match token {
        Some(token) if !token.is_empty() => config.service_account_token = token,
        _ => bail!("a token is required (--token or --token-file)\n{USAGE}"),
    }
    Ok((config, print_ca))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let (config, print_ca) = parse_arguments(&arguments)?;
    let server = start(config).await?;
    if let Some(path) = print_ca {
        std::fs::write(&path, server.ca_pem()).with_context(|| format!("writing {path}"))?;
    }
    println!(
        "kube-apiserver-standin listening on {} as {}",
        server.url(),
        kube_apiserver_standin::discovery::GIT_VERSION
    );
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    server.shutdown().await;
    Ok(())
}
