//! The configuration as on_configure sees it: every example in filter-config/ loads, and
//! every kind of mistake is refused with a message naming the field.

use kubegate::config::Config;
use serde_json::{json, Value};

fn env(name: &str) -> Option<String> {
    match name {
        "KUBEGATE_SA_TOKEN" | "PROD_SA_TOKEN" | "DEV_SA_TOKEN" => Some("sa-token-123".into()),
        // 32 bytes of 'k', base64.
        "LEGACY_HMAC_SECRET_BASE64" => Some("a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=".into()),
        _ => None,
    }
}

fn parse(config: &Value) -> Result<Config, String> {
    Config::parse(config.to_string().as_bytes(), &env).map_err(|e| e.to_string())
}

fn dev_example() -> Value {
    serde_json::from_str(include_str!("../filter-config/dev.json")).unwrap()
}

#[test]
fn every_example_in_filter_config_loads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("filter-config");
    let mut loaded = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        // cel-*.json are for kubegate-cel.wasm: this build refuses them, naming that module.
        if name.starts_with("cel-") && !kubegate::expression::AVAILABLE {
            let e = Config::parse(&bytes, &env).unwrap_err().to_string();
            assert!(e.contains("kubegate-cel.wasm"), "{name}: {e}");
            continue;
        }
        let config = Config::parse(&bytes, &env)
            .unwrap_or_else(|e| panic!("{} does not load: {e}", path.display()));
        assert!(!config.routes.is_empty());
        assert!(!config.authenticators.is_empty());
        for authenticator in &config.authenticators {
            assert!(!authenticator.keys.is_empty() || authenticator.remote.is_some());
        }
        loaded += 1;
    }
    assert!(
        loaded >= 4,
        "expected the four documented examples, found {loaded}"
    );
}

#[test]
fn the_seed_policy_works_verbatim() {
    let mut config = dev_example();
    config["routes"][0]["policy"] =
        json!([{"allow": {"or": [{"domain": {"is": "pomerium.com"}}]}}]);
    parse(&config).unwrap();
}

#[test]
fn unknown_fields_are_refused_with_their_path() {
    let mut config = dev_example();
    config["routes"][0]["polcy"] = json!([]);
    let e = parse(&config).unwrap_err();
    assert!(e.starts_with("routes[0]"), "{e}");
    assert!(e.contains("polcy"), "{e}");

    let mut config = dev_example();
    config["jwt"][0]["leway_seconds"] = json!(5);
    let e = parse(&config).unwrap_err();
    assert!(e.starts_with("jwt"), "{e}");
    assert!(e.contains("leway_seconds"), "{e}");

    let mut config = dev_example();
    config["jwt"][0]["claimMappings"]["username"]["claims"] = json!("sub");
    let e = parse(&config).unwrap_err();
    assert!(e.starts_with("jwt[0].claimMappings.username"), "{e}");
    assert!(e.contains("claims"), "{e}");

    // The old single-issuer shape is refused outright, not half-read.
    let mut config = dev_example();
    config["jwt"] = json!({"issuer": "https://kubegate-dev.localhost", "audiences": ["x"]});
    assert!(parse(&config).unwrap_err().starts_with("jwt"));

    let mut config = dev_example();
    config["extra"] = json!(true);
    assert!(parse(&config).unwrap_err().contains("extra"));
}

#[test]
fn wrong_types_name_the_field() {
    let mut config = dev_example();
    config["jwt"][0]["leeway_seconds"] = json!("60");
    let e = parse(&config).unwrap_err();
    assert!(e.starts_with("jwt[0].leeway_seconds"), "{e}");
    let e = Config::parse(b"not json", &env).unwrap_err().to_string();
    assert!(!e.is_empty());
    let e = Config::parse(b"", &env).unwrap_err().to_string();
    assert!(!e.is_empty());
}

#[test]
fn a_route_needs_a_service_account_token() {
    let mut config = dev_example();
    config["routes"][0]
        .as_object_mut()
        .unwrap()
        .remove("kubernetes_service_account_token_env");
    let e = parse(&config).unwrap_err();
    assert!(
        e.starts_with("routes[0].kubernetes_service_account_token"),
        "{e}"
    );

    let mut config = dev_example();
    config["routes"][0]["kubernetes_service_account_token_env"] = json!("NOT_SET_ANYWHERE");
    let e = parse(&config).unwrap_err();
    assert!(e.contains("NOT_SET_ANYWHERE"), "{e}");

    let mut config = dev_example();
    config["routes"][0]["kubernetes_service_account_token"] = json!("literal");
    assert!(parse(&config).unwrap_err().contains("not both"));

    let mut config = dev_example();
    config["routes"][0]
        .as_object_mut()
        .unwrap()
        .remove("kubernetes_service_account_token_env");
    config["routes"][0]["kubernetes_service_account_token"] = json!("has space");
    assert!(parse(&config).is_err());
    config["routes"][0]["kubernetes_service_account_token"] = json!("literal-token");
    parse(&config).unwrap();
}

