//! `make bench`: kubegate's performance table in one run.
//!
//! For each request kind: the median time through the host with the real kubegate.wasm,
//! the wasm instructions it runs (wasmtime fuel, from a second, metered plugin), the
//! median time of the same decision natively (`gate::decide` with a cache, compiled for
//! this machine: the limit), and the ratios wasm/native and cache hit/cold. Then the
//! module's size and a load run against a pass-through filter.

mod keys;
mod load;
mod scenarios;
mod timing;

use anyhow::{bail, Context, Result};
use keys::{filter_config, BenchKeys, ALLOWED_DOMAIN};
use kubegate::config::Config;
use kubegate::gate;
use kubegate::token_cache::VerifiedTokenCache;
use kubegate_host::{LogLevel, Plugin, PluginSpec};
use scenarios::{scenarios, CacheUse, Scenario};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use timing::{median_of, median_of_async, WARM_UP};

/// The size the module must stay under after wasm-opt.
const SIZE_BUDGET_BYTES: u64 = 1024 * 1024;
/// Requests whose fuel is averaged per row (fuel is deterministic: few are needed).
const FUEL_ROUNDS: usize = 20;

struct Options {
    wasm: PathBuf,
    samples: usize,
    load_seconds: u64,
    load_clients: usize,
}

impl Options {
    fn parse() -> Result<Options> {
        let mut options = Options {
            wasm: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/wasm32-wasip1/release/kubegate.wasm"),
            samples: 300,
            load_seconds: 10,
            load_clients: 8,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--wasm" => options.wasm = PathBuf::from(value()?),
                "--samples" => options.samples = value()?.parse()?,
                "--load-seconds" => options.load_seconds = value()?.parse()?,
                "--load-clients" => options.load_clients = value()?.parse()?,
                "--help" | "-h" => {
                    println!(
                        "kubegate-bench [--wasm PATH] [--samples N (300)] \
                         [--load-seconds S (10; 0 skips the load run)] [--load-clients N (8)]"
                    );
                    std::process::exit(0);
                }
                other => bail!("unknown argument {other:?} (see --help)"),
            }
        }
        Ok(options)
    }
}

/// One row of the table.
struct Row {
    label: &'static str,
    wasm: Duration,
    fuel: u64,
    native: Option<Duration>,
    cold: Option<keys::Alg>,
}

fn now_unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn plugin_spec(options: &Options, configuration: &[u8], consume_fuel: bool) -> PluginSpec {
    PluginSpec {
        wasm_path: options.wasm.clone(),
        configuration: configuration.to_vec(),
        vms: 1,
        print_logs: false,
        consume_fuel,
        ..PluginSpec::default()
    }
}

/// A cache hit must find its token verified already: one request puts it there.
fn prime_native(scenario: &Scenario, config: &Config, cache: &mut VerifiedTokenCache, now: u64) {
    if scenario.cache == CacheUse::Hit {
        gate::decide(config, cache, &scenario.headers(0), now);
    }
}

async fn prime_wasm(scenario: &Scenario, plugin: &Plugin) {
    if scenario.cache == CacheUse::Hit {
        plugin.handle(scenario.filter_request(0)).await;
    }
}

fn measure_native(
    scenario: &Scenario,
    config: &Config,
    cache: &mut VerifiedTokenCache,
    samples: usize,
) -> Result<Duration> {
    let now = now_unix_seconds();
    prime_native(scenario, config, cache, now);
    median_of(samples, |round| {
        let headers = scenario.headers(round);
        let decision = gate::decide(config, cache, &headers, now);
        scenario.check_native(decision.log.kind, decision.cache_hit)
    })
}

