//! OpenID Connect discovery: from an issuer URL to where its `openid-configuration`
//! lives, and from that document to the JWKS path.
//!
//! The discovery document is fetched through the configured cluster, so its `jwks_uri`
//! is accepted only when it is https on the same authority: the cluster (and the TLS
//! identity Envoy checks on it) was chosen for that host, and following the document to
//! any other host would let whoever controls the document pick the signing keys. An IdP
//! whose keys live elsewhere (Google: www.googleapis.com) is configured with `path` and
//! a cluster for that host instead.

use serde_json::Value;

/// The well-known suffix (OpenID Connect Discovery 1.0, section 4).
pub const WELL_KNOWN: &str = "/.well-known/openid-configuration";

/// Splits an https issuer URL into the `:authority` and the discovery document's path
/// (the issuer's path, if any, followed by the well-known suffix).
pub fn discovery_location(issuer: &str) -> Result<(String, String), String> {
    let (authority, path) = split_https_url(issuer)?;
    if path.contains('?') {
        return Err("an issuer URL has no query".into());
    }
    let path = path.trim_end_matches('/');
    Ok((authority, format!("{path}{WELL_KNOWN}")))
}

/// The path (with query) of the JWKS a discovery document names, checked as the module
/// documentation says. `issuer` must match the document's `issuer` exactly (section
/// 4.3), and `authority` is where the document came from.
pub fn jwks_path(document: &[u8], issuer: &str, authority: &str) -> Result<String, String> {
    let document: Value = serde_json::from_slice(document)
        .map_err(|e| format!("the discovery document is not JSON: {e}"))?;
    let Some(document) = document.as_object() else {
        return Err("the discovery document is not a JSON object".into());
    };
    match document.get("issuer").and_then(Value::as_str) {
        Some(found) if found == issuer => {}
        Some(found) => {
            return Err(format!(
                "the discovery document is for issuer {:?}, not {issuer:?}",
                super::shorten(found)
            ))
        }
        None => return Err("the discovery document has no issuer".into()),
    }
    let Some(uri) = document.get("jwks_uri").and_then(Value::as_str) else {
        return Err("the discovery document has no jwks_uri".into());
    };
    let shown = super::shorten(uri);
    let (uri_authority, path) =
        split_https_url(uri).map_err(|problem| format!("jwks_uri {shown:?}: {problem}"))?;
    if normalize_authority(&uri_authority) != normalize_authority(authority) {
        return Err(format!(
            "jwks_uri {shown:?} is not on {authority:?}, the authority the cluster serves; configure keys.remote.path with a cluster for that host instead"
        ));
    }
    if !super::settings::is_request_path(&path) {
        return Err(format!("jwks_uri {shown:?} has an unusable path"));
    }
    Ok(path)
}

/// `https://authority/path` -> (authority, path), path defaulting to `/`. Only https:
/// keys fetched in clear text could be swapped by anyone on the path.
pub(crate) fn split_https_url(url: &str) -> Result<(String, String), String> {
    let Some(rest) = url
        .get(..8)
        .filter(|scheme| scheme.eq_ignore_ascii_case("https://"))
        .and_then(|_| url.get(8..))
    else {
        return Err("not an https URL".into());
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if authority.contains('@') {
        return Err("user info is not allowed in the URL".into());
    }
    if !super::settings::is_authority(authority) {
        return Err("the URL has no usable host".into());
    }
    if path.contains('#') {
        return Err("a fragment is not allowed in the URL".into());
    }
    let path = if path.is_empty() || path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Ok((authority.to_string(), path))
}

/// Host in lower case, the https default port dropped, for comparing authorities.
fn normalize_authority(authority: &str) -> String {
    let lower = authority.to_ascii_lowercase();
    match lower.strip_suffix(":443") {
        Some(host) => host.to_string(),
        None => lower,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn discovery_location_keeps_the_issuer_path() {
        assert_eq!(
            discovery_location("https://idp.example.com").unwrap(),
            ("idp.example.com".into(), WELL_KNOWN.to_string())
        );
        assert_eq!(
            discovery_location("https://login.example.com:8443/tenant/v2.0/").unwrap(),
            (
                "login.example.com:8443".into(),
                format!("/tenant/v2.0{WELL_KNOWN}")
            )
        );
        for bad in [
            "http://idp.example.com",
            "idp.example.com",
            "https://",
            "https://u@idp.example.com",
            "https://idp.example.com?x=1",
            "https://idp.example.com/#f",
        ] {
            assert!(discovery_location(bad).is_err(), "{bad}");
        }
    }

    fn document(issuer: &str, jwks_uri: &str) -> Vec<u8> {
        serde_json::json!({"issuer": issuer, "jwks_uri": jwks_uri, "response_types_supported": ["id_token"]})
            .to_string()
            .into_bytes()
    }

    const ISSUER: &str = "https://idp.example.com/realms/k8s";

    #[test]
    fn jwks_uri_on_the_same_authority_gives_its_path() {
        let doc = document(ISSUER, "https://IDP.example.com:443/realms/k8s/certs?v=2");
        assert_eq!(
            jwks_path(&doc, ISSUER, "idp.example.com").unwrap(),
            "/realms/k8s/certs?v=2"
        );
        let doc = document(ISSUER, "https://idp.example.com");
        assert_eq!(jwks_path(&doc, ISSUER, "idp.example.com:443").unwrap(), "/");
    }

    #[test]
    fn jwks_uri_elsewhere_or_in_clear_text_is_refused_with_the_reason() {
        let cases = [
            ("http://idp.example.com/certs", "not an https URL"),
            ("https://keys.example.net/certs", "is not on"),
            ("https://idp.example.com:8443/certs", "is not on"),
            ("https://attacker@idp.example.com/certs", "user info"),
            ("https://idp.example.com/ce rts", "unusable path"),
            ("//idp.example.com/certs", "not an https URL"),
        ];
        for (uri, expected) in cases {
            let error = jwks_path(&document(ISSUER, uri), ISSUER, "idp.example.com").unwrap_err();
            assert!(error.contains(expected), "{uri}: {error}");
        }
    }

    #[test]
    fn the_document_must_be_for_the_configured_issuer() {
        let doc = document(
            "https://idp.example.com/realms/other",
            "https://idp.example.com/c",
        );
        assert!(jwks_path(&doc, ISSUER, "idp.example.com")
            .unwrap_err()
            .contains("not \"https://idp.example.com/realms/k8s\""));
        for bad in [
            b"not json".to_vec(),
            b"[]".to_vec(),
            br#"{"jwks_uri": "https://idp.example.com/c"}"#.to_vec(),
            format!(r#"{{"issuer": "{ISSUER}"}}"#).into_bytes(),
            format!(r#"{{"issuer": "{ISSUER}", "jwks_uri": 7}}"#).into_bytes(),
        ] {
            assert!(jwks_path(&bad, ISSUER, "idp.example.com").is_err());
        }
    }
}
