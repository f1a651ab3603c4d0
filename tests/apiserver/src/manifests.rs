//! Multi-document YAML manifests (`---` separated), as `kubectl apply -f` reads them.

use serde::Deserialize;
use serde_json::Value;

/// The objects in a manifest, as JSON; empty documents are skipped, a `kind: List` is
/// expanded to its items.
pub fn parse(text: &str) -> Result<Vec<Value>, String> {
    let mut objects = Vec::new();
    for (index, document) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let yaml = serde_yaml::Value::deserialize(document)
            .map_err(|error| format!("document {}: {error}", index + 1))?;
        if yaml.is_null() {
            continue;
        }
        let object: Value = serde_json::to_value(&yaml)
            .map_err(|error| format!("document {}: {error}", index + 1))?;
        if !object.is_object() {
            return Err(format!("document {}: not a mapping", index + 1));
        }
        if object.get("kind").and_then(Value::as_str) == Some("List") {
            objects.extend(
                object
                    .get("items")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
        } else {
            objects.push(object);
        }
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document() {
        let objects =
            parse("---\na: 1\n---\n# nothing\n---\nkind: List\nitems: [{b: 2}, {c: 3}]\n").unwrap();
        assert_eq!(objects.len(), 3);
        assert!(parse("a: [").is_err());
        assert!(parse("- 1\n").is_err());
    }
}
