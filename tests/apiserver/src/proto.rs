//! Just enough of Kubernetes' protobuf encoding to read the review requests kubectl sends
//! as `application/vnd.kubernetes.protobuf` (its typed clients do, e.g. for
//! `kubectl auth can-i`). Answers stay JSON, which those clients also accept.
//!
//! The wire format is the 4-byte magic `k8s\0` and a `runtime.Unknown` message: field 1 the
//! TypeMeta (1 apiVersion, 2 kind), field 2 the object's own protobuf bytes. The review
//! messages are decoded into the same JSON shape their JSON form has, field numbers as in
//! `k8s.io/api/authorization/v1/generated.proto`.

use serde_json::{json, Map, Value};

const MAGIC: &[u8] = b"k8s\0";

/// The media type of Kubernetes protobuf bodies.
pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

enum Field<'a> {
    /// A number; no field read here needs its value.
    Varint,
    Bytes(&'a [u8]),
}

fn varint(input: &[u8], position: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *input.get(*position)?;
        *position += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The fields of one message, in order; `None` if it is malformed.
fn fields(input: &[u8]) -> Option<Vec<(u64, Field<'_>)>> {
    let mut position = 0;
    let mut fields = Vec::new();
    while position < input.len() {
        let key = varint(input, &mut position)?;
        let number = key >> 3;
        match key & 7 {
            0 => {
                varint(input, &mut position)?;
                fields.push((number, Field::Varint));
            }
            1 => position = position.checked_add(8).filter(|end| *end <= input.len())?,
            2 => {
                let length = usize::try_from(varint(input, &mut position)?).ok()?;
                let end = position
                    .checked_add(length)
                    .filter(|end| *end <= input.len())?;
                fields.push((number, Field::Bytes(&input[position..end])));
                position = end;
            }
            5 => position = position.checked_add(4).filter(|end| *end <= input.len())?,
            _ => return None,
        }
    }
    Some(fields)
}

fn text(bytes: &[u8]) -> Value {
    Value::String(String::from_utf8_lossy(bytes).into_owned())
}

/// A message whose fields are all strings (repeated ones become lists), by field number.
fn strings(input: &[u8], names: &[(u64, &str, bool)]) -> Option<Value> {
    let mut object = Map::new();
    for (number, field) in fields(input)? {
        let Some((_, name, repeated)) = names.iter().find(|(candidate, _, _)| *candidate == number)
        else {
            continue;
        };
        if let Field::Bytes(bytes) = field {
            if *repeated {
                let list = object.entry(name.to_string()).or_insert_with(|| json!([]));
                if let Some(list) = list.as_array_mut() {
                    list.push(text(bytes));
                }
            } else {
                object.insert(name.to_string(), text(bytes));
            }
        }
    }
    Some(Value::Object(object))
}

fn resource_attributes(input: &[u8]) -> Option<Value> {
    strings(
        input,
        &[
            (1, "namespace", false),
            (2, "verb", false),
            (3, "group", false),
            (4, "version", false),
            (5, "resource", false),
            (6, "subresource", false),
            (7, "name", false),
        ],
    )
}

fn non_resource_attributes(input: &[u8]) -> Option<Value> {
    strings(input, &[(1, "path", false), (2, "verb", false)])
}

/// `SelfSubjectAccessReviewSpec` and `SubjectAccessReviewSpec` share fields 1 and 2.
fn access_review_spec(input: &[u8]) -> Option<Value> {
    let mut spec = Map::new();
    for (number, field) in fields(input)? {
        let Field::Bytes(bytes) = field else {
            continue;
        };
        match number {
            1 => drop(spec.insert("resourceAttributes".into(), resource_attributes(bytes)?)),
            2 => drop(spec.insert(
                "nonResourceAttributes".into(),
                non_resource_attributes(bytes)?,
            )),
            3 => drop(spec.insert("user".into(), text(bytes))),
            4 => {
                let groups = spec.entry("groups").or_insert_with(|| json!([]));
                if let Some(groups) = groups.as_array_mut() {
                    groups.push(text(bytes));
                }
            }
            5 => {
                // map<string, ExtraValue>: an entry is {1: key, 2: ExtraValue{1: items}}.
                let entry = strings(bytes, &[(1, "key", false)])?;
                let key = entry
                    .get("key")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let values: Vec<Value> = fields(bytes)?
                    .into_iter()
                    .filter_map(|(number, field)| match (number, field) {
                        (2, Field::Bytes(extra)) => strings(extra, &[(1, "items", true)]),
                        _ => None,
                    })
                    .flat_map(|extra| {
                        extra
                            .get("items")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default()
                    })
                    .collect();
                let extra = spec.entry("extra").or_insert_with(|| json!({}));
                if let Some(extra) = extra.as_object_mut() {
                    extra.insert(key, Value::Array(values));
                }
            }
            6 => drop(spec.insert("uid".into(), text(bytes))),
            _ => {}
        }
    }
    Some(Value::Object(spec))
}

/// `map<string, string>` (or bytes, base64-encoded as JSON has them) entries: {1 key, 2 value}.
fn map_entry(bytes: &[u8], base64_values: bool) -> Option<(String, Value)> {
    let mut key = String::new();
    let mut value = Value::String(String::new());
    for (number, field) in fields(bytes)? {
        match (number, field) {
            (1, Field::Bytes(raw)) => key = String::from_utf8_lossy(raw).into_owned(),
            (2, Field::Bytes(raw)) if base64_values => {
                use base64::Engine;
                value = Value::String(base64::engine::general_purpose::STANDARD.encode(raw));
            }
            (2, Field::Bytes(raw)) => value = text(raw),
            _ => {}
        }
    }
    Some((key, value))
}

fn insert_map_entry(
    object: &mut Map<String, Value>,
    name: &str,
    bytes: &[u8],
    base64_values: bool,
) -> Option<()> {
    let (key, value) = map_entry(bytes, base64_values)?;
    let map = object.entry(name.to_string()).or_insert_with(|| json!({}));
    if let Some(map) = map.as_object_mut() {
        map.insert(key, value);
    }
    Some(())
}

/// `ObjectMeta`: the fields a create sets (name, generateName, namespace, labels,
/// annotations, finalizers).
fn object_meta(input: &[u8]) -> Option<Value> {
    let mut metadata = Map::new();
    for (number, field) in fields(input)? {
        let Field::Bytes(bytes) = field else {
            continue;
        };
        match number {
            1 => drop(metadata.insert("name".into(), text(bytes))),
            2 => drop(metadata.insert("generateName".into(), text(bytes))),
            3 => drop(metadata.insert("namespace".into(), text(bytes))),
            11 => insert_map_entry(&mut metadata, "labels", bytes, false)?,
            12 => insert_map_entry(&mut metadata, "annotations", bytes, false)?,
            14 => {
                let finalizers = metadata.entry("finalizers").or_insert_with(|| json!([]));
                if let Some(finalizers) = finalizers.as_array_mut() {
                    finalizers.push(text(bytes));
                }
            }
            _ => {}
        }
    }
    Some(Value::Object(metadata))
}

/// The objects `kubectl create namespace|configmap|secret|serviceaccount` send.
fn simple_object(kind: &str, raw: &[u8]) -> Option<Map<String, Value>> {
    let mut object = Map::new();
    for (number, field) in fields(raw)? {
        let Field::Bytes(bytes) = field else {
            continue;
        };
        match (kind, number) {
            (_, 1) => drop(object.insert("metadata".into(), object_meta(bytes)?)),
            ("ConfigMap", 2) => insert_map_entry(&mut object, "data", bytes, false)?,
            ("ConfigMap", 3) => insert_map_entry(&mut object, "binaryData", bytes, true)?,
            ("Secret", 2) => insert_map_entry(&mut object, "data", bytes, true)?,
            ("Secret", 3) => drop(object.insert("type".into(), text(bytes))),
            ("Secret", 4) => insert_map_entry(&mut object, "stringData", bytes, false)?,
            _ => {}
        }
    }
    Some(object)
}

/// Decodes a protobuf Namespace, ConfigMap, Secret or ServiceAccount into JSON; `None`
/// for anything else (which the caller refuses as an unsupported media type).
pub fn decode_object(body: &[u8]) -> Option<Value> {
    let (api_version, kind, raw) = envelope(body)?;
    if api_version != "v1"
        || !matches!(
            kind.as_str(),
            "Namespace" | "ConfigMap" | "Secret" | "ServiceAccount"
        )
    {
        return None;
    }
    let mut object = simple_object(&kind, raw)?;
    object.insert("kind".into(), json!(kind));
    object.insert("apiVersion".into(), json!(api_version));
    Some(Value::Object(object))
}

/// The `runtime.Unknown` envelope: apiVersion, kind and the object's bytes.
fn envelope(body: &[u8]) -> Option<(String, String, &[u8])> {
    let envelope = body.strip_prefix(MAGIC)?;
    let mut type_meta = Value::Null;
    let mut raw: &[u8] = &[];
    for (number, field) in fields(envelope)? {
        match (number, field) {
            (1, Field::Bytes(bytes)) => {
                type_meta = strings(bytes, &[(1, "apiVersion", false), (2, "kind", false)])?
            }
            (2, Field::Bytes(bytes)) => raw = bytes,
            _ => {}
        }
    }
    let kind = type_meta.get("kind").and_then(Value::as_str)?.to_string();
    let api_version = type_meta
        .get("apiVersion")
        .and_then(Value::as_str)?
        .to_string();
    Some((api_version, kind, raw))
}

/// Decodes a protobuf review request into its JSON form; `None` for anything else.
pub fn decode_review(body: &[u8]) -> Option<Value> {
    let (api_version, kind, raw) = envelope(body)?;
    let mut spec = Value::Null;
    for (number, field) in fields(raw)? {
        if let (2, Field::Bytes(bytes)) = (number, field) {
            spec = match kind.as_str() {
                "SelfSubjectAccessReview" | "SubjectAccessReview" => access_review_spec(bytes)?,
                "SelfSubjectRulesReview" => strings(bytes, &[(1, "namespace", false)])?,
                "SelfSubjectReview" => json!({}),
                _ => return None,
            };
        }
    }
    if spec.is_null() && kind == "SelfSubjectReview" {
        spec = json!({});
    }
    Some(
        json!({"kind": kind, "apiVersion": api_version, "metadata": {"creationTimestamp": null}, "spec": spec}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(fields: &[(u8, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for (number, bytes) in fields {
            out.push(number << 3 | 2);
            out.push(bytes.len() as u8);
            out.extend_from_slice(bytes);
        }
        out
    }

    #[test]
    fn self_subject_access_review() {
        let attributes = message(&[(1, b"default"), (2, b"list"), (5, b"pods")]);
        let spec = message(&[(1, &attributes)]);
        let review = message(&[(1, b""), (2, &spec)]);
        let type_meta = message(&[
            (1, b"authorization.k8s.io/v1"),
            (2, b"SelfSubjectAccessReview"),
        ]);
        let mut body = MAGIC.to_vec();
        body.extend(message(&[(1, &type_meta), (2, &review)]));
        let decoded = decode_review(&body).unwrap();
        assert_eq!(decoded["kind"], "SelfSubjectAccessReview");
        assert_eq!(
            decoded["spec"]["resourceAttributes"],
            json!({"namespace": "default", "verb": "list", "resource": "pods"})
        );
        assert_eq!(decode_review(b"k8s\0\xff"), None);
        assert_eq!(decode_review(b"{}"), None);
    }
}

#[cfg(test)]
mod kubectl_bodies {
    use super::*;

    #[test]
    fn kubectl_create_namespace() {
        // `kubectl create namespace team-a` (v1.32), as its -v=10 log shows the body.
        let body: &[u8] = &[
            0x6b, 0x38, 0x73, 0x00, 0x0a, 0x0f, 0x0a, 0x02, 0x76, 0x31, 0x12, 0x09, 0x4e, 0x61,
            0x6d, 0x65, 0x73, 0x70, 0x61, 0x63, 0x65, 0x12, 0x1e, 0x0a, 0x16, 0x0a, 0x06, 0x74,
            0x65, 0x61, 0x6d, 0x2d, 0x61, 0x12, 0x00, 0x1a, 0x00, 0x22, 0x00, 0x2a, 0x00, 0x32,
            0x00, 0x38, 0x00, 0x42, 0x00, 0x12, 0x00, 0x1a, 0x02, 0x0a, 0x00, 0x1a, 0x00, 0x22,
            0x00,
        ];
        let object = decode_object(body).unwrap();
        assert_eq!(object["kind"], "Namespace");
        assert_eq!(object["metadata"]["name"], "team-a");
    }
}
