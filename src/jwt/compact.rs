//! The JWS compact serialization (RFC 7515 section 7.1), read strictly.
//!
//! Three base64url parts joined by two dots. Every part must be canonical
//! base64url without padding (section 2): no `=`, no whitespace, no characters
//! outside the URL-safe alphabet, no stray bits in the last character. A lenient
//! decoder lets one signature stand for many token strings, which defeats caches
//! keyed by the token and hides tampering.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use super::algorithm::{is_none_alg, Algorithm};
use super::error::JwtError;
use super::strict_json::{self, StrictJsonError};

/// Longest base64url header read: jwt-simple's limit, kept when the filter stopped
/// verifying through it (signature.rs), so the accepted tokens did not change.
pub(crate) const MAX_HEADER_LENGTH: usize = 8192;

/// A compact JWS split and decoded, not yet verified.
#[derive(Debug)]
pub(crate) struct CompactJws {
    /// The protected header, a JSON object with unique member names.
    pub header: Map<String, Value>,
    /// The payload bytes (any bytes: JWS itself does not require JSON).
    pub payload: Vec<u8>,
    /// Whether the signature part is empty, as in an unsecured (`alg: none`)
    /// token; reported after the header, so that `alg: none` is named as such.
    pub signature_is_empty: bool,
}

/// What the header asks for, once its members were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderChoice<'a> {
    pub alg: Algorithm,
    pub kid: Option<&'a str>,
}

/// Splits and decodes `token`; the caller has already bounded its length.
pub(crate) fn parse(token: &str) -> Result<CompactJws, JwtError> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed(
            "a JWS in compact form has exactly three dot-separated parts",
        ));
    };
    if header_b64.is_empty() {
        return Err(JwtError::Malformed("empty header"));
    }
    // jwt-simple refuses longer headers; saying so here gives the real reason.
    if header_b64.len() > MAX_HEADER_LENGTH {
        return Err(JwtError::Malformed("header too long"));
    }

    let header_bytes = decode_part(header_b64, "header is not base64url")?;
    // The signature is decoded only to prove it is canonical; jwt-simple decodes
    // it again for the actual check.
    decode_part(signature_b64, "signature is not base64url")?;
    let payload = decode_part(payload_b64, "payload is not base64url")?;

    let header = strict_json::parse_object(&header_bytes).map_err(|e| match e {
        StrictJsonError::DuplicateKey => JwtError::Malformed("header repeats a member"),
        StrictJsonError::NotAnObject => JwtError::Malformed("header is not a JSON object"),
        StrictJsonError::Syntax => JwtError::Malformed("header is not JSON"),
    })?;
    Ok(CompactJws {
        header,
        payload,
        signature_is_empty: signature_b64.is_empty(),
    })
}

/// Canonical unpadded base64url, or the given refusal.
pub(crate) fn decode_part(part: &str, problem: &'static str) -> Result<Vec<u8>, JwtError> {
    // The engine refuses padding, non-alphabet bytes (whitespace included) and
    // non-zero trailing bits; the explicit scan keeps that promise independent of
    // the engine's configuration.
    if !part
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(JwtError::Malformed(problem));
    }
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwtError::Malformed(problem))
}

