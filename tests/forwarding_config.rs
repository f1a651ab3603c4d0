//! The forwarding fields of the configuration: `client_impersonation`, `upstream_clusters`,
//! `strip_request_headers`, `reserved_name_prefixes`, and the warning for one route
//! without `from`.

use kubegate::config::{ClientImpersonation, Config};
use serde_json::{json, Value};

fn env(name: &str) -> Option<String> {
    (name == "KUBEGATE_SA_TOKEN").then(|| "sa".to_string())
}

fn dev() -> Value {
    serde_json::from_str(include_str!("../filter-config/dev.json")).unwrap()
}

fn parse(edit: impl FnOnce(&mut Value)) -> Result<Config, String> {
    let mut value = dev();
    edit(&mut value);
    Config::parse(value.to_string().as_bytes(), &env).map_err(|e| e.to_string())
}

#[test]
fn defaults() {
    let config = parse(|c| {
        c["routes"][0]
            .as_object_mut()
            .unwrap()
            .remove("upstream_clusters");
    })
    .unwrap();
    let route = &config.routes[0];
    assert_eq!(route.client_impersonation, ClientImpersonation::Refuse);
    assert_eq!(route.upstream_clusters, None);
    assert!(config.strip_request_headers.is_empty());
    assert_eq!(config.reserved.users, vec!["system:", "kubeadm:"]);
    assert_eq!(config.reserved.groups, vec!["system:", "kubeadm:"]);
    assert!(config
        .notes
        .iter()
        .any(|n| n.contains("routes[0] has no upstream_clusters")));
    assert!(config.warnings.is_empty());
}

#[test]
fn client_impersonation_takes_refuse_or_strip_only() {
    for (value, expected) in [
        ("refuse", ClientImpersonation::Refuse),
        ("strip", ClientImpersonation::Strip),
    ] {
        let config = parse(|c| c["routes"][0]["client_impersonation"] = json!(value)).unwrap();
        assert_eq!(config.routes[0].client_impersonation, expected);
    }
    for bad in [json!("allow"), json!("Strip"), json!(true)] {
        let error = parse(|c| c["routes"][0]["client_impersonation"] = bad.clone()).unwrap_err();
        assert!(error.contains("client_impersonation"), "{bad}: {error}");
    }
}

#[test]
fn upstream_clusters_are_names_listed_once() {
    let config = parse(|c| {
        c["routes"][0]["upstream_clusters"] = json!([
            "kube_apiserver",
            "outbound|443||kubernetes.default.svc.cluster.local"
        ])
    })
    .unwrap();
    assert_eq!(
        config.routes[0].upstream_clusters.as_ref().unwrap().len(),
        2
    );
    for (bad, field) in [
        (json!([]), "routes[0].upstream_clusters"),
        (json!([""]), "routes[0].upstream_clusters[0]"),
        (json!(["a", "a"]), "routes[0].upstream_clusters[1]"),
        (json!(["a b"]), "routes[0].upstream_clusters[0]"),
        (json!(["a\n"]), "routes[0].upstream_clusters[0]"),
    ] {
        let error = parse(|c| c["routes"][0]["upstream_clusters"] = bad.clone()).unwrap_err();
        assert!(error.starts_with(field), "{bad}: {error}");
    }
    let error =
        parse(|c| c["routes"][0]["upstream_clusters"] = json!("kube_apiserver")).unwrap_err();
    assert!(error.contains("upstream_clusters"), "{error}");
}

#[test]
fn one_route_without_from_is_a_warning() {
    let config = parse(|c| {
        c["routes"][0].as_object_mut().unwrap().remove("from");
    })
    .unwrap();
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert!(config.warnings[0].contains("routes[0] has no \"from\""));
    // Without upstream_clusters as well, the warning says that too.
    let config = parse(|c| {
        let route = c["routes"][0].as_object_mut().unwrap();
        route.remove("from");
        route.remove("upstream_clusters");
    })
    .unwrap();
    assert!(config.warnings[0].contains("set upstream_clusters"));
}

#[test]
fn strip_request_headers_are_header_names_kubegate_does_not_set() {
    let config = parse(|c| {
        c["strip_request_headers"] = json!([
            "X-Forwarded-Client-Cert",
            "x-forwarded-client-cert",
            "X-Debug"
        ])
    })
    .unwrap();
    assert_eq!(
        config.strip_request_headers,
        vec!["x-forwarded-client-cert", "x-debug"]
    );
    for bad in ["", ":path", "x debug", "x-debug\r\n", "é", "a:b"] {
        let error = parse(|c| c["strip_request_headers"] = json!([bad])).unwrap_err();
        assert!(
            error.starts_with("strip_request_headers[0]"),
            "{bad:?}: {error}"
        );
        assert!(error.contains("not a header name"), "{bad:?}: {error}");
    }
    for own in [
        "Authorization",
        "impersonate-user",
        "Impersonate-Group",
        "impersonate-extra-scopes",
        "impersonate-uid",
        "Cookie",
        "sec-websocket-protocol",
    ] {
        let error = parse(|c| c["strip_request_headers"] = json!(["x-ok", own])).unwrap_err();
        assert!(
            error.starts_with("strip_request_headers[1]"),
            "{own}: {error}"
        );
        assert!(
            error.contains("kubegate sets or rewrites"),
            "{own}: {error}"
        );
    }
}

#[test]
fn reserved_name_prefixes_replace_the_defaults_but_system_always_stays() {
    let config = parse(|c| c["reserved_name_prefixes"] = json!({"groups": ["corp:"]})).unwrap();
    assert_eq!(config.reserved.groups, vec!["system:", "corp:"]);
    assert_eq!(config.reserved.users, vec!["system:", "kubeadm:"]);
    let config =
        parse(|c| c["reserved_name_prefixes"] = json!({"users": [], "groups": []})).unwrap();
    assert_eq!(config.reserved.users, vec!["system:"]);
    assert_eq!(config.reserved.groups, vec!["system:"]);
    let config =
        parse(|c| c["reserved_name_prefixes"] = json!({"users": ["SYSTEM:", "eks:"]})).unwrap();
    assert_eq!(config.reserved.users, vec!["system:", "eks:"]);
    for (bad, field) in [
        (json!({"users": [""]}), "reserved_name_prefixes.users[0]"),
        (
            json!({"groups": ["ok:", " x"]}),
            "reserved_name_prefixes.groups[1]",
        ),
        (json!({"group": []}), "reserved_name_prefixes"),
    ] {
        let error = parse(|c| c["reserved_name_prefixes"] = bad.clone()).unwrap_err();
        assert!(error.starts_with(field), "{bad}: {error}");
    }
}

#[test]
fn every_example_binds_its_routes_to_clusters() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("filter-config");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let value: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for route in value["routes"].as_array().unwrap() {
            assert!(
                route["upstream_clusters"]
                    .as_array()
                    .is_some_and(|c| !c.is_empty()),
                "{}: a route without upstream_clusters",
                path.display()
            );
        }
    }
}
