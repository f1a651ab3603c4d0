//! kubegate picks the route Envoy picks the virtual host by, or refuses.
//!
//! `envoy_virtual_host` restates Envoy's virtual-host selection
//! (source/common/router/config_impl.cc, `RouteMatcher::findVirtualHost`; route.proto,
//! `VirtualHost.domains`): the Host lower-cased and matched with its port against exact
//! domains, then suffix wildcards (`*.example.com`, longest first), then prefix wildcards
//! (`example.*`, longest first), then `*`; a wildcard never matches the empty string. Each
//! example in filter-config/ is checked against the Envoy domains its `from` stands for
//! (README, "Hosts"), and the configurations in envoy-examples/ against their own domains.
//! The last test does the same through the real kubegate.wasm for multi-cluster.json.

mod common;

use common::{example_config, spec};
use kubegate::route::{HostPattern, RouteTable};
use kubegate_host::{FilterOutcome, FilterRequest, Plugin, PluginSpec};
use kubegate_testkit::tokens::{now, SessionClaims, Signer};
use std::path::Path;

/// The index of the virtual host Envoy picks for `host` among `virtual_hosts` (each a list of
/// domains), or `None` (Envoy's 404 `NR`).
fn envoy_virtual_host(virtual_hosts: &[Vec<String>], host: &str) -> Option<usize> {
    let host = host.to_ascii_lowercase();
    let domains = || {
        virtual_hosts
            .iter()
            .enumerate()
            .flat_map(|(index, domains)| {
                domains
                    .iter()
                    .map(move |domain| (index, domain.to_ascii_lowercase()))
            })
    };
    if let Some((index, _)) = domains().find(|(_, domain)| !domain.contains('*') && *domain == host)
    {
        return Some(index);
    }
    let longest = |matches: &dyn Fn(&str) -> Option<usize>| {
        domains()
            .filter_map(|(index, domain)| matches(&domain).map(|length| (length, index)))
            .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
            .map(|(_, index)| index)
    };
    let suffix = longest(&|domain: &str| {
        let suffix = domain.strip_prefix('*').filter(|s| !s.is_empty())?;
        (host.len() > suffix.len() && host.ends_with(suffix)).then_some(suffix.len())
    });
    if suffix.is_some() {
        return suffix;
    }
    let prefix = longest(&|domain: &str| {
        let prefix = domain.strip_suffix('*').filter(|p| !p.is_empty())?;
        (host.len() > prefix.len() && host.starts_with(prefix)).then_some(prefix.len())
    });
    if prefix.is_some() {
        return prefix;
    }
    domains()
        .find(|(_, domain)| domain == "*")
        .map(|(index, _)| index)
}

/// The Envoy domains a `from` stands for (README, "Hosts").
fn envoy_domains(from: Option<&str>) -> Vec<String> {
    let Some(from) = from else {
        return vec!["*".to_string()];
    };
    let authority = from
        .split_once("://")
        .map_or(from, |(_, rest)| rest)
        .trim_end_matches('/')
        .to_ascii_lowercase();
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()))
        && !authority.ends_with(']');
    if has_port || authority.starts_with('*') {
        vec![authority]
    } else {
        vec![authority.clone(), format!("{authority}:*")]
    }
}

/// Authorities worth trying for these patterns: each name as is, in upper case, with ports,
/// a trailing dot, an empty port, a subdomain, a parent and a stranger.
fn authorities(froms: &[Option<String>]) -> Vec<String> {
    let mut names = vec![
        "evil.example".to_string(),
        "localhost".to_string(),
        "k8s.example.com".to_string(),
    ];
    for from in froms.iter().flatten() {
        let host = from
            .split_once("://")
            .map_or(from.as_str(), |(_, rest)| rest)
            .trim_end_matches('/');
        let host = host.rsplit_once(':').map_or(host, |(name, _)| name);
        let name = host.trim_start_matches("*.");
        names.push(name.to_string());
        names.push(format!("a.{name}"));
        names.push(format!("a.b.{name}"));
        if let Some((_, parent)) = name.split_once('.') {
            names.push(parent.to_string());
        }
    }
    let mut authorities = Vec::new();
    for name in names {
        for variant in [
            name.clone(),
            name.to_ascii_uppercase(),
            format!("{name}."),
            format!("{name}:443"),
            format!("{name}:8443"),
            format!("{name}:"),
            format!("{name}.:443"),
            format!("{name}:x"),
        ] {
            authorities.push(variant);
        }
    }
    authorities
}

