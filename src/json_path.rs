//! The JSON path (`routes[0].policy`, `jwt.remote_jwks.timeout_ms`) of a position in a
//! document: serde_json reports where a configuration mistake is (line and column), and
//! an operator needs the field's name. Walking the text up to that position costs a few
//! hundred bytes of wasm; tracking the path during deserialisation (serde_path_to_error)
//! cost 24 KB, a third of the module's headroom.

/// One level of nesting open at the position.
enum Frame {
    /// An object and the key whose value is being read (`None` between members).
    Object(Option<String>),
    /// An array and the index of the element being read.
    Array(usize),
}

/// The path of the value being read at `line`/`column` (1-based, as serde_json counts,
/// columns in bytes). `"."` for the document itself. serde_json reports a type mistake
/// after the value, an unknown field after its key and a missing field after the closing
/// brace of its object: the path is then the value's, the key's and the object's.
pub fn path_at(json: &[u8], line: usize, column: usize) -> String {
    let end = offset_of(json, line, column);
    let mut frames: Vec<Frame> = Vec::new();
    let mut bytes = json.iter().take(end).copied();
    while let Some(byte) = bytes.next() {
        match byte {
            b'{' => frames.push(Frame::Object(None)),
            b'[' => frames.push(Frame::Array(0)),
            b'}' | b']' => {
                frames.pop();
            }
            b',' => match frames.last_mut() {
                Some(Frame::Object(key)) => *key = None,
                Some(Frame::Array(index)) => *index += 1,
                None => {}
            },
            b'"' => {
                let text = read_string(&mut bytes);
                if let Some(Frame::Object(key @ None)) = frames.last_mut() {
                    *key = Some(text);
                }
            }
            _ => {}
        }
    }
    render(&frames)
}

/// The byte offset of a 1-based line and column; the document's end if past it.
fn offset_of(json: &[u8], line: usize, column: usize) -> usize {
    let line_start = if line <= 1 {
        0
    } else {
        json.iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(line - 2)
            .map_or(json.len(), |(i, _)| i + 1)
    };
    line_start.saturating_add(column).min(json.len())
}

/// Reads a string's text after its opening quote (escapes kept as written: a key with an
/// escape is rare in a configuration, and the path only has to point at it).
fn read_string(bytes: &mut impl Iterator<Item = u8>) -> String {
    let mut text = Vec::new();
    while let Some(byte) = bytes.next() {
        match byte {
            b'"' => break,
            b'\\' => {
                text.push(byte);
                if let Some(escaped) = bytes.next() {
                    text.push(escaped);
                }
            }
            _ => text.push(byte),
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

fn render(frames: &[Frame]) -> String {
    let mut path = String::new();
    for frame in frames {
        match frame {
            Frame::Object(Some(key)) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Object(None) => {}
            Frame::Array(index) => {
                path.push('[');
                path.push_str(&index.to_string());
                path.push(']');
            }
        }
    }
    if path.is_empty() {
        path.push('.');
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    /// The path serde_json's error position points at, for a document and a type.
    fn path_of_error<T: serde::de::DeserializeOwned + std::fmt::Debug>(json: &str) -> String {
        let e = serde_json::from_str::<T>(json).unwrap_err();
        path_at(json.as_bytes(), e.line(), e.column())
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        routes: Vec<Inner>,
        jwt: Option<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        name: String,
        #[serde(default)]
        count: u32,
    }

    #[test]
    fn a_wrong_type_is_located_at_its_field() {
        let json = r#"{"routes": [{"name": "a"}, {"name": "b", "count": "7"}]}"#;
        assert_eq!(path_of_error::<Outer>(json), "routes[1].count");
        let json = "{\n  \"jwt\": {\n    \"name\": 5\n  },\n  \"routes\": []\n}";
        assert_eq!(path_of_error::<Outer>(json), "jwt.name");
    }

    #[test]
    fn an_unknown_field_is_named() {
        let json = r#"{"routes": [], "jwt": {"name": "x", "cuont": 1}}"#;
        assert_eq!(path_of_error::<Outer>(json), "jwt.cuont");
        let json = r#"{"routes": [], "extra": true}"#;
        assert_eq!(path_of_error::<Outer>(json), "extra");
    }

    #[test]
    fn a_missing_field_names_its_object() {
        let json = r#"{"routes": [{"name": "a"}, {"count": 1}]}"#;
        assert_eq!(path_of_error::<Outer>(json), "routes[1]");
        let json = r#"{"jwt": {"name": "a"}}"#;
        assert_eq!(path_of_error::<Outer>(json), ".");
        let json = r#"{"routes": [], "jwt": {"count": 2}}"#;
        assert_eq!(path_of_error::<Outer>(json), "jwt");
    }

    #[test]
    fn strings_with_brackets_and_escaped_quotes_do_not_confuse_the_walk() {
        let json = r#"{"routes": [{"name": "a\",[{b"}, {"name": "}]", "count": -1}]}"#;
        assert_eq!(path_of_error::<Outer>(json), "routes[1].count");
    }

    #[test]
    fn positions_outside_the_document_are_harmless() {
        assert_eq!(path_at(b"", 1, 0), ".");
        assert_eq!(path_at(b"{\"a\": [1, 2", 99, 99), "a[1]");
        assert_eq!(path_at(b"{\"a\"", 1, 1000), "a");
        assert_eq!(path_at(b"\"unterminated \\", 1, 20), ".");
        assert_eq!(path_at(b"[{", 1, 2), "[0]");
    }
}
