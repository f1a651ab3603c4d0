//! Helpers shared by the policy unit tests.

use crate::Claims;
use serde_json::Value;

/// Claims from a JSON object literal.
pub(crate) fn claims(value: Value) -> Claims {
    match value {
        Value::Object(claims) => claims,
        other => panic!("claims must be a JSON object, got {other}"),
    }
}

/// The `groups` claim as the request code hands it over.
pub(crate) fn groups_of(claims: &Claims) -> Vec<String> {
    claims
        .get("groups")
        .and_then(Value::as_array)
        .map(|groups| {
            groups
                .iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}
