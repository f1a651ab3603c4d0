//! Opt-in fuel metering: the wasm work a request costs, counted by wasmtime, so
//! benchmarks can report instructions next to time (counts are deterministic,
//! unlike time, so they can be asserted).

mod common;

use common::action;
use kubegate_host::{FilterOutcome, Plugin, PluginSpec};

/// A filter whose request callback runs a loop of `iterations` rounds.
fn looping_filter(iterations: u32) -> String {
    format!(
        r#"(module
          (memory (export "memory") 1)
          (func (export "proxy_abi_version_0_2_1"))
          (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 4096))
          (func (export "proxy_on_context_create") (param i32 i32))
          (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
            (local $left i32)
            (local.set $left (i32.const {iterations}))
            (block $done
              (loop $again
                (br_if $done (i32.eqz (local.get $left)))
                (local.set $left (i32.sub (local.get $left) (i32.const 1)))
                (br $again)))
            (i32.const 0)))"#
    )
}

fn load(iterations: u32, consume_fuel: bool) -> Plugin {
    Plugin::load(PluginSpec {
        wasm_bytes: Some(looping_filter(iterations).into_bytes()),
        print_logs: false,
        consume_fuel,
        ..PluginSpec::default()
    })
    .expect("the filter loads")
}

/// Fuel one forwarded request burns.
async fn fuel_of_one_request(plugin: &Plugin) -> u64 {
    let before = plugin.fuel_consumed().expect("metering is on");
    let outcome = plugin.handle(action("")).await;
    assert!(
        matches!(outcome, FilterOutcome::Forward { .. }),
        "{outcome:?}"
    );
    plugin.fuel_consumed().expect("metering is on") - before
}

#[tokio::test]
async fn without_the_option_nothing_is_metered() {
    let plugin = load(10, false);
    assert!(matches!(
        plugin.handle(action("")).await,
        FilterOutcome::Forward { .. }
    ));
    assert_eq!(plugin.fuel_consumed(), None);
}

#[tokio::test]
async fn fuel_counts_the_instructions_a_request_runs() {
    let short = load(10, true);
    let long = load(10_010, true);
    let short_cost = fuel_of_one_request(&short).await;
    let long_cost = fuel_of_one_request(&long).await;
    assert!(short_cost > 0);
    // Every round runs the same handful of instructions (test, branch, subtract,
    // jump): 10,000 more rounds cost a whole multiple of 10,000 more fuel.
    let extra = long_cost - short_cost;
    assert_eq!(extra % 10_000, 0, "{short_cost} vs {long_cost}");
    assert!((3..=10).contains(&(extra / 10_000)), "{extra}");
    // The same request costs the same fuel every time.
    assert_eq!(fuel_of_one_request(&long).await, long_cost);
}
