//! `Plugin::memory_sizes`: each VM's linear memory, read without touching the filter.

mod common;

use common::{action, test_spec};
use kubegate_host::{FilterOutcome, Plugin, PluginSpec};

const PAGE: usize = 64 * 1024;

#[tokio::test]
async fn memory_sizes_reports_each_vms_linear_memory_in_whole_pages() {
    let plugin = Plugin::load(PluginSpec {
        vms: 3,
        ..test_spec("")
    })
    .unwrap();
    let before = plugin.memory_sizes().await;
    assert_eq!(before.len(), 3);
    for size in &before {
        let size = size.expect("every VM is running");
        assert!(size >= PAGE, "{size}");
        assert_eq!(size % PAGE, 0, "{size}");
    }
    // Reading is side-effect free: requests still pass and sizes never shrink.
    let outcome = plugin.handle(action("mutate")).await;
    assert!(
        matches!(outcome, FilterOutcome::Forward { .. }),
        "{outcome:?}"
    );
    let after = plugin.memory_sizes().await;
    for (b, a) in before.iter().zip(&after) {
        assert!(a.unwrap() >= b.unwrap());
    }
}
