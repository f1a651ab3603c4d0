//! Tells the proxy what kubegate decided, once per decided request: five filter state
//! values (`proxy_set_property`; Envoy keeps each as `wasm.<key>`, readable in access logs
//! as `%FILTER_STATE(wasm.kubegate.user:PLAIN)%`), and the decision line in the configured
//! format (src/audit.rs builds both; nothing here holds a token).

use crate::audit::{DecisionLogFormat, Reported};
use crate::config::Config;
use log::info;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;
use std::cell::RefCell;

/// Sets the filter state and logs the line, in the current (or effective) http context.
pub(super) fn report(config: &RefCell<Config>, reported: Reported<'_>) {
    for (key, value) in reported.properties() {
        // A proxy without filter state (or a stream already gone) only loses the record.
        let _ = hostcalls::set_property(vec![key], Some(value.as_bytes()));
    }
    let format = config
        .try_borrow()
        .map(|config| config.decision_log)
        .unwrap_or_default();
    match format {
        DecisionLogFormat::Text => info!("kubegate: {}", reported.text_line()),
        DecisionLogFormat::AuditJson => {
            let header = |name: &str| {
                hostcalls::get_map_value(MapType::HttpRequestHeaders, name)
                    .ok()
                    .flatten()
            };
            let path = header(":path").unwrap_or_default();
            let request_id = header("x-request-id");
            info!("{}", reported.audit_line(&path, request_id.as_deref()));
        }
    }
}
