//! Policy parse + evaluate: any JSON policy, any facts. Never panics; evaluation is
//! deterministic; an empty policy or one without allow rules never allows.
#![no_main]

use kubegate::policy::{Facts, Policy};
use libfuzzer_sys::fuzz_target;

// The data is `policy JSON 0x00 claims JSON 0x00 method 0x00 path 0x00 email 0x00 groups`
// (groups separated by commas); missing parts are empty. Seeds: the example policies.
fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0);
    let mut next = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let (policy, claims, method, path, email, groups) =
        (next(), next(), next(), next(), next(), next());
    let Ok(value) = serde_json::from_str::<serde_json::Value>(&policy) else {
        return;
    };
    let Ok(policy) = Policy::parse(&value) else {
        return;
    };
    let claims = serde_json::from_str::<serde_json::Value>(&claims)
        .ok()
        .and_then(|v| v.as_object().cloned());
    let groups: Vec<String> = groups
        .split(',')
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect();
    // Facts grows over time; fields not set here keep their defaults.
    #[allow(clippy::needless_update)]
    let facts = Facts {
        claims: claims.as_ref(),
        user_id: claims
            .as_ref()
            .and_then(|c| c.get("sub"))
            .and_then(|v| v.as_str()),
        email: (!email.is_empty()).then_some(email.as_str()),
        groups: &groups,
        method: &method,
        path: &path,
        ..Facts::default()
    };
    let first = policy.evaluate(&facts);
    let second = policy.evaluate(&facts);
    assert_eq!(first.allowed, second.allowed);
    assert_eq!(first.reason, second.reason);
    let _ = first.reason.to_string();
    if !value.to_string().contains("allow") {
        assert!(
            !first.allowed,
            "a policy without allow rules allowed a request"
        );
    }
});