async fn measure_wasm(scenario: &Scenario, plugin: &Plugin, samples: usize) -> Result<Duration> {
    prime_wasm(scenario, plugin).await;
    let counter = |name| plugin.metric(name).unwrap_or(0);
    let (hits, misses) = (
        counter("kubegate.jwt.cache_hits"),
        counter("kubegate.jwt.cache_misses"),
    );
    let median = median_of_async(samples, |round| async move {
        scenario.check_wasm(&plugin.handle(scenario.filter_request(round)).await)
    })
    .await?;
    // The filter's own counters confirm the row took the path it is named after.
    let rounds = (WARM_UP + samples) as u64;
    let (hits, misses) = (
        counter("kubegate.jwt.cache_hits") - hits,
        counter("kubegate.jwt.cache_misses") - misses,
    );
    match scenario.cache {
        CacheUse::Hit if hits != rounds => bail!("{}: {hits} cache hits", scenario.label),
        CacheUse::Miss if misses != rounds => bail!("{}: {misses} misses", scenario.label),
        _ => Ok(median),
    }
}

/// Waits until the VM thread has run the previous stream's end (on_log, on_done, on_delete).
async fn settled_fuel(plugin: &Plugin) -> u64 {
    let mut last = plugin.fuel_consumed().unwrap_or(0);
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = plugin.fuel_consumed().unwrap_or(0);
        if now == last {
            return now;
        }
        last = now;
    }
}

/// Average fuel of one request of `scenario`, whole stream included.
async fn measure_fuel(scenario: &Scenario, plugin: &Plugin) -> Result<u64> {
    prime_wasm(scenario, plugin).await;
    let before = settled_fuel(plugin).await;
    for round in 0..FUEL_ROUNDS {
        scenario.check_wasm(&plugin.handle(scenario.filter_request(round)).await)?;
    }
    Ok((settled_fuel(plugin).await - before) / FUEL_ROUNDS as u64)
}