#[test]
fn the_service_account_token_never_appears_in_debug_output() {
    let config = parse(&dev_example()).unwrap();
    let debug = format!("{:?}", config.routes);
    assert!(!debug.contains("sa-token-123"), "{debug}");
    assert_eq!(config.routes[0].service_account_token(), "sa-token-123");
}

#[test]
fn bad_policy_is_refused_with_its_path() {
    let mut config = dev_example();
    config["routes"][0]["policy"] = json!([{"allow": {"or": [{"domian": {"is": "x"}}]}}]);
    let e = parse(&config).unwrap_err();
    assert!(e.starts_with("routes[0].policy"), "{e}");
    assert!(e.contains("domian"), "{e}");
}

#[test]
fn bad_keys_are_refused() {
    let mut config = dev_example();
    config["jwt"][0]["keys"]["jwks"] =
        json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "x": "AAAA", "y": "AAAA"}]});
    let e = parse(&config).unwrap_err();
    assert!(e.starts_with("jwt[0].keys.jwks"), "{e}");

    let mut config = dev_example();
    config["jwt"][0]["keys"]["pem"] = json!([{"alg": "ES256", "pem": "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"}]);
    assert!(parse(&config)
        .unwrap_err()
        .starts_with("jwt[0].keys.pem[0]"));

    let mut config = dev_example();
    config["jwt"][0]["keys"]["hmac"] = json!([{"alg": "HS256", "secret_base64": "c2hvcnQ="}]);
    assert!(parse(&config).unwrap_err().contains("32 bytes"));

    let mut config = dev_example();
    config["jwt"][0]["keys"]["jwks"] = json!({"keys": []});
    assert!(parse(&config)
        .unwrap_err()
        .contains("no usable verification key"));
}

#[test]
fn issuer_audiences_and_username_mapping_are_required() {
    for (remove, path) in [
        (&["issuer"][..], "jwt[0]"),
        (&["issuer", "url"][..], "jwt[0].issuer"),
        (&["issuer", "audiences"][..], "jwt[0].issuer"),
        (&["claimMappings"][..], "jwt[0]"),
        (&["claimMappings", "username"][..], "jwt[0].claimMappings"),
        (&["keys"][..], "jwt[0]"),
    ] {
        let mut config = dev_example();
        let (last, parents) = remove.split_last().unwrap();
        let mut target = &mut config["jwt"][0];
        for parent in parents {
            target = &mut target[*parent];
        }
        target.as_object_mut().unwrap().remove(*last);
        let e = parse(&config).unwrap_err();
        assert!(e.starts_with(path) && e.contains(last), "{remove:?}: {e}");
    }
    let mut config = dev_example();
    config["jwt"] = json!([]);
    assert!(parse(&config).unwrap_err().starts_with("jwt: at least one"));
}

#[test]
fn routes_need_distinct_hosts_when_there_are_several() {
    let mut config = dev_example();
    let route = config["routes"][0].clone();
    config["routes"] = json!([route.clone(), route.clone()]);
    assert!(parse(&config).unwrap_err().contains("already routed"));
    let mut unnamed = route.clone();
    unnamed.as_object_mut().unwrap().remove("from");
    config["routes"] = json!([route, unnamed]);
    assert!(parse(&config).unwrap_err().starts_with("routes[1].from"));
    config["routes"] = json!([]);
    assert!(parse(&config).unwrap_err().starts_with("routes"));
}

#[test]
fn token_sources_are_validated() {
    let mut config = dev_example();
    config["jwt"][0]["from"] = json!([{"header": "authorization", "cookie": "x"}]);
    assert!(parse(&config).unwrap_err().starts_with("jwt[0].from[0]"));
    config["jwt"][0]["from"] = json!([{"header": "Impersonate-User"}]);
    assert!(parse(&config).is_err());
    config["jwt"][0]["from"] = json!([{"header": "authorization", "prefix": "Bearer "}, {"header": "Authorization", "prefix": "Bearer Pomerium-"}]);
    assert!(parse(&config).unwrap_err().starts_with("jwt[0].from[1]"));
    config["jwt"][0]["from"] = json!([{"cookie": "a;b"}]);
    assert!(parse(&config).is_err());
    config["jwt"][0]["from"] = json!([]);
    assert!(parse(&config).is_err());
    config["jwt"][0]["from"] = json!([{"cookie": "_session"}, {"header": "x-token", "prefix": ""}]);
    parse(&config).unwrap();
}

#[test]
fn limits_are_bounded() {
    let mut config = dev_example();
    config["max_token_bytes"] = json!(0);
    assert!(parse(&config).unwrap_err().starts_with("max_token_bytes"));
    config["max_token_bytes"] = json!(10_000_000);
    assert!(parse(&config).is_err());
    let mut config = dev_example();
    config["jwt"][0]["leeway_seconds"] = json!(100_000);
    assert!(parse(&config)
        .unwrap_err()
        .starts_with("jwt[0].leeway_seconds"));
}
