//! Configuration errors that say where in the policy document the problem is.

use serde_json::Value;
use std::fmt;

/// A policy the parser refused: the JSON path of the offending value (such as
/// `policy[0].allow.or[2].domain`) and what is wrong with it.
///
/// Displays as `path: problem`, ready for the configure-time log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    path: String,
    problem: String,
}

impl PolicyError {
    /// The JSON path of the offending value, rooted at `policy`.
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong with the value at [`PolicyError::path`].
    #[must_use]
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.problem)
    }
}

impl std::error::Error for PolicyError {}

#[derive(Debug, Clone, Copy)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

/// Where a value sits in the policy document.
///
/// A chain of borrowed segments on the parser's stack, so a valid policy costs no
/// string building; the text is only rendered when there is an error to report.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JsonPath<'a> {
    parent: Option<&'a JsonPath<'a>>,
    segment: Segment<'a>,
}

impl JsonPath<'static> {
    /// The policy document itself. The config layer prefixes its own location
    /// (e.g. `routes[0].`) when it reports the error.
    pub(crate) const fn root() -> Self {
        JsonPath {
            parent: None,
            segment: Segment::Key("policy"),
        }
    }
}

impl JsonPath<'_> {
    pub(crate) fn key<'b>(&'b self, key: &'b str) -> JsonPath<'b> {
        JsonPath {
            parent: Some(self),
            segment: Segment::Key(key),
        }
    }

    pub(crate) fn index(&self, index: usize) -> JsonPath<'_> {
        JsonPath {
            parent: Some(self),
            segment: Segment::Index(index),
        }
    }

    pub(crate) fn error(&self, problem: impl Into<String>) -> PolicyError {
        PolicyError {
            path: self.to_string(),
            problem: problem.into(),
        }
    }

    /// The error for a value of the wrong JSON type.
    pub(crate) fn wrong_type(&self, expected: &str, found: &Value) -> PolicyError {
        self.error(format!("expected {expected}, found {}", json_kind(found)))
    }
}

impl fmt::Display for JsonPath<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Recursion depth is the nesting of the parser's own code (a handful of
        // levels), never something the input controls.
        if let Some(parent) = self.parent {
            parent.fmt(f)?;
        }
        match (self.segment, self.parent.is_some()) {
            (Segment::Key(key), true) => write!(f, ".{key}"),
            (Segment::Key(key), false) => f.write_str(key),
            (Segment::Index(index), _) => write!(f, "[{index}]"),
        }
    }
}

/// How error messages name a JSON value's type.
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use serde_json::json;

    #[test]
    fn path_renders_keys_and_indexes() {
        let root = JsonPath::root();
        let rule = root.index(0);
        let allow = rule.key("allow");
        let or = allow.key("or");
        let item = or.index(2);
        let domain = item.key("domain");
        assert_eq!(domain.to_string(), "policy[0].allow.or[2].domain");
        assert_eq!(root.to_string(), "policy");
    }

    #[test]
    fn error_displays_path_then_problem() {
        let root = JsonPath::root();
        let allow = root.key("allow");
        let error = allow.error("something is wrong");
        assert_eq!(error.path(), "policy.allow");
        assert_eq!(error.problem(), "something is wrong");
        assert_eq!(error.to_string(), "policy.allow: something is wrong");
    }

    #[test]
    fn wrong_type_names_expected_and_found() {
        let root = JsonPath::root();
        let error = root.wrong_type("a string", &json!([1]));
        assert_eq!(error.to_string(), "policy: expected a string, found a list");
    }

    #[test]
    fn json_kinds() {
        assert_eq!(json_kind(&json!(null)), "null");
        assert_eq!(json_kind(&json!(true)), "a boolean");
        assert_eq!(json_kind(&json!(1.5)), "a number");
        assert_eq!(json_kind(&json!("x")), "a string");
        assert_eq!(json_kind(&json!([])), "a list");
        assert_eq!(json_kind(&json!({})), "an object");
    }
}