/// kubegate agrees with Envoy, except that it refuses a port that is empty or not a number
/// (Envoy's `host:*` would match it): a refusal where they could differ.
fn assert_agrees(kubegate: Option<usize>, envoy: Option<usize>, what: &str) {
    let malformed_port = what.ends_with(":\"") || what.ends_with(":x\"");
    if malformed_port {
        assert_eq!(kubegate, None, "{what}");
    } else {
        assert_eq!(kubegate, envoy, "{what}");
    }
}

fn kubegate_route(froms: &[Option<String>], authority: &str) -> Option<usize> {
    let table = RouteTable::new(froms.iter().map(|from| match from {
        Some(from) => HostPattern::parse(from).expect("the example's from parses"),
        None => HostPattern::Any,
    }));
    table.find(authority)
}

fn example_froms(name: &str) -> Vec<Option<String>> {
    example_config(name)["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|route| route["from"].as_str().map(str::to_string))
        .collect()
}

fn example_names() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("filter-config");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().to_string())
        .filter(|name| name.ends_with(".json"))
        .collect();
    names.sort();
    names
}

#[test]
fn every_filter_config_example_picks_the_route_envoy_picks() {
    for name in example_names() {
        let froms = example_froms(&name);
        let virtual_hosts: Vec<Vec<String>> = froms
            .iter()
            .map(|from| envoy_domains(from.as_deref()))
            .collect();
        for authority in authorities(&froms) {
            assert_agrees(
                kubegate_route(&froms, &authority),
                envoy_virtual_host(&virtual_hosts, &authority),
                &format!("{name} ({virtual_hosts:?}): {authority:?}"),
            );
        }
    }
}

/// Authorities and the route each must pick (by its `from`), or `None` for a refusal.
type RouteTableCase = &'static [(&'static str, Option<&'static str>)];

/// The expected route (by its `from`) or refusal (`None`), per example.
#[test]
fn each_example_routes_this_table() {
    let tables: [(&str, RouteTableCase); 4] = [
        (
            "dev.json",
            &[
                ("localhost", Some("https://localhost")),
                ("localhost:8443", Some("https://localhost")),
                ("LOCALHOST:443", Some("https://localhost")),
                ("localhost.", None),
                ("localhost.:8443", None),
                ("localhost:", None),
                ("a.localhost", None),
                ("127.0.0.1:8443", None),
            ],
        ),
        (
            "pomerium.json",
            &[
                (
                    "k8s.localhost.pomerium.io",
                    Some("https://k8s.localhost.pomerium.io"),
                ),
                (
                    "k8s.localhost.pomerium.io:443",
                    Some("https://k8s.localhost.pomerium.io"),
                ),
                (
                    "K8S.Localhost.Pomerium.IO:8443",
                    Some("https://k8s.localhost.pomerium.io"),
                ),
                ("k8s.localhost.pomerium.io.", None),
                ("x.k8s.localhost.pomerium.io", None),
                ("localhost.pomerium.io", None),
            ],
        ),
        (
            "multi-cluster.json",
            &[
                ("prod.k8s.example.com", Some("https://prod.k8s.example.com")),
                (
                    "prod.k8s.example.com:6443",
                    Some("https://prod.k8s.example.com"),
                ),
                ("prod.k8s.example.com.", None),
                (
                    "eu.dev.k8s.example.com",
                    Some("https://*.dev.k8s.example.com"),
                ),
                (
                    "a.b.dev.k8s.example.com",
                    Some("https://*.dev.k8s.example.com"),
                ),
                (
                    "EU.DEV.k8s.example.com",
                    Some("https://*.dev.k8s.example.com"),
                ),
                // Envoy's *.dev.k8s.example.com does not match a Host with a port.
                ("eu.dev.k8s.example.com:443", None),
                ("eu.dev.k8s.example.com.", None),
                ("dev.k8s.example.com", None),
                ("k8s.example.com", None),
                // Not the dev wildcard: a prod subdomain is another name.
                ("x.prod.k8s.example.com", None),
            ],
        ),
        (
            "oidc-kubelogin.json",
            &[
                ("k8s.example.com", Some("https://k8s.example.com")),
                ("k8s.example.com:443", Some("https://k8s.example.com")),
                ("k8s.example.com.", None),
                ("k8s.example.com.evil.example", None),
            ],
        ),
    ];
    for (name, table) in tables {
        let froms = example_froms(name);
        for (authority, expected) in table {
            let picked = kubegate_route(&froms, authority)
                .map(|index| froms[index].as_deref().unwrap_or("*"));
            assert_eq!(picked, *expected, "{name}: {authority:?}");
        }
    }
}

