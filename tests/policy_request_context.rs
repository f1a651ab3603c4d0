//! The request-context criteria through the public interface, the way the request path uses
//! them: a `RequestInfo` from `request_info::resolve`, the client address from Envoy's
//! `source.address` text, the proxy clock. `Policy::evaluate_with` must not allocate for any
//! of them, allowed or refused (a counting allocator, in its own test binary).

#[cfg(target_arch = "wasm32")]
use wasm_bindgen_test::wasm_bindgen_test as test;

use kubegate::policy::{source_ip_from_address, Facts, Policy, Reason, RequestContext};
use kubegate::request_info::{resolve, RequestInfo};
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

/// 2024-03-04T00:00:00Z, a Monday.
const MONDAY: u64 = 1_709_510_400;
const HOUR: u64 = 3600;

/// Every new criterion, in deny and allow rules, under every operator.
fn policy() -> Policy {
    Policy::parse(&json!([
        {"deny": {
            "or": [
                {"kubernetes_resource": "secrets"},
                {"source_ip": ["192.0.2.0/24", "2001:db8:bad::/48"]},
                {"date": {"after": "2030-01-01T00:00:00Z"}},
            ],
            "and": [
                {"kubernetes_verb": "deletecollection"},
                {"kubernetes_namespace": ""},
            ],
            // Refuse anything from outside the internal networks, and anything on Sunday.
            "nor": [
                {"source_ip": ["10.0.0.0/8", "2001:db8::/32"]},
                {"day_of_week": {"days": "mon-sat", "timezone": "+01:00"}},
            ],
        }},
        {"allow": {
            "and": [
                {"authenticated_user": true},
                {"kubernetes_verb": {"in": ["get", "list", "watch", "create"]}},
                {"kubernetes_api_group": {"in": ["", "apps"]}},
                {"kubernetes_namespace": {"starts_with": "team-", "not": "team-secret"}},
                {"kubernetes_subresource": {"in": ["", "log", "exec"]}},
                {"kubernetes_name": {"not": "forbidden-0"}},
                {"source_ip": ["10.0.0.0/8", "2001:db8::/32"]},
                {"day_of_week": {"days": "mon-fri", "timezone": "+01:00"}},
                {"time_of_day": {"timezone": "+01:00", "after": "8:00", "before": "6PM"}},
                {"date": {"after": "2024-01-01T00:00:00Z", "before": "2030-01-01T00:00:00Z"}},
            ],
            "or": [{"kubernetes_non_resource_path": {"in": ["/version", "/api", "/apis"]}}],
            // Non-resource requests over IPv6.
            "not": [{"kubernetes_resource_request": true}, {"source_ip": "0.0.0.0/0"}],
        }},
    ]))
    .expect("valid policy")
}

fn session() -> Claims {
    match json!({"sub": "u-1", "email": "a@example.com"}) {
        Value::Object(claims) => claims,
        _ => unreachable!("an object literal"),
    }
}

struct Case {
    method: &'static str,
    target: &'static str,
    source_address: &'static str,
    now: u64,
    allowed: bool,
    reason: &'static str,
}

/// Monday 10:00 at +01:00.
const TEN_AM: u64 = MONDAY + 9 * HOUR;
const DAY: u64 = 24 * HOUR;
const WEB_0: &str = "/api/v1/namespaces/team-a/pods/web-0";

