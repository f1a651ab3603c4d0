//! Tells the proxy what kubegate decided, once per decided request: five filter state
//! values (`proxy_set_property`; Envoy keeps each as `wasm.<key>`, readable in access logs
//! as `%FILTER_STATE(wasm.kubegate.user:PLAIN)%`), and the decision line in the configured
//! format (src/audit.rs builds both; nothing here holds a token).

use super::abi;
use crate::audit::{DecisionLogFormat, Reported};
use crate::config::Config;
use crate::gate::Kind;
use log::{error, info};
use std::cell::RefCell;

/// Sets the filter state and logs the line, in the current (or effective) http context.
/// Every hostcall here may fail without consequence for the decision: a proxy without
/// filter state (or a stream already gone) only loses the record.
pub(super) fn report(config: &RefCell<Config>, reported: Reported<'_>) {
    for (key, value) in reported.properties() {
        let _ = abi::set_property(&[key], value.as_bytes());
    }
    let format = config
        .try_borrow()
        .map(|config| config.decision_log)
        .unwrap_or_default();
    let line = match format {
        DecisionLogFormat::Text => format!("kubegate: {}", reported.text_line()),
        DecisionLogFormat::AuditJson => {
            let headers = abi::header_pairs(abi::REQUEST_HEADERS).unwrap_or_default();
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            };
            let path = header(":path").unwrap_or_default();
            reported.audit_line(&path, header("x-request-id").as_deref())
        }
    };
    // A request the gateway could not prepare is the operator's problem: an error line.
    if reported.log.kind == Kind::Internal {
        error!("{line}");
    } else {
        info!("{line}");
    }
}