/// The quoted strings of a YAML flow list on the line after `key:`.
fn flow_list(line: &str, key: &str) -> Option<Vec<String>> {
    let list = line.trim().strip_prefix(key)?.trim();
    let list = list.strip_prefix('[')?.strip_suffix(']')?;
    Some(
        list.split(',')
            .map(|item| item.trim().trim_matches('"').to_string())
            .collect(),
    )
}

/// The `from` of every kubegate route in a YAML file (JSON in a string, or YAML).
fn froms_in(text: &str) -> Vec<Option<String>> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim().trim_start_matches("- ");
            let value = line
                .strip_prefix("\"from\": \"")
                .map(|rest| rest.split('"').next().unwrap_or_default())
                .or_else(|| line.strip_prefix("from: "))?;
            value.starts_with("http").then(|| Some(value.to_string()))
        })
        .collect()
}

#[test]
fn envoy_and_istio_examples_pick_the_route_their_proxy_picks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("envoy-examples");
    let mut checked = 0;
    for file in [
        "in-cluster.yaml",
        "local-standin.yaml",
        "local-standin-skip-verify.yaml",
    ] {
        let text = std::fs::read_to_string(root.join("envoy").join(file)).unwrap();
        let virtual_hosts: Vec<Vec<String>> = text
            .lines()
            .filter_map(|line| flow_list(line, "domains:"))
            .collect();
        let froms = froms_in(&text);
        assert_eq!(virtual_hosts.len(), 1, "{file}: one virtual host");
        assert_eq!(froms.len(), 1, "{file}: one kubegate route");
        for authority in authorities(&froms) {
            // Every virtual host leads to the one API server, so only "a route or none" must
            // agree; with one route of each that is the index.
            assert_agrees(
                kubegate_route(&froms, &authority),
                envoy_virtual_host(&virtual_hosts, &authority),
                &format!("{file}: {authority:?}"),
            );
        }
        checked += 1;
    }
    // Istio: a Gateway server's host becomes the domains "host" and "host:*"
    // (pilot/pkg/networking/core/gateway.go, buildGatewayVirtualHostDomains; a wildcard host
    // gets "*.x" and "*.x:PORT" instead).
    let gateway = std::fs::read_to_string(root.join("istio/gateway.yaml")).unwrap();
    let plugin = std::fs::read_to_string(root.join("istio/wasmplugin.yaml")).unwrap();
    let hosts = gateway
        .lines()
        .find_map(|line| flow_list(line, "hosts:"))
        .expect("the Gateway's hosts");
    let virtual_hosts = vec![hosts
        .iter()
        .flat_map(|host| [host.clone(), format!("{host}:*")])
        .collect::<Vec<_>>()];
    let froms = froms_in(&plugin);
    assert_eq!(froms.len(), 1, "wasmplugin.yaml: one kubegate route");
    for authority in authorities(&froms) {
        assert_agrees(
            kubegate_route(&froms, &authority),
            envoy_virtual_host(&virtual_hosts, &authority),
            &format!("istio: {authority:?}"),
        );
    }
    assert_eq!(checked, 3);

    // Envoy Gateway: an HTTPRoute's hostnames become a virtual host's domains, and Envoy
    // Gateway sets ignore_port_in_host_matching, so a numeric port is dropped before matching.
    let gateway = std::fs::read_to_string(root.join("envoy-gateway/gateway.yaml")).unwrap();
    let policy = std::fs::read_to_string(root.join("envoy-gateway/extension-policy.yaml")).unwrap();
    let hostnames = gateway
        .lines()
        .find_map(|line| flow_list(line, "hostnames:"))
        .expect("the HTTPRoute's hostnames");
    let virtual_hosts = vec![hostnames];
    let froms = froms_in(&policy);
    assert_eq!(froms.len(), 1, "extension-policy.yaml: one kubegate route");
    for authority in authorities(&froms) {
        let without_port = match authority.rsplit_once(':') {
            Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                host
            }
            _ => authority.as_str(),
        };
        assert_agrees(
            kubegate_route(&froms, &authority),
            envoy_virtual_host(&virtual_hosts, without_port),
            &format!("envoy gateway: {authority:?}"),
        );
    }
}