const CASES: [Case; 16] = [
    Case {
        method: "GET",
        target: "/api/v1/namespaces/team-a/pods/web-0/exec?command=sh",
        source_address: "10.1.2.3:50000",
        now: TEN_AM,
        allowed: true,
        reason: "allow rule policy[1].allow matched",
    },
    Case {
        method: "GET",
        target: "/apis/apps/v1/namespaces/team-a/deployments?watch=true",
        source_address: "[2001:db8::7]:443",
        now: TEN_AM,
        allowed: true,
        reason: "allow rule policy[1].allow matched",
    },
    Case {
        method: "GET",
        target: "/api/v1/namespaces/team-a/pods/db-0/log",
        source_address: "[::ffff:10.0.0.9]:443",
        now: TEN_AM,
        allowed: true,
        reason: "allow rule policy[1].allow matched",
    },
    Case {
        method: "PATCH",
        target: "/api/v1/namespaces/team-a/pods/db-0",
        source_address: "10.1.2.3:50000",
        now: TEN_AM,
        allowed: false,
        reason: "no allow rule matched (policy[1].allow: and[1] kubernetes_verb did not hold)",
    },
    Case {
        method: "GET",
        target: "/api/v1/namespaces/team-a/secrets/x",
        source_address: "10.1.2.3:50000",
        now: TEN_AM,
        allowed: false,
        reason: "deny rule policy[0].deny matched (or[0] kubernetes_resource)",
    },
    Case {
        method: "GET",
        target: WEB_0,
        source_address: "[2001:db8:bad::1]:443",
        now: TEN_AM,
        allowed: false,
        reason: "deny rule policy[0].deny matched (or[1] source_ip)",
    },
    Case {
        method: "GET",
        target: WEB_0,
        source_address: "10.1.2.3:50000",
        // 2030-01-01T00:00:00Z exactly: `after` is inclusive.
        now: 1_893_456_000,
        allowed: false,
        reason: "deny rule policy[0].deny matched (or[2] date)",
    },
    Case {
        method: "DELETE",
        target: "/api/v1/persistentvolumes",
        source_address: "10.1.2.3:50000",
        now: TEN_AM,
        allowed: false,
        reason: "deny rule policy[0].deny matched (and: every criterion held)",
    },
    Case {
        method: "POST",
        target: "/version",
        source_address: "198.51.100.1:1234",
        now: TEN_AM,
        allowed: false,
        reason: "deny rule policy[0].deny matched (nor[0] source_ip did not hold)",
    },
    Case {
        method: "GET",
        target: WEB_0,
        source_address: "10.1.2.3:50000",
        // Sunday 10:00 at +01:00.
        now: TEN_AM - DAY,
        allowed: false,
        reason: "deny rule policy[0].deny matched (nor[1] day_of_week did not hold)",
    },
    Case {
        method: "GET",
        target: WEB_0,
        source_address: "10.1.2.3:50000",
        // Saturday: not denied, but not a weekday either.
        now: TEN_AM + 5 * DAY,
        allowed: false,
        reason: "no allow rule matched (policy[1].allow: and[7] day_of_week did not hold)",
    },
    Case {
        method: "GET",
        target: WEB_0,
        source_address: "10.1.2.3:50000",
        // 18:00:00 at +01:00: `before` is exclusive.
        now: MONDAY + 17 * HOUR,
        allowed: false,
        reason: "no allow rule matched (policy[1].allow: and[8] time_of_day did not hold)",
    },
    Case {
        method: "GET",
        target: WEB_0,
        source_address: "10.1.2.3:50000",
        now: MONDAY + 17 * HOUR - 1,
        allowed: true,
        reason: "allow rule policy[1].allow matched",
    },
    Case {
        method: "GET",
        target: "/version?timeout=5s",
        source_address: "10.1.2.3:50000",
        now: TEN_AM,
        allowed: true,
        reason: "allow rule policy[1].allow matched",
    },
    Case {
        method: "GET",
        target: "/healthz",
        source_address: "[2001:db8::1]:443",
        now: TEN_AM,
        allowed: true,
        reason: "allow rule policy[1].allow matched",
    },
    Case {
        method: "GET",
        target: "/healthz",
        source_address: "10.1.2.3:50000",
        now: TEN_AM,
        allowed: false,
        reason: "no allow rule matched (policy[1].allow: and[2] kubernetes_api_group did not hold)",
    },
];

#[test]
fn decisions_through_the_public_interface() {
    let policy = policy();
    let claims = session();
    for case in &CASES {
        let info = resolve(case.method, case.target).expect("resolvable");
        let facts = Facts {
            claims: Some(&claims),
            user_id: Some("u-1"),
            method: case.method,
            path: case.target,
            ..Facts::default()
        };
        let context = RequestContext {
            kubernetes: Some(&info),
            protocol_upgrade: false,
            source_ip: source_ip_from_address(case.source_address),
            now_unix_seconds: case.now,
        };
        let verdict = policy.evaluate_with(&facts, &context);
        assert_eq!(
            (verdict.allowed, verdict.reason.to_string().as_str()),
            (case.allowed, case.reason),
            "{} {} from {}",
            case.method,
            case.target,
            case.source_address
        );
    }
}

