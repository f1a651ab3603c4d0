//! A bounded cache of verified tokens, one per VM.
//!
//! kubectl repeats one token on every request of a session, and a signature check costs
//! 0.6-3 ms in wasm, so a hit skips the signature and claim parsing. Entries are keyed by
//! the SHA-256 of the token (the cache never holds a token), live no longer than the
//! token's `exp`, and the least recently used entry is evicted when the cache is full.
//! The caller still applies the time checks on every hit.

use crate::Claims;
use std::collections::HashMap;
use std::rc::Rc;

type TokenHash = [u8; 32];

struct Entry {
    claims: Rc<Claims>,
    expires_at: u64,
    last_used: u64,
}

/// Verified claims by token hash. Capacity 0 disables caching.
pub struct VerifiedTokenCache {
    entries: HashMap<TokenHash, Entry>,
    capacity: usize,
    /// A use counter: the LRU order without a linked list.
    clock: u64,
}

impl VerifiedTokenCache {
    pub fn new(capacity: usize) -> VerifiedTokenCache {
        VerifiedTokenCache {
            entries: HashMap::with_capacity(capacity.min(4096)),
            capacity,
            clock: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn hash(token: &str) -> TokenHash {
        hmac_sha256::Hash::hash(token.as_bytes())
    }

    /// The claims of `token` if it was verified before and its `exp` is still ahead of
    /// `now` (with no leeway: a cached entry never outlives the token itself).
    pub fn get(&mut self, token: &str, now: u64) -> Option<Rc<Claims>> {
        let key = Self::hash(token);
        let entry = self.entries.get_mut(&key)?;
        if entry.expires_at <= now {
            self.entries.remove(&key);
            return None;
        }
        self.clock += 1;
        entry.last_used = self.clock;
        Some(Rc::clone(&entry.claims))
    }

    /// Remembers verified claims; tokens without a numeric `exp` are not cached.
    pub fn insert(&mut self, token: &str, claims: Rc<Claims>, now: u64) {
        if self.capacity == 0 {
            return;
        }
        let Some(expires_at) = claims.get("exp").and_then(|v| v.as_u64()) else {
            return;
        };
        if expires_at <= now {
            return;
        }
        let key = Self::hash(token);
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.evict(now);
        }
        self.clock += 1;
        self.entries.insert(
            key,
            Entry {
                claims,
                expires_at,
                last_used: self.clock,
            },
        );
    }

    /// Drops expired entries; if none were, the least recently used one. A linear scan:
    /// it runs only when the cache is full, and keeps the code free of unsafe lists.
    fn evict(&mut self, now: u64) {
        let before = self.entries.len();
        self.entries.retain(|_, e| e.expires_at > now);
        if self.entries.len() < before {
            return;
        }
        if let Some(oldest) = self
            .entries
            .iter()
            .min_by_key(|(_, e)| e.last_used)
            .map(|(k, _)| *k)
        {
            self.entries.remove(&oldest);
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn claims(exp: u64) -> Rc<Claims> {
        match json!({"sub": "x", "exp": exp}) {
            serde_json::Value::Object(m) => Rc::new(m),
            _ => unreachable!(),
        }
    }

    #[test]
    fn hit_until_exp_then_gone() {
        let mut cache = VerifiedTokenCache::new(4);
        cache.insert("a.b.c", claims(100), 10);
        assert_eq!(cache.get("a.b.c", 99).unwrap()["exp"], 100);
        assert!(cache.get("a.b.c", 100).is_none());
        assert!(cache.is_empty(), "an expired entry is dropped on access");
        assert!(cache.get("other", 10).is_none());
    }

    #[test]
    fn tokens_without_exp_or_already_expired_are_not_cached() {
        let mut cache = VerifiedTokenCache::new(4);
        let no_exp = match json!({"sub": "x"}) {
            serde_json::Value::Object(m) => Rc::new(m),
            _ => unreachable!(),
        };
        cache.insert("a", no_exp, 10);
        cache.insert("b", claims(5), 10);
        assert!(cache.is_empty());
    }

    #[test]
    fn least_recently_used_is_evicted_and_size_is_bounded() {
        let mut cache = VerifiedTokenCache::new(2);
        cache.insert("a", claims(1000), 0);
        cache.insert("b", claims(1000), 0);
        assert!(cache.get("a", 1).is_some()); // b is now the least recently used
        cache.insert("c", claims(1000), 1);
        assert_eq!(cache.len(), 2);
        assert!(cache.get("b", 2).is_none());
        assert!(cache.get("a", 2).is_some());
        assert!(cache.get("c", 2).is_some());
        for i in 0..100 {
            cache.insert(&format!("t{i}"), claims(1000), 3);
        }
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn expired_entries_go_first_when_full() {
        let mut cache = VerifiedTokenCache::new(2);
        cache.insert("short", claims(20), 0);
        cache.insert("long", claims(1000), 0);
        assert!(cache.get("short", 1).is_some()); // most recently used, but expires first
        cache.insert("new", claims(1000), 30);
        assert!(cache.get("long", 31).is_some());
        assert!(cache.get("new", 31).is_some());
    }

    #[test]
    fn disabled_cache_holds_nothing() {
        let mut cache = VerifiedTokenCache::new(0);
        cache.insert("a", claims(1000), 0);
        assert!(cache.get("a", 1).is_none());
    }

    #[test]
    fn similar_tokens_do_not_collide() {
        let mut cache = VerifiedTokenCache::new(8);
        cache.insert("a.b.c", claims(1000), 0);
        assert!(cache.get("a.b.c ", 1).is_none());
        assert!(cache.get("a.b.C", 1).is_none());
    }
}