#[test]
fn the_reference_follows_envoys_order() {
    let vhosts = |domains: &[&[&str]]| -> Vec<Vec<String>> {
        domains
            .iter()
            .map(|d| d.iter().map(|s| s.to_string()).collect())
            .collect()
    };
    let v = vhosts(&[&["api.example.com"], &["*.example.com"], &["api.*"], &["*"]]);
    assert_eq!(envoy_virtual_host(&v, "API.example.com"), Some(0));
    assert_eq!(envoy_virtual_host(&v, "x.example.com"), Some(1));
    assert_eq!(envoy_virtual_host(&v, "api.example.com:443"), Some(2));
    assert_eq!(envoy_virtual_host(&v, "api.example.com."), Some(2));
    assert_eq!(envoy_virtual_host(&v, "example.com"), Some(3));
    let v = vhosts(&[&["*.example.com"], &["*.a.example.com"]]);
    assert_eq!(envoy_virtual_host(&v, "x.a.example.com"), Some(1));
    assert_eq!(envoy_virtual_host(&v, ".example.com"), None);
}

/// Through the module: the route decides which service-account token goes upstream, so a
/// Host must never pick a route Envoy would not forward by.
#[tokio::test]
async fn multi_cluster_routes_through_the_module() {
    let config = example_config("multi-cluster.json");
    let plugin = Plugin::load(PluginSpec {
        env: vec![
            ("PROD_SA_TOKEN".into(), "prod-sa".into()),
            ("DEV_SA_TOKEN".into(), "dev-sa".into()),
            (
                "LEGACY_HMAC_SECRET_BASE64".into(),
                "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=".into(),
            ),
        ],
        ..spec(&config, 1)
    })
    .expect("multi-cluster.json loads");
    let claims = SessionClaims {
        issuer: "https://idp.example.com".into(),
        audience: "k8s.example.com".into(),
        ..SessionClaims::dev("sre@example.com", &["sre"], now())
    };
    let session = Signer::dev().unwrap().sign(&claims).unwrap();
    for (authority, expected) in [
        ("prod.k8s.example.com", Some("prod-sa")),
        ("PROD.k8s.example.com:6443", Some("prod-sa")),
        ("eu.dev.k8s.example.com", Some("dev-sa")),
        ("prod.k8s.example.com.", None),
        ("eu.dev.k8s.example.com:443", None),
        ("eu.dev.k8s.example.com.", None),
        ("dev.k8s.example.com", None),
        ("prod.k8s.example.com:", None),
    ] {
        // Envoy would send each host to its own API server's cluster (the route's
        // upstream_clusters).
        let cluster = match expected {
            Some("dev-sa") => "dev_apiserver",
            _ => "prod_apiserver",
        };
        let request = FilterRequest::new("GET", "/api/v1/namespaces/default/pods", authority)
            .header("authorization", &format!("Bearer {session}"))
            .upstream_cluster(cluster);
        match (plugin.handle(request).await, expected) {
            (outcome @ FilterOutcome::Forward { .. }, Some(token)) => assert_eq!(
                outcome.forwarded_header("authorization"),
                Some(format!("Bearer {token}").as_str()),
                "{authority}"
            ),
            (FilterOutcome::LocalReply { status, .. }, None) => {
                assert_eq!(status, 404, "{authority}")
            }
            (outcome, expected) => panic!("{authority}: {outcome:?}, expected {expected:?}"),
        }
    }
}