#[test]
fn evaluate_with_does_not_allocate() {
    let policy = policy();
    let claims = session();
    let resolved: Vec<(RequestInfo, &Case)> = CASES
        .iter()
        .map(|case| (resolve(case.method, case.target).expect("resolvable"), case))
        .collect();
    let mut outcomes = Vec::with_capacity(resolved.len() + 2);
    let count = allocations_during(|| {
        for (info, case) in &resolved {
            let facts = Facts {
                claims: Some(&claims),
                method: case.method,
                path: case.target,
                ..Facts::default()
            };
            let context = RequestContext {
                kubernetes: Some(info),
                protocol_upgrade: false,
                source_ip: source_ip_from_address(case.source_address),
                now_unix_seconds: case.now,
            };
            outcomes.push(policy.evaluate_with(&facts, &context).allowed);
        }
        // No resolved request, no client address; and the old entry point.
        let bare = RequestContext {
            kubernetes: None,
            protocol_upgrade: false,
            source_ip: None,
            now_unix_seconds: u64::MAX,
        };
        outcomes.push(policy.evaluate_with(&Facts::default(), &bare).allowed);
        outcomes.push(policy.evaluate(&Facts::default()).allowed);
    });
    let expected: Vec<bool> = CASES
        .iter()
        .map(|case| case.allowed)
        .chain([false, false])
        .collect();
    assert_eq!(outcomes, expected);
    assert_eq!(count, 0, "evaluate_with allocated {count} times");
}

/// `kubernetes_exec_class` (resolved, and from the upgrade signal) and the case-insensitive
/// `domain` and `email` comparisons allocate nothing either.
#[test]
fn exec_class_and_case_insensitive_domains_do_not_allocate() {
    let policy = Policy::parse(&json!([
        {"deny": {"or": [
            {"kubernetes_exec_class": true},
            {"domain": {"in": ["partner.example", "other.example"]}},
            {"email": {"ends_with": "@Contractors.Example.com"}},
        ]}},
        {"allow": {"and": [
            {"kubernetes_exec_class": false},
            {"domain": {"ends_with": "EXAMPLE.com"}},
            {"email": {"contains": "a@ex", "starts_with": "a@", "not": "b@example.com"}},
        ]}},
    ]))
    .expect("valid policy");
    let sessions: Vec<Claims> = [
        "a@Example.COM",
        "a@PARTNER.example",
        "A@example.com",
        "x@contractors.EXAMPLE.com",
    ]
    .iter()
    .map(|email| match json!({"sub": "u-1", "email": email}) {
        Value::Object(claims) => claims,
        _ => unreachable!("an object literal"),
    })
    .collect();
    let requests: Vec<RequestInfo> = [
        ("GET", "/api/v1/namespaces/team-a/pods"),
        ("GET", "/api/v1/nodes/n1/proxy/exec/ns/pod/c?command=sh"),
    ]
    .iter()
    .map(|(method, target)| resolve(method, target).expect("resolvable"))
    .collect();
    let mut outcomes = Vec::with_capacity(32);
    let count = allocations_during(|| {
        for claims in &sessions {
            let facts = Facts {
                claims: Some(claims),
                email: claims.get("email").and_then(Value::as_str),
                method: "GET",
                path: "/",
                ..Facts::default()
            };
            for info in &requests {
                for protocol_upgrade in [false, true] {
                    let context = RequestContext {
                        kubernetes: Some(info),
                        protocol_upgrade,
                        source_ip: None,
                        now_unix_seconds: MONDAY,
                    };
                    outcomes.push(policy.evaluate_with(&facts, &context).allowed);
                }
            }
        }
    });
    assert_eq!(count, 0, "evaluate_with allocated {count} times");
    // Only a@Example.COM listing pods without an upgrade passes; A@example.com fails the
    // exact local part.
    let expected: Vec<bool> = (0..16).map(|index| index == 0).collect();
    assert_eq!(outcomes, expected);
}

#[test]
fn evaluate_without_context_refuses_such_a_policy() {
    let verdict = policy().evaluate(&Facts::default());
    assert!(!verdict.allowed);
    assert_eq!(verdict.reason, Reason::MissingRequestContext);
    assert!(policy().needs_context());
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the test above against a counter that never counts.
    let count = allocations_during(|| drop(std::hint::black_box(vec![1u8; 16])));
    assert!(count >= 1);
}
