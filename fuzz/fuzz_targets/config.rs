//! Configuration parsing (Config::parse): any bytes. Never panics; an accepted
//! configuration always has a route and at least one authenticator, each for one issuer
//! (no two alike) with audiences, a key (inline or remote) and token sources drawn from the
//! shared list; limits are bounded; a refusal names a problem.
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
            assert!(config.max_token_bytes >= 1);
            assert!(config.max_token_bytes <= 64 * 1024);
            assert!(config.cache_entries <= 100_000);
            assert!(!config.token_sources.is_empty());
            assert!(!config.authenticators.is_empty());
            // The API server allows at most 64 JWT authenticators, and so does kubegate.
            assert!(config.authenticators.len() <= 64);
            for (i, authn) in config.authenticators.iter().enumerate() {
                assert!(!authn.issuer.is_empty());
                assert!(
                    config.authenticators[..i]
                        .iter()
                        .all(|other| other.issuer != authn.issuer),
                    "two authenticators for {:?}",
                    authn.issuer
                );
                assert!(!authn.keys.is_empty() || authn.remote.is_some());
                let rules = &authn.claim_rules;
                assert_eq!(rules.issuers, vec![authn.issuer.clone()]);
                assert!(!rules.audiences.is_empty());
                assert!(rules.audiences.iter().all(|a| !a.is_empty()));
                assert_eq!(rules.max_token_bytes, config.max_token_bytes);
                assert!(rules.leeway_seconds <= 600);
                assert!(!authn.sources.is_empty());
                for (j, source) in authn.sources.iter().enumerate() {
                    assert!(*source < config.token_sources.len());
                    assert!(!authn.sources[..j].contains(source));
                }
            }
            for route in &config.routes {
                let token = route.service_account_token();
                assert!(!token.is_empty());
                assert!(token.bytes().all(|b| (0x21..=0x7e).contains(&b)));
            }
        }
        Err(error) => assert!(!error.to_string().is_empty()),
    }
});