fn micros(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 100.0 {
        format!("{us:.0}")
    } else {
        format!("{us:.1}")
    }
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']))
        })
        .unwrap_or("unknown CPU");
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {model}")
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn print_table(rows: &[Row]) {
    let hit = rows.first().expect("the cache hit row comes first");
    println!(
        "| request | wasm µs | wasm fuel (≈ instructions) | native µs | wasm/native | hit/cold wasm | hit/cold native |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for row in rows {
        let native = row.native.map_or("—".into(), micros);
        let ratio = row.native.map_or("—".into(), |n| {
            format!("{:.1}×", row.wasm.as_secs_f64() / n.as_secs_f64())
        });
        let (hit_wasm, hit_native) = if row.cold.is_some() {
            let wasm = hit.wasm.as_secs_f64() / row.wasm.as_secs_f64();
            let native = match (hit.native, row.native) {
                (Some(h), Some(c)) => format!("{:.3}", h.as_secs_f64() / c.as_secs_f64()),
                _ => "—".into(),
            };
            (format!("{wasm:.3}"), native)
        } else {
            ("".into(), "".into())
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.label,
            micros(row.wasm),
            row.fuel,
            native,
            ratio,
            hit_wasm,
            hit_native
        );
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let options = Options::parse()?;
    let size = std::fs::metadata(&options.wasm)
        .with_context(|| format!("{} (run `make build`)", options.wasm.display()))?
        .len();
    let load_before = load_average();
    let now = now_unix_seconds();
    let keys = BenchKeys::generate()?;
    let configuration = filter_config(&keys);
    let rows_spec = scenarios(&keys, now, WARM_UP + options.samples)?;

    let config = Config::parse(&configuration, &|_| None)
        .map_err(|e| anyhow::anyhow!("the bench configuration: {e}"))?;
    let mut cache = VerifiedTokenCache::new(config.cache_entries);
    let timed = Plugin::load(plugin_spec(&options, &configuration, false))?;
    let metered = Plugin::load(plugin_spec(&options, &configuration, true))?;

    let mut rows = Vec::new();
    for scenario in &rows_spec {
        let native = measure_native(scenario, &config, &mut cache, options.samples)?;
        let wasm = measure_wasm(scenario, &timed, options.samples).await?;
        let fuel = measure_fuel(scenario, &metered).await?;
        rows.push(Row {
            label: scenario.label,
            wasm,
            fuel,
            native: Some(native),
            cold: scenario.cold,
        });
    }
    // The host's own share of every wasm row: a filter that only continues.
    let pass_through = |fuel| PluginSpec {
        wasm_bytes: Some(load::PASS_THROUGH_WAT.as_bytes().to_vec()),
        print_logs: false,
        consume_fuel: fuel,
        ..PluginSpec::default()
    };
    let (timed_pass, metered_pass) = (
        Plugin::load(pass_through(false))?,
        Plugin::load(pass_through(true))?,
    );
    let forwarded = Scenario {
        label: "pass-through filter (host overhead)",
        tokens: scenarios::Tokens::None,
        expect: kubegate::gate::Kind::Allowed,
        cache: CacheUse::Neither,
        cold: None,
    };
    rows.push(Row {
        label: forwarded.label,
        wasm: measure_wasm(&forwarded, &timed_pass, options.samples).await?,
        fuel: measure_fuel(&forwarded, &metered_pass).await?,
        native: None,
        cold: None,
    });
    drop((timed, metered, timed_pass, metered_pass));

    println!();
    println!(
        "kubegate.wasm: {size} bytes ({:.1} KiB; budget {} KiB: {})",
        size as f64 / 1024.0,
        SIZE_BUDGET_BYTES / 1024,
        if size < SIZE_BUDGET_BYTES {
            "under"
        } else {
            "OVER"
        }
    );
    println!(
        "machine: {}; load average before: {load_before}; medians of {} samples after {WARM_UP} warm-up rounds",
        machine(),
        options.samples
    );
    println!();
    print_table(&rows);

    if options.load_seconds > 0 {
        run_load(&options, &keys, &configuration).await?;
    }
    println!("\nload average after: {}", load_average());
    Ok(())
}

async fn run_load(options: &Options, keys: &BenchKeys, configuration: &[u8]) -> Result<()> {
    let upstream = load::start_upstream().await?;
    let now = now_unix_seconds();
    let tokens = (0..options.load_clients)
        .map(|client| {
            keys.sign(
                keys::Alg::Es256,
                keys::session_claims(&format!("user{client}@{ALLOWED_DOMAIN}"), now, client),
            )
        })
        .collect::<Result<Vec<_>>>()?;
    // Two VMs, as Envoy runs one per worker thread on a 2-core machine.
    let kubegate = PluginSpec {
        vms: 2,
        log_level: LogLevel::Info,
        ..plugin_spec(options, configuration, false)
    };
    let pass_through = PluginSpec {
        wasm_bytes: Some(load::PASS_THROUGH_WAT.as_bytes().to_vec()),
        vms: 2,
        print_logs: false,
        ..PluginSpec::default()
    };
    let duration = Duration::from_secs(options.load_seconds);
    let warm_up = Duration::from_secs(1);
    println!(
        "\nLoad run: {} kubectl-like clients (HTTP/2 over TLS, one connection each, requests back to back), \
         {}s each after 1s warm-up, gateway and upstream on 127.0.0.1, same process and cores as the clients.\n",
        options.load_clients, options.load_seconds
    );
    println!("| filter | requests/s | p50 ms | p99 ms | non-200 |");
    println!("|---|---:|---:|---:|---:|");
    for (label, spec) in [
        ("kubegate.wasm", kubegate),
        ("pass-through (WAT)", pass_through),
    ] {
        let gateway = load::gateway(spec, upstream).await?;
        let result = load::run(&gateway, &tokens, warm_up, duration).await?;
        gateway.shutdown().await;
        println!(
            "| {label} | {:.0} | {:.2} | {:.2} | {} |",
            result.requests_per_second(),
            result.p50.as_secs_f64() * 1e3,
            result.p99.as_secs_f64() * 1e3,
            result.errors
        );
    }
    Ok(())
}
