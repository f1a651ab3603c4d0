//! The `claim/NAME` criterion's pieces: finding a claim by name or nested path,
//! and comparing claim values with configured scalars.

use crate::Claims;
use serde_json::{Number, Value};

/// Where a claim is found. Pomerium's `object_get` (pkg/policy/rules) first looks
/// the whole name up as one key, so names such as `https://example.com/roles` or
/// `example.com/key` work; only if that key is absent does it split the name on
/// `/` and `.` and walk nested objects (`realm_access/roles`).
///
/// Pomerium's Rego has no recursion and stops at five segments; our walk is a
/// plain loop, so any depth works.
#[derive(Debug, Clone)]
pub(crate) struct ClaimPath {
    name: Box<str>,
    /// The segments of `name`, or empty when it has no separator.
    nested: Box<[Box<str>]>,
}

impl ClaimPath {
    /// `None` for an empty name.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        if name.is_empty() {
            return None;
        }
        let nested = if name.contains(['/', '.']) {
            name.split(['/', '.']).map(Box::from).collect()
        } else {
            Box::default()
        };
        Some(ClaimPath {
            name: name.into(),
            nested,
        })
    }

    pub(crate) fn lookup<'c>(&self, claims: &'c Claims) -> Option<&'c Value> {
        if let Some(value) = claims.get(&*self.name) {
            return Some(value);
        }
        let (first, rest) = self.nested.split_first()?;
        let mut value = claims.get(&**first)?;
        for segment in rest {
            value = value.as_object()?.get(&**segment)?;
        }
        Some(value)
    }
}

/// A claim's values as a list, the way Pomerium stores session claims (every
/// claim is a list there): a list claim is its elements, a scalar is a list of
/// one, and a missing or null claim is empty (Pomerium's `object_get(..., [])`).
pub(crate) fn claim_values(value: Option<&Value>) -> &[Value] {
    match value {
        None | Some(Value::Null) => &[],
        Some(Value::Array(items)) => items,
        Some(single) => std::slice::from_ref(single),
    }
}

/// A configured value to compare a claim with.
#[derive(Debug, Clone)]
pub(crate) enum ClaimScalar {
    String(Box<str>),
    Number(Number),
    Bool(bool),
}

impl ClaimScalar {
    pub(crate) const EXPECTED: &'static str = "a string, number or boolean";

    pub(crate) fn from_json(value: &Value) -> Option<Self> {
        match value {
            Value::String(text) => Some(ClaimScalar::String(text.as_str().into())),
            Value::Number(number) => Some(ClaimScalar::Number(number.clone())),
            Value::Bool(flag) => Some(ClaimScalar::Bool(*flag)),
            _ => None,
        }
    }

    /// Equality of JSON values as Rego sees it: same type, and numbers compare
    /// by value (`1` equals `1.0`). A string never equals a number ("1" != 1).
    pub(crate) fn equals(&self, claim: &Value) -> bool {
        match (self, claim) {
            (ClaimScalar::String(expected), Value::String(actual)) => **expected == **actual,
            (ClaimScalar::Bool(expected), Value::Bool(actual)) => expected == actual,
            (ClaimScalar::Number(expected), Value::Number(actual)) => {
                numbers_equal(expected, actual)
            }
            _ => false,
        }
    }
}

// Exact float equality on purpose: a claim either has the configured value or not.
#[allow(clippy::float_cmp)]
fn numbers_equal(left: &Number, right: &Number) -> bool {
    if let (Some(left), Some(right)) = (left.as_i64(), right.as_i64()) {
        return left == right;
    }
    if let (Some(left), Some(right)) = (left.as_u64(), right.as_u64()) {
        return left == right;
    }
    match (left.as_f64(), right.as_f64()) {
        (Some(left), Some(right)) => left == right,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use crate::policy::test_support::claims;
    use serde_json::json;

    fn path(name: &str) -> ClaimPath {
        ClaimPath::parse(name).expect("non-empty claim name")
    }

    #[test]
    fn empty_name_is_refused() {
        assert!(ClaimPath::parse("").is_none());
    }

    #[test]
    fn plain_name_is_looked_up() {
        let session = claims(json!({"department": "eng"}));
        assert_eq!(path("department").lookup(&session), Some(&json!("eng")));
        assert_eq!(path("team").lookup(&session), None);
    }

    #[test]
    fn whole_name_wins_over_nested_path() {
        let session = claims(json!({
            "example.com/key": "flat",
            "example": {"com": {"key": "nested"}},
        }));
        assert_eq!(
            path("example.com/key").lookup(&session),
            Some(&json!("flat"))
        );
    }

    #[test]
    fn nested_path_by_slash_and_dot() {
        let session = claims(json!({"realm_access": {"roles": ["admin"], "meta": {"tier": 2}}}));
        assert_eq!(
            path("realm_access/roles").lookup(&session),
            Some(&json!(["admin"]))
        );
        assert_eq!(
            path("realm_access.meta/tier").lookup(&session),
            Some(&json!(2))
        );
        assert_eq!(path("realm_access/missing").lookup(&session), None);
        assert_eq!(path("realm_access/roles/deeper").lookup(&session), None);
        assert_eq!(path("nothing/here").lookup(&session), None);
    }

    #[test]
    fn deep_nested_path_beyond_five_segments() {
        let session = claims(json!({"a": {"b": {"c": {"d": {"e": {"f": "deep"}}}}}}));
        assert_eq!(path("a/b/c/d/e/f").lookup(&session), Some(&json!("deep")));
    }

    #[test]
    fn values_as_a_list() {
        assert!(claim_values(None).is_empty());
        assert!(claim_values(Some(&json!(null))).is_empty());
        assert_eq!(claim_values(Some(&json!("x"))), &[json!("x")]);
        assert_eq!(
            claim_values(Some(&json!(["x", "y"]))),
            &[json!("x"), json!("y")]
        );
    }

    fn scalar(value: Value) -> ClaimScalar {
        ClaimScalar::from_json(&value).expect("scalar")
    }

    #[test]
    fn only_scalars_are_configurable() {
        assert!(ClaimScalar::from_json(&json!(null)).is_none());
        assert!(ClaimScalar::from_json(&json!([1])).is_none());
        assert!(ClaimScalar::from_json(&json!({"a": 1})).is_none());
    }

    #[test]
    fn scalar_equality() {
        assert!(scalar(json!("eng")).equals(&json!("eng")));
        assert!(!scalar(json!("eng")).equals(&json!("Eng")));
        assert!(!scalar(json!("1")).equals(&json!(1)));
        assert!(scalar(json!(true)).equals(&json!(true)));
        assert!(!scalar(json!(true)).equals(&json!(false)));
        assert!(!scalar(json!(true)).equals(&json!("true")));
        assert!(scalar(json!(42)).equals(&json!(42)));
        assert!(scalar(json!(42)).equals(&json!(42.0)));
        assert!(!scalar(json!(42)).equals(&json!(43)));
        assert!(!scalar(json!(42)).equals(&json!("42")));
        assert!(scalar(json!(-7)).equals(&json!(-7)));
        assert!(scalar(json!(u64::MAX)).equals(&json!(u64::MAX)));
        assert!(!scalar(json!(u64::MAX)).equals(&json!(u64::MAX - 1)));
        assert!(scalar(json!(0.5)).equals(&json!(0.5)));
        assert!(!scalar(json!("x")).equals(&json!(null)));
        assert!(!scalar(json!("x")).equals(&json!({"x": 1})));
    }
}
