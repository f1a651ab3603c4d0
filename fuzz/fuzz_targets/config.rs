//! Configuration parsing (Config::parse): any bytes. Never panics; an accepted
//! configuration always has a route, a key (inline or remote), issuers and audiences, and
//! bounded limits; a refusal names a problem.
#![no_main]

use kubegate::config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let env = |name: &str| match name {
        "KUBEGATE_SA_TOKEN" => Some("sa-token-from-env".to_string()),
        "HMAC_SECRET" => Some("a3ViZWdhdGUtZnV6ei1zZWNyZXQtMDEyMzQ1Njc4OWE=".to_string()),
        _ => None,
    };
    match Config::parse(data, &env) {
        Ok(config) => {
            assert!(!config.routes.is_empty());
            assert!(!config.keys.is_empty() || config.remote_jwks.is_some());
            assert!(!config.claim_rules.issuers.is_empty());
            assert!(!config.claim_rules.audiences.is_empty());
            assert!(config.claim_rules.max_token_bytes >= 1);
            assert!(config.claim_rules.max_token_bytes <= 64 * 1024);
            assert!(config.claim_rules.leeway_seconds <= 600);
            assert!(config.cache_entries <= 100_000);
            assert!(!config.token_sources.is_empty());
            for route in &config.routes {
                let token = route.service_account_token();
                assert!(!token.is_empty());
                assert!(token.bytes().all(|b| (0x21..=0x7e).contains(&b)));
            }
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});
