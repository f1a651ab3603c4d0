//! Requests paused until a key set they need arrives. Bounded, so a flood of tokens with
//! unknown keys cannot grow a VM's memory; a request whose client left is removed by its
//! context when the proxy deletes it.

/// One paused request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiter {
    /// The proxy's http context id (the root re-runs the decision in it).
    pub context_id: u32,
    /// When it stops waiting whatever happens (the proxy's clock, ms).
    pub deadline_ms: u64,
    /// `FetchState::attempts` when it started: a later value means a fetch finished.
    pub attempts_seen: u64,
}

/// The paused requests of one VM.
#[derive(Debug)]
pub struct WaitingList {
    waiters: Vec<Waiter>,
    capacity: usize,
}

/// Refused: the list is full (the caller answers 503 instead of waiting).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full;

/// More paused requests than a VM ever needs in a key rotation; beyond it, waiting more
/// would only hold memory for a fetch that serves them all the same.
pub const DEFAULT_CAPACITY: usize = 1024;

impl Default for WaitingList {
    fn default() -> WaitingList {
        WaitingList::new(DEFAULT_CAPACITY)
    }
}

impl WaitingList {
    pub fn new(capacity: usize) -> WaitingList {
        WaitingList {
            waiters: Vec::new(),
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.waiters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiters.is_empty()
    }

    /// Adds a waiter (replacing one with the same context id).
    pub fn push(&mut self, waiter: Waiter) -> Result<(), Full> {
        self.remove(waiter.context_id);
        if self.waiters.len() >= self.capacity {
            return Err(Full);
        }
        self.waiters.push(waiter);
        Ok(())
    }

    /// Forgets a request (its client went away, or it was answered).
    pub fn remove(&mut self, context_id: u32) {
        self.waiters.retain(|w| w.context_id != context_id);
    }

    /// Takes the requests that should be decided now, in arrival order: a fetch finished
    /// since they started waiting, their deadline passed, or no fetch is running that
    /// could still help them.
    pub fn take_ready(&mut self, now_ms: u64, attempts: u64, fetch_running: bool) -> Vec<u32> {
        let mut ready = Vec::new();
        self.waiters.retain(|w| {
            let done = attempts != w.attempts_seen || now_ms >= w.deadline_ms || !fetch_running;
            if done {
                ready.push(w.context_id);
            }
            !done
        });
        ready
    }

    /// Takes every waiter (reconfiguration, shutdown).
    pub fn take_all(&mut self) -> Vec<u32> {
        self.waiters.drain(..).map(|w| w.context_id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn waiter(context_id: u32, deadline_ms: u64, attempts_seen: u64) -> Waiter {
        Waiter {
            context_id,
            deadline_ms,
            attempts_seen,
        }
    }

    #[test]
    fn waiters_wake_when_a_fetch_finishes_their_time_is_up_or_nothing_runs() {
        let mut list = WaitingList::new(8);
        list.push(waiter(1, 100, 3)).unwrap();
        list.push(waiter(2, 200, 4)).unwrap();
        list.push(waiter(3, 300, 4)).unwrap();
        assert!(
            list.take_ready(50, 4, true).contains(&1),
            "attempt 4 finished after 1 began"
        );
        assert_eq!(list.take_ready(50, 4, true), Vec::<u32>::new());
        assert_eq!(list.take_ready(200, 4, true), vec![2], "deadline");
        assert_eq!(
            list.take_ready(201, 4, false),
            vec![3],
            "nothing left to wait for"
        );
        assert!(list.is_empty());
    }

    #[test]
    fn the_list_is_bounded_and_gone_clients_are_removed() {
        let mut list = WaitingList::new(2);
        list.push(waiter(1, 100, 0)).unwrap();
        list.push(waiter(2, 100, 0)).unwrap();
        assert_eq!(list.push(waiter(3, 100, 0)), Err(Full));
        list.push(waiter(2, 150, 0))
            .expect("the same context replaces itself");
        list.remove(1);
        list.remove(99);
        assert_eq!(list.len(), 1);
        list.push(waiter(3, 100, 0)).unwrap();
        assert_eq!(list.take_all(), vec![2, 3]);
        assert!(list.is_empty());
    }
}