/// Checks the protected header's members and returns the algorithm and key id.
///
/// - `alg` must be a string; "none" in any case and unknown names are refused.
/// - `crit` is refused whatever it lists: this verifier implements no extension,
///   and RFC 7515 section 4.1.11 forbids ignoring one that is marked critical.
/// - `kid`, when present, must be a string.
/// - `typ`, when present, must be "JWT" or end in "+jwt" (case-insensitive), as
///   jwt-simple requires too; other JOSE objects are not session tokens.
/// - `cty: JWT` marks a nested token (RFC 7519 section 5.2), which is refused.
/// - `jwk`, `jku`, `x5u`, `x5c` are never used to find a key: keys come only
///   from the configured set (embedding the verification key is a known attack).
pub(crate) fn check_header(header: &Map<String, Value>) -> Result<HeaderChoice<'_>, JwtError> {
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg,
        Some(_) => return Err(JwtError::Malformed("header alg is not a string")),
        None => return Err(JwtError::Malformed("header has no alg")),
    };
    if is_none_alg(alg) {
        return Err(JwtError::AlgNone);
    }
    let alg = Algorithm::from_name(alg).ok_or_else(|| JwtError::unsupported_alg(alg))?;

    if header.contains_key("crit") {
        return Err(JwtError::UnsupportedHeader(
            "critical extensions (crit) are not supported",
        ));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(JwtError::Malformed("header kid is not a string")),
    };
    match header.get("typ") {
        None => {}
        Some(Value::String(typ)) => {
            let typ = typ.to_ascii_uppercase();
            if typ != "JWT" && !typ.ends_with("+JWT") {
                return Err(JwtError::UnsupportedHeader("typ is not JWT"));
            }
        }
        Some(_) => return Err(JwtError::Malformed("header typ is not a string")),
    }
    match header.get("cty") {
        None => {}
        Some(Value::String(cty)) if cty.eq_ignore_ascii_case("JWT") => {
            return Err(JwtError::UnsupportedHeader(
                "nested tokens are not supported",
            ))
        }
        Some(Value::String(_)) => {}
        Some(_) => return Err(JwtError::Malformed("header cty is not a string")),
    }
    Ok(HeaderChoice { alg, kid })
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use serde_json::json;

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn token(header: &str, payload: &str) -> String {
        format!(
            "{}.{}.c2ln",
            b64(header.as_bytes()),
            b64(payload.as_bytes())
        )
    }

    fn header_of(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("test header must be an object"),
        }
    }

    #[test]
    fn parses_a_well_formed_token() {
        let parsed = parse(&token(r#"{"alg":"HS256","kid":"k"}"#, "foo")).expect("parses");
        assert_eq!(parsed.payload, b"foo");
        assert_eq!(
            check_header(&parsed.header),
            Ok(HeaderChoice {
                alg: Algorithm::Hs256,
                kid: Some("k")
            })
        );
    }

    #[test]
    fn an_empty_payload_is_a_valid_jws() {
        let parsed = parse(&token(r#"{"alg":"HS256"}"#, "")).expect("parses");
        assert!(parsed.payload.is_empty());
    }

    #[test]
    fn refuses_wrong_part_counts() {
        let good = token(r#"{"alg":"HS256"}"#, "{}");
        let (header, rest) = good.split_once('.').expect("has dots");
        for bad in [
            String::new(),
            ".".into(),
            "..".into(),
            "...".into(),
            header.to_string(),
            format!("{header}.{rest}."),
            format!("{header}.{rest}.x"),
            format!(".{good}"),
            format!("{header}..{rest}"),
            rest.to_string(),
        ] {
            assert!(
                matches!(parse(&bad), Err(JwtError::Malformed(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn refuses_an_empty_header_and_reports_an_empty_signature() {
        assert_eq!(
            parse(".e30.c2ln").unwrap_err(),
            JwtError::Malformed("empty header")
        );
        let unsigned = format!("{}.e30.", b64(br#"{"alg":"HS256"}"#));
        assert!(parse(&unsigned).expect("parses").signature_is_empty);
        assert!(
            !parse(&token(r#"{"alg":"HS256"}"#, "{}"))
                .expect("parses")
                .signature_is_empty
        );
    }

    #[test]
    fn refuses_padding_whitespace_and_foreign_alphabets() {
        // "e30" is "{}"; "e30=" is the padded form, "e3 0" has a space, and
        // "e30+" / "e30/" are the standard (not URL-safe) alphabet.
        let header = b64(br#"{"alg":"HS256"}"#);
        for payload in [
            "e30=", "e30==", "e3 0", " e30", "e30\n", "e30\t", "e3+0", "e3/0", "e30%", "ZQ==",
            "é30",
        ] {
            let bad = format!("{header}.{payload}.c2ln");
            assert!(
                matches!(parse(&bad), Err(JwtError::Malformed(_))),
                "{bad:?}"
            );
        }
        for signature in ["c2ln=", "c2l n", "c2l+", "c2l/", "c2ln\r"] {
            let bad = format!("{header}.e30.{signature}");
            assert!(
                matches!(parse(&bad), Err(JwtError::Malformed(_))),
                "{bad:?}"
            );
        }
        let padded_header = format!("{header}=.e30.c2ln");
        assert!(matches!(parse(&padded_header), Err(JwtError::Malformed(_))));
    }

    #[test]
    fn refuses_headers_longer_than_jwt_simple_reads() {
        let padding = "x".repeat(MAX_HEADER_LENGTH);
        let long = token(&format!(r#"{{"alg":"HS256","pad":"{padding}"}}"#), "{}");
        assert_eq!(
            parse(&long).unwrap_err(),
            JwtError::Malformed("header too long")
        );
    }

    #[test]
    fn refuses_non_canonical_trailing_bits_and_impossible_lengths() {
        // "AB" decodes to 0x00 with four stray bits set; canonical is "AA".
        assert!(decode_part("AA", "x").is_ok());
        assert!(decode_part("AB", "x").is_err());
        // One leftover character can never encode a byte.
        assert!(decode_part("AAAAA", "x").is_err());
    }

    #[test]
    fn refuses_headers_that_are_not_unique_json_objects() {
        for (header, problem) in [
            ("[]", "header is not a JSON object"),
            ("\"HS256\"", "header is not a JSON object"),
            ("{", "header is not JSON"),
            (r#"{"alg":"none","alg":"HS256"}"#, "header repeats a member"),
            (
                r#"{"alg":"HS256","alg":"HS256"}"#,
                "header repeats a member",
            ),
        ] {
            assert_eq!(
                parse(&token(header, "{}")).unwrap_err(),
                JwtError::Malformed(problem),
                "{header}"
            );
        }
        // A header that is not UTF-8.
        let bad = format!("{}.e30.c2ln", b64(b"{\"alg\":\"HS\xff256\"}"));
        assert_eq!(
            parse(&bad).unwrap_err(),
            JwtError::Malformed("header is not JSON")
        );
    }

    #[test]
    fn alg_must_be_a_supported_string_and_never_none() {
        for alg in ["none", "None", "NONE", "nOnE"] {
            assert_eq!(
                check_header(&header_of(json!({ "alg": alg }))),
                Err(JwtError::AlgNone),
                "{alg}"
            );
        }
        for alg in ["ES512", "hs256", "RSA-OAEP", ""] {
            assert_eq!(
                check_header(&header_of(json!({ "alg": alg }))),
                Err(JwtError::unsupported_alg(alg))
            );
        }
        assert_eq!(
            check_header(&header_of(json!({}))),
            Err(JwtError::Malformed("header has no alg"))
        );
        for alg in [json!(null), json!(256), json!(["HS256"]), json!({"a": 1})] {
            assert_eq!(
                check_header(&header_of(json!({ "alg": alg }))),
                Err(JwtError::Malformed("header alg is not a string"))
            );
        }
    }

    #[test]
    fn crit_is_refused_whatever_it_lists() {
        for crit in [json!(["exp"]), json!([]), json!("b64"), json!(null)] {
            assert!(matches!(
                check_header(&header_of(json!({"alg":"ES256","crit":crit}))),
                Err(JwtError::UnsupportedHeader(_))
            ));
        }
    }

    #[test]
    fn kid_typ_and_cty_are_checked() {
        assert_eq!(
            check_header(&header_of(json!({"alg":"ES256","kid":7}))),
            Err(JwtError::Malformed("header kid is not a string"))
        );
        for typ in ["JWT", "jwt", "at+jwt", "application/at+JWT"] {
            assert!(check_header(&header_of(json!({"alg":"ES256","typ":typ}))).is_ok());
        }
        for typ in ["JOSE", "JWS", "jwt2", ""] {
            assert_eq!(
                check_header(&header_of(json!({"alg":"ES256","typ":typ}))),
                Err(JwtError::UnsupportedHeader("typ is not JWT")),
                "{typ}"
            );
        }
        assert!(matches!(
            check_header(&header_of(json!({"alg":"ES256","typ":1}))),
            Err(JwtError::Malformed(_))
        ));
        assert!(matches!(
            check_header(&header_of(json!({"alg":"ES256","cty":"jwt"}))),
            Err(JwtError::UnsupportedHeader(_))
        ));
        assert!(check_header(&header_of(json!({"alg":"ES256","cty":"json"}))).is_ok());
        // A kid-less header is fine here; key selection decides later.
        assert_eq!(
            check_header(&header_of(json!({"alg":"EdDSA"}))),
            Ok(HeaderChoice {
                alg: Algorithm::EdDsa,
                kid: None
            })
        );
    }
}
