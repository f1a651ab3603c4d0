//! The API server's request-info resolver (kubegate::request_info): any method and target.
//! Never panics; a resolved request is self-consistent: a resource request names a resource
//! and an API version (unless the path has empty segments), a non-resource one names neither, the policy verb is one RBAC knows
//! (or the lower-case method), and no field holds a `/` that could shift a policy's reading.
#![no_main]

use kubegate::request_info::resolve;
use libfuzzer_sys::fuzz_target;

const VERBS: [&str; 10] = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "proxy",
    "",
];

fuzz_target!(|input: (&str, &str)| {
    let (method, target) = input;
    let Ok(info) = resolve(method, target) else {
        return;
    };
    // `*` is the asterisk form (OPTIONS *), which Go accepts too; the gate's path judging
    // refuses it before resolving.
    assert!(info.path.starts_with('/') || info.path == "*", "{target:?}");
    if info.is_resource_request {
        // Empty segments (`//`) stay empty fields, as in kube-apiserver; the gate refuses
        // such paths before resolving.
        if !info.path.contains("//") {
            assert!(!info.resource.is_empty(), "{target:?}");
            assert!(!info.api_version.is_empty(), "{target:?}");
        }
        assert!(matches!(info.api_prefix.as_str(), "api" | "apis"));
        assert!(VERBS.contains(&info.verb.as_str()), "{:?}", info.verb);
        assert!(VERBS.contains(&info.policy_verb()), "{:?}", info.policy_verb());
        for field in [&info.resource, &info.subresource, &info.namespace, &info.api_group] {
            assert!(!field.contains('/'), "{target:?} -> {info:?}");
        }
    } else {
        assert!(info.resource.is_empty() && info.namespace.is_empty());
        assert_eq!(info.verb, method.to_ascii_lowercase());
    }
});
