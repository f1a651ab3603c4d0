//! `Policy::evaluate` runs once per request: it must not allocate. A counting
//! allocator (its own test binary, so no other test sees it) proves that for
//! every criterion and operator, allowed and refused alike.

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use kubegate::policy::{Facts, Policy};
use kubegate::Claims;
use serde_json::{json, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// thread-local counter is const-initialised, so counting never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

fn allocations_during(work: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    work();
    ALLOCATIONS.with(Cell::get) - before
}

fn every_criterion() -> Value {
    json!([
        {"deny": {
            "or": [
                {"reject": true},
                {"email": {"ends_with": ".contractor@example.com"}},
                {"http_path": {"contains": "/secrets"}},
            ],
            "not": [{"authenticated_user": true}],
            "nor": [{"claim/verified": true}, {"accept": true}],
        }},
        {"allow": {
            "and": [
                {"authenticated_user": true},
                {"domain": {"in": ["example.com", "example.org"]}},
                {"groups": {"has": "devs", "exclude": "suspended"}},
                {"claim/realm_access/roles": "operator"},
                {"claim/level": 3},
                {"user": {"starts_with": "user-", "not": "user-0"}},
            ],
            "or": [{"http_method": {"is": "GET", "not": "POST"}}, {"groups": {"is": "admins"}}],
        }},
    ])
}

#[test]
fn evaluate_does_not_allocate() {
    let policy = Policy::parse(&every_criterion()).expect("valid policy");
    let claims: Claims = match json!({
        "sub": "user-1",
        "email": "alice@example.com",
        "groups": ["devs"],
        "realm_access": {"roles": ["operator"]},
        "level": 3,
        "verified": true,
    }) {
        Value::Object(claims) => claims,
        _ => unreachable!("an object literal"),
    };
    let groups = vec!["devs".to_string()];
    let signed_in = Facts {
        claims: Some(&claims),
        user_id: Some("user-1"),
        email: Some("alice@example.com"),
        groups: &groups,
        method: "GET",
        path: "/api/v1/namespaces/default/pods",
    };
    let secrets = Facts {
        path: "/api/v1/namespaces/default/secrets",
        ..signed_in
    };
    let anonymous = Facts {
        method: "GET",
        path: "/api",
        ..Facts::default()
    };

    let mut outcomes = Vec::with_capacity(3);
    let count = allocations_during(|| {
        for facts in [&signed_in, &secrets, &anonymous] {
            outcomes.push(policy.evaluate(facts).allowed);
        }
    });
    assert_eq!(outcomes, [true, false, false]);
    assert_eq!(count, 0, "evaluate allocated {count} times");
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the test above against a counter that never counts.
    let count = allocations_during(|| drop(std::hint::black_box(vec![1u8; 16])));
    assert!(count >= 1);
}
