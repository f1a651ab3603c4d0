//! Shared key/value data and shared queues: one store per plugin (per vm_id in
//! Envoy), visible to every VM instance and kept across reconfiguration.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// A compare-and-swap failure, mapped to `CasMismatch` by the hostcall.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SharedDataError {
    CasMismatch,
}

pub(crate) struct SharedData {
    inner: Mutex<SharedDataInner>,
}

struct SharedDataInner {
    entries: HashMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
}

impl Default for SharedData {
    fn default() -> SharedData {
        SharedData {
            inner: Mutex::new(SharedDataInner {
                entries: HashMap::new(),
                next_cas: 1,
            }),
        }
    }
}

impl SharedDataInner {
    /// CAS values start at 1 and skip 0 on wrap (proxy-wasm-cpp-host `nextCas`).
    fn next_cas(&mut self) -> u32 {
        let cas = self.next_cas;
        self.next_cas = self.next_cas.wrapping_add(1);
        if self.next_cas == 0 {
            self.next_cas = 1;
        }
        cas
    }
}

impl SharedData {
    pub(crate) fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .get(key)
            .cloned()
    }

    /// Sets `key`; a non-zero `cas` must match the stored one (a missing key
    /// accepts any cas, as in proxy-wasm-cpp-host).
    pub(crate) fn set(&self, key: &str, value: &[u8], cas: u32) -> Result<(), SharedDataError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, current)) = inner.entries.get(key) {
            if cas != 0 && cas != *current {
                return Err(SharedDataError::CasMismatch);
            }
        }
        let next = inner.next_cas();
        inner
            .entries
            .insert(key.to_string(), (value.to_vec(), next));
        Ok(())
    }

    pub(crate) fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entries
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    }
}

/// Who is told when an item arrives: a VM worker and its root context.
pub(crate) type QueueOwner = Box<dyn Fn(u32) + Send + Sync>;

struct Queue {
    items: VecDeque<Vec<u8>>,
    owner: QueueOwner,
}

#[derive(Default)]
pub(crate) struct SharedQueues {
    inner: Mutex<QueuesInner>,
}

#[derive(Default)]
struct QueuesInner {
    by_name: HashMap<(String, String), u32>,
    queues: HashMap<u32, Queue>,
    next_token: u32,
}

const MAX_QUEUE_ITEMS: usize = 10_000;

impl SharedQueues {
    /// Registers (or takes over) the queue `name` of `vm_id`; returns its token.
    pub(crate) fn register(&self, vm_id: &str, name: &str, owner: QueueOwner) -> u32 {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let key = (vm_id.to_string(), name.to_string());
        if let Some(token) = inner.by_name.get(&key).copied() {
            if let Some(queue) = inner.queues.get_mut(&token) {
                queue.owner = owner;
            }
            return token;
        }
        inner.next_token += 1;
        let token = inner.next_token;
        inner.by_name.insert(key, token);
        inner.queues.insert(
            token,
            Queue {
                items: VecDeque::new(),
                owner,
            },
        );
        token
    }

    pub(crate) fn resolve(&self, vm_id: &str, name: &str) -> Option<u32> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .by_name
            .get(&(vm_id.to_string(), name.to_string()))
            .copied()
    }

    /// Adds an item and tells the owner (`on_queue_ready`). `None`: unknown token.
    pub(crate) fn enqueue(&self, token: u32, item: Vec<u8>) -> Option<()> {
        let inner = &mut *self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let queue = inner.queues.get_mut(&token)?;
        if queue.items.len() >= MAX_QUEUE_ITEMS {
            queue.items.pop_front();
        }
        queue.items.push_back(item);
        (queue.owner)(token);
        Some(())
    }

    /// `Err(())`: unknown token; `Ok(None)`: empty.
    pub(crate) fn dequeue(&self, token: u32) -> Result<Option<Vec<u8>>, ()> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let queue = inner.queues.get_mut(&token).ok_or(())?;
        Ok(queue.items.pop_front())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_must_match_once_a_key_exists() {
        let data = SharedData::default();
        data.set("k", b"v1", 77).unwrap();
        let (_, cas) = data.get("k").unwrap();
        assert_eq!(
            data.set("k", b"v2", cas + 1),
            Err(SharedDataError::CasMismatch)
        );
        data.set("k", b"v2", cas).unwrap();
        assert_eq!(data.set("k", b"v3", cas), Err(SharedDataError::CasMismatch));
        data.set("k", b"v4", 0).unwrap();
        assert_eq!(data.get("k").unwrap().0, b"v4");
    }

    #[test]
    fn queues_notify_their_owner() {
        let queues = SharedQueues::default();
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let token = queues.register("vm", "q", Box::new(move |t| sink.lock().unwrap().push(t)));
        assert_eq!(queues.resolve("vm", "q"), Some(token));
        assert_eq!(queues.resolve("other", "q"), None);
        assert_eq!(queues.dequeue(token), Ok(None));
        queues.enqueue(token, b"x".to_vec()).unwrap();
        assert_eq!(*seen.lock().unwrap(), vec![token]);
        assert_eq!(queues.dequeue(token), Ok(Some(b"x".to_vec())));
        assert_eq!(queues.dequeue(token + 1), Err(()));
    }
}
