//! JSON parsing that refuses duplicate object members.
//!
//! serde_json keeps the last of two equal keys without a word. In a token that is
//! a smuggling trick: `{"alg":"HS256","alg":"none"}` or two `exp` values read one
//! way here and another way by a different parser. RFC 7515 section 5.2 lets a
//! verifier refuse such headers, and RFC 7519 section 7.2 such claim sets; we
//! refuse them at every depth. Depth stays bounded by serde_json's own recursion
//! limit (128), which holds for this visitor too.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// Why a document was refused; never holds document text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrictJsonError {
    /// Not JSON (bad syntax, bad UTF-8, too deep, trailing bytes, number out of range).
    Syntax,
    /// An object has the same member name twice.
    DuplicateKey,
    /// Valid JSON, but not an object.
    NotAnObject,
}

/// Parses `bytes` as one JSON object with unique member names at every depth.
pub(crate) fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, StrictJsonError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = match UniqueKeys::deserialize(&mut deserializer) {
        Ok(UniqueKeys(value)) => value,
        Err(e) if e.to_string().starts_with(DUPLICATE_KEY) => {
            return Err(StrictJsonError::DuplicateKey)
        }
        Err(_) => return Err(StrictJsonError::Syntax),
    };
    deserializer.end().map_err(|_| StrictJsonError::Syntax)?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(StrictJsonError::NotAnObject),
    }
}

/// The custom error text that marks a duplicate (serde errors carry only text).
const DUPLICATE_KEY: &str = "kubegate: duplicate object member";

/// A `serde_json::Value` whose objects were checked for repeated member names.
struct UniqueKeys(Value);

impl<'de> Deserialize<'de> for UniqueKeys {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(UniqueKeysVisitor)
            .map(UniqueKeys)
    }
}

struct UniqueKeysVisitor;

impl<'de> Visitor<'de> for UniqueKeysVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        // JSON has no NaN or infinity; serde_json refuses out-of-range literals.
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(UniqueKeys(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(DUPLICATE_KEY));
            }
            let UniqueKeys(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use serde_json::json;

    #[test]
    fn parses_objects_like_serde_json() {
        let text = br#"{"a":1,"b":[true,null,"x",-2,1.5],"c":{"d":{}},"e":18446744073709551615}"#;
        let map = parse_object(text).expect("valid");
        let expected: Value = serde_json::from_slice(text).expect("valid");
        assert_eq!(Value::Object(map), expected);
    }

    #[test]
    fn refuses_duplicate_members_at_any_depth() {
        for text in [
            r#"{"alg":"HS256","alg":"none"}"#,
            r#"{"exp":1,"exp":2}"#,
            r#"{"a":{"b":1,"b":1}}"#,
            r#"{"a":[{"x":1,"x":2}]}"#,
            // Escapes that decode to the same name are the same member.
            r#"{"alg":"HS256","\u0061lg":"none"}"#,
        ] {
            assert_eq!(
                parse_object(text.as_bytes()),
                Err(StrictJsonError::DuplicateKey),
                "{text}"
            );
        }
        assert!(parse_object(br#"{"a":{"b":1},"b":{"a":1}}"#).is_ok());
    }

    #[test]
    fn refuses_non_objects() {
        for text in ["[]", "1", "\"x\"", "null", "true"] {
            assert_eq!(
                parse_object(text.as_bytes()),
                Err(StrictJsonError::NotAnObject),
                "{text}"
            );
        }
    }

    #[test]
    fn refuses_bad_syntax_trailing_data_and_bad_utf8() {
        for text in [
            &b""[..],
            b"foo",
            b"{",
            b"{}{}",
            b"{} x",
            b"{\"a\":1,}",
            b"{\"a\":NaN}",
            b"{\"a\":1e400}",
            b"{\"a\":\"\xff\"}",
            b"{\"\xc3\x28\":1}",
        ] {
            assert_eq!(
                parse_object(text),
                Err(StrictJsonError::Syntax),
                "{}",
                String::from_utf8_lossy(text)
            );
        }
        // Surrounding JSON whitespace is fine.
        assert_eq!(
            parse_object(b" \n{\"a\":1}\t ").map(Value::Object),
            Ok(json!({"a":1}))
        );
    }

    #[test]
    fn depth_bombs_are_refused_without_overflowing_the_stack() {
        for depth in [200, 5_000, 100_000] {
            let arrays = format!("{{\"a\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
            assert_eq!(
                parse_object(arrays.as_bytes()),
                Err(StrictJsonError::Syntax)
            );
            let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
            assert_eq!(
                parse_object(objects.as_bytes()),
                Err(StrictJsonError::Syntax)
            );
        }
        // Moderate nesting is fine.
        let nested = format!("{{\"a\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert!(parse_object(nested.as_bytes()).is_ok());
    }
}
