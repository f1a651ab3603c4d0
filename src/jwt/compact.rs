//! The JWS compact serialization (RFC 7515 section 7.1), read strictly, before
//! jwt-simple sees the token.
//!
//! Three base64url parts joined by two dots. Header and payload are decoded here
//! (jwt-simple's decoder, ct-codecs, is as strict: it decodes the signature)
//! because they are parsed here, strictly: jwt-simple's serde structs keep the
//! last of two equal members and read the header's registered members only.
//! Every part must be canonical base64url without padding (section 2): no `=`, no
//! whitespace, no characters outside the URL-safe alphabet, no stray bits in the
//! last character. A lenient decoder lets one signature stand for many token
//! strings, which defeats caches keyed by the token and hides tampering.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{Map, Value};

use super::algorithm::{is_none_alg, Algorithm};
use super::error::JwtError;
use super::strict_json::{self, StrictJsonError};

/// A compact JWS split and decoded, not yet verified.
#[derive(Debug)]
pub(crate) struct CompactJws {
    /// The protected header, a JSON object with unique member names.
    pub header: Map<String, Value>,
    /// The payload bytes (any bytes: JWS itself does not require JSON).
    pub payload: Vec<u8>,
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
    let (Some(header_b64), Some(payload_b64), Some(_signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed(
            "a JWS in compact form has exactly three dot-separated parts",
        ));
    };
    if header_b64.is_empty() {
        return Err(JwtError::Malformed("empty header"));
    }
    let header_bytes = decode_part(header_b64, "header is not base64url")?;
    let payload = decode_part(payload_b64, "payload is not base64url")?;

    let header = strict_json::parse_object(&header_bytes).map_err(|e| match e {
        StrictJsonError::DuplicateKey => JwtError::Malformed("header repeats a member"),
        StrictJsonError::NotAnObject => JwtError::Malformed("header is not a JSON object"),
        StrictJsonError::Syntax => JwtError::Malformed("header is not JSON"),
    })?;
    Ok(CompactJws { header, payload })
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

/// Header members that point at or carry a key or certificate (RFC 7515 sections
/// 4.1.2-4.1.6).
const KEY_CARRYING_MEMBERS: [&str; 4] = ["jku", "jwk", "x5u", "x5c"];

/// Checks the protected header's members and returns the algorithm and key id.
/// The rules jwt-simple lacks or applies later; it checks `typ` itself ("JWT" or
/// "...+jwt"), and `alg` against the key.
///
/// - `alg` must be a string; "none" in any case and unknown names are refused
///   here, before any key is chosen (jwt-simple only compares it with the key's).
/// - `crit` is refused whatever it lists, an empty list too (jwt-simple accepts
///   an empty one): this verifier implements no extension, and RFC 7515 section
///   4.1.11 forbids ignoring one that is marked critical.
/// - `kid`, when present, must be a string: it chooses the key (keys.rs).
/// - `cty: JWT` marks a nested token (RFC 7519 section 5.2), which is refused;
///   jwt-simple would verify the outer token only.
/// - `jku`, `jwk`, `x5u`, `x5c` are refused: keys come only from the configured
///   set, and a token naming its own key is the known embedded-key attack (RFC
///   8725 section 3.10 on such URLs). jwt-simple parses them and leaves them be.
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
    if KEY_CARRYING_MEMBERS
        .iter()
        .any(|member| header.contains_key(*member))
    {
        return Err(JwtError::UnsupportedHeader(
            "keys or certificates named in the token (jku, jwk, x5u, x5c) are not used",
        ));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(JwtError::Malformed("header kid is not a string")),
    };
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
    fn refuses_an_empty_header() {
        assert_eq!(
            parse(".e30.c2ln").unwrap_err(),
            JwtError::Malformed("empty header")
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
        // The signature part is jwt-simple's to decode (verify.rs tests it).
        let padded_header = format!("{header}=.e30.c2ln");
        assert!(matches!(parse(&padded_header), Err(JwtError::Malformed(_))));
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
    fn key_carrying_members_are_refused_whatever_they_hold() {
        for member in ["jku", "jwk", "x5u", "x5c"] {
            for value in [
                json!("https://evil.example/keys"),
                json!({}),
                json!([]),
                json!(null),
            ] {
                let mut header = header_of(json!({"alg":"ES256","kid":"k"}));
                header.insert(member.into(), value);
                assert!(
                    matches!(check_header(&header), Err(JwtError::UnsupportedHeader(_))),
                    "{member}"
                );
            }
        }
        // Thumbprints only name a certificate; they choose nothing here.
        assert!(check_header(&header_of(json!({"alg":"ES256","x5t":"AAAA"}))).is_ok());
    }

    #[test]
    fn kid_and_cty_are_checked() {
        assert_eq!(
            check_header(&header_of(json!({"alg":"ES256","kid":7}))),
            Err(JwtError::Malformed("header kid is not a string"))
        );
        // typ is jwt-simple's (verify.rs tests it through the whole path).
        assert!(check_header(&header_of(json!({"alg":"ES256","typ":"JOSE"}))).is_ok());
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
