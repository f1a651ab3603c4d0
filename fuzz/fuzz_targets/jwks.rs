//! JWKS parsing (KeySet::add_jwks): any JSON, on an empty set and on a set that already
//! holds keys. Never panics; a refused JWKS leaves the set exactly as it was; an accepted
//! one adds exactly the keys it reports.
#![no_main]

use kubegate::jwt::{KeySet, MAX_JWKS_KEYS};
use kubegate_fuzz::{HMAC_KID, HMAC_SECRET};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let mut empty = KeySet::default();
    let mut held = KeySet::default();
    held.add_hmac_secret(Some(HMAC_KID), "HS256", HMAC_SECRET)
        .expect("secret");
    for set in [&mut empty, &mut held] {
        let before = set.len();
        let kids_before: Vec<String> = set.kids().map(str::to_owned).collect();
        match set.add_jwks(&value) {
            Ok(added) => {
                assert!(added <= MAX_JWKS_KEYS);
                assert_eq!(set.len(), before + added);
            }
            Err(problem) => {
                assert!(!problem.is_empty());
                assert_eq!(set.len(), before, "a refused JWKS changed the set");
                let kids: Vec<String> = set.kids().map(str::to_owned).collect();
                assert_eq!(kids, kids_before);
            }
        }
    }
});
