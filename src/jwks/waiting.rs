//! Requests paused until a key set they need arrives. Bounded, so a flood of tokens with
//! unknown keys cannot grow a VM's memory; a request whose client left is removed by its
//! context when the proxy deletes it. Each waits for one set (its token's issuer's), and
//! only that set's fetches and deadlines release it.

/// One paused request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiter {
    /// The proxy's http context id (the root re-runs the decision in it).
    pub context_id: u32,
    /// The set it waits for (`RemoteJwksSettings::source_id`).
    pub set: u64,
    /// When it stops waiting whatever happens (the proxy's clock, ms).
    pub deadline_ms: u64,
    /// `FetchState::attempts` of its set when it started: a later value means a fetch
    /// of that set finished.
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

    /// Whether a request waits for `set`.
    pub fn waits_for(&self, set: u64) -> bool {
        self.waiters.iter().any(|w| w.set == set)
    }

    /// Takes the requests waiting for `set` that should be decided now, in arrival order:
    /// a fetch of it finished since they started waiting, their deadline passed, or no
    /// fetch of it is running that could still help them.
    pub fn take_ready(
        &mut self,
        set: u64,
        now_ms: u64,
        attempts: u64,
        fetch_running: bool,
    ) -> Vec<u32> {
        let mut ready = Vec::new();
        self.waiters.retain(|w| {
            let done = w.set == set
                && (attempts != w.attempts_seen || now_ms >= w.deadline_ms || !fetch_running);
            if done {
                ready.push(w.context_id);
            }
            !done
        });
        ready
    }

    /// Takes the requests waiting for a set not in `sets` (a new configuration no longer
    /// fetches it: nothing would release them).
    pub fn take_other_sets(&mut self, sets: &[u64]) -> Vec<u32> {
        let mut taken = Vec::new();
        self.waiters.retain(|w| {
            let other = !sets.contains(&w.set);
            if other {
                taken.push(w.context_id);
            }
            !other
        });
        taken
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

    const SET: u64 = 7;

    fn waiter(context_id: u32, deadline_ms: u64, attempts_seen: u64) -> Waiter {
        Waiter {
            context_id,
            set: SET,
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
            list.take_ready(SET, 50, 4, true).contains(&1),
            "attempt 4 finished after 1 began"
        );
        assert_eq!(list.take_ready(SET, 50, 4, true), Vec::<u32>::new());
        assert_eq!(list.take_ready(SET, 200, 4, true), vec![2], "deadline");
        assert_eq!(
            list.take_ready(SET, 201, 4, false),
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

    #[test]
    fn only_the_set_a_request_waits_for_releases_it() {
        let mut list = WaitingList::new(8);
        list.push(waiter(1, 100, 0)).unwrap();
        list.push(Waiter {
            set: 9,
            ..waiter(2, 100, 0)
        })
        .unwrap();
        assert!(list.waits_for(SET) && list.waits_for(9) && !list.waits_for(8));
        // Set 9's fetch finished, or nothing runs for it: only request 2 is released.
        assert_eq!(list.take_ready(9, 50, 1, false), vec![2]);
        assert!(!list.waits_for(9));
        assert_eq!(list.take_ready(9, 500, 1, false), Vec::<u32>::new());
        list.push(Waiter {
            set: 9,
            ..waiter(3, 100, 0)
        })
        .unwrap();
        // A configuration that fetches only set 9 releases the others.
        assert_eq!(list.take_other_sets(&[9]), vec![1]);
        assert_eq!(list.take_other_sets(&[]), vec![3]);
        assert!(list.is_empty());
    }
}
