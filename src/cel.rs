//! The CEL interpreter behind [`crate::expression::Expression`], built only into
//! `kubegate-cel.wasm` (cargo feature `cel`), on the `cel` crate.
//!
//! Expressions see what Kubernetes gives them (kubernetes/apiserver
//! pkg/apis/apiserver/types.go, `ClaimValidationRule`, `ClaimMappings`,
//! `UserValidationRule`): `claims`, the token's claims as a map, or `user`, with
//! `username`, `uid`, `groups` and `extra`. CEL's optional syntax (`claims.?x`,
//! `.orValue(...)`, from the CEL spec's optional-types extension) is on, because
//! Kubernetes' own examples use it: `claims.?email_verified.orValue(true) == true`.
//!
//! The configuration is trusted and the claims are not: a claim of any shape or size makes
//! an evaluation return `Err`, never panic. JSON numbers keep their kind: an integer is a
//! CEL `int` (a `uint` above `i64::MAX`), anything else a `double`.

use crate::expression::UserView;
use crate::Claims;
use cel::common::ast::{operators, EntryExpr, Expr, IdedExpr, LiteralValue};
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::Val;
use cel::objects::Key;
use cel::{Context, Env, Value as CelValue};
use serde_json::{Map, Number, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The deepest expression tree accepted (the parser's own default is 96): evaluation
/// recurses once per level, and the proxy's wasm stack is not large.
const MAX_NESTING: u16 = 48;

/// Longer sources are refused before parsing. Kubernetes' own limit is a cost budget;
/// a mapping or a rule that needs more than this is not one a reviewer can read.
const MAX_SOURCE_BYTES: usize = 10 * 1024;

/// Brackets and parentheses deeper than this are refused before the parser sees them, so
/// that no parser stage recurses on an absurd input.
const MAX_BRACKETS: usize = MAX_NESTING as usize;

/// JSON deeper than this (in claims or in a result) is an evaluation error.
const MAX_VALUE_DEPTH: usize = 64;

thread_local! {
    /// The standard library, built once per thread (one per wasm VM) and shared by every
    /// expression.
    static ENV: Arc<Env> = Arc::new(Env::stdlib());
}

fn env() -> Arc<Env> {
    ENV.with(Arc::clone)
}

/// The crate's Pratt parser, not its ANTLR one (`Env::parser`), whose runtime would be a
/// third of the module's size. The same standard macros (`has`, `all`, `exists`,
/// `exists_one`, `map`, `filter`) and the optional syntax on, as in Kubernetes; the test
/// `both_parsers_agree` holds it to the ANTLR parser's results.
fn parser() -> cel::parser::PrattParser {
    cel::parser::PrattParser::new()
        .enable_optional_syntax(true)
        .max_recursion_depth(MAX_NESTING)
}

/// One parsed expression.
pub(crate) struct Program {
    expression: IdedExpr,
}

impl Program {
    /// Parses `source`; a syntax error is the message.
    pub(crate) fn compile(source: &str) -> Result<Program, String> {
        if source.len() > MAX_SOURCE_BYTES {
            return Err(format!(
                "the expression is {} bytes long; at most {MAX_SOURCE_BYTES} are accepted",
                source.len()
            ));
        }
        if bracket_depth(source) > MAX_BRACKETS {
            return Err(format!(
                "the expression nests brackets more than {MAX_BRACKETS} deep"
            ));
        }
        let expression = parser()
            .parse(source)
            .map_err(|errors| format!("invalid CEL: {}", errors.to_string().trim()))?;
        Ok(Program { expression })
    }

    /// Whether the expression reads `claims.NAME`, `claims.?NAME`, `claims["NAME"]` or
    /// `claims[?"NAME"]` anywhere, `has(claims.NAME)` included. Kubernetes makes the same
    /// check on the parsed expression when it refuses a username expression that reads
    /// `claims.email` but not `claims.email_verified` (kubernetes/apiserver
    /// pkg/apis/apiserver/validation/validation.go).
    pub(crate) fn reads_claim(&self, name: &str) -> bool {
        reads(&self.expression, name)
    }

    /// Evaluates with `claims` bound to the token's claims.
    pub(crate) fn eval_claims(&self, claims: &Claims) -> Result<Value, String> {
        let claims = map_val(claims, 0)?;
        self.run("claims", claims)
    }

    /// Evaluates with `user` bound to the mapped user.
    pub(crate) fn eval_user(&self, user: UserView<'_>) -> Result<Value, String> {
        let mut fields: HashMap<CelMapKey<'_>, Box<dyn Val + '_>> = HashMap::new();
        fields.insert("username".into(), Box::new(CelString::from(user.username)));
        fields.insert(
            "uid".into(),
            Box::new(CelString::from(user.uid.unwrap_or(""))),
        );
        fields.insert("groups".into(), strings(user.groups));
        let extra: HashMap<CelMapKey<'_>, Box<dyn Val + '_>> = user
            .extra
            .iter()
            .map(|(key, values)| (CelMapKey::from(key.as_str()), strings(values)))
            .collect();
        fields.insert("extra".into(), Box::new(CelMap::from(extra)));
        self.run("user", Box::new(CelMap::from(fields)))
    }

    fn run<'v>(&self, name: &str, value: Box<dyn Val + 'v>) -> Result<Value, String> {
        let mut context = Context::with_env(env());
        context.add_variable_as_val(name, value);
        let result = CelValue::resolve(&self.expression, &context).map_err(|e| e.to_string())?;
        to_json(&result, 0)
    }
}

/// The deepest nesting of `(`, `[` and `{`, counted without regard to string literals
/// (which can only overstate it).
fn bracket_depth(source: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for b in source.bytes() {
        match b {
            b'(' | b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

fn is_claims(expr: &IdedExpr) -> bool {
    matches!(&expr.expr, Expr::Ident(name) if name == "claims")
}

fn is_string(expr: &IdedExpr, name: &str) -> bool {
    matches!(&expr.expr, Expr::Literal(LiteralValue::String(s)) if s.inner() == name)
}

/// The walk behind [`Program::reads_claim`]; the parser bounds the tree's depth.
fn reads(expr: &IdedExpr, name: &str) -> bool {
    match &expr.expr {
        Expr::Select(select) => {
            (select.field == name && is_claims(&select.operand)) || reads(&select.operand, name)
        }
        Expr::Call(call) => {
            let selects = matches!(
                call.func_name.as_str(),
                operators::OPT_SELECT | operators::INDEX | operators::OPT_INDEX
            ) && call.target.is_none()
                && call.args.len() == 2
                && is_claims(&call.args[0])
                && is_string(&call.args[1], name);
            selects
                || call.target.as_deref().is_some_and(|t| reads(t, name))
                || call.args.iter().any(|a| reads(a, name))
        }
        Expr::Comprehension(c) => [
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ]
        .into_iter()
        .any(|e| reads(e, name)),
        Expr::List(list) => list.elements.iter().any(|e| reads(e, name)),
        Expr::Map(map) => map.entries.iter().any(|e| entry_reads(&e.expr, name)),
        Expr::Struct(s) => s.entries.iter().any(|e| entry_reads(&e.expr, name)),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => false,
    }
}

fn entry_reads(entry: &EntryExpr, name: &str) -> bool {
    match entry {
        EntryExpr::MapEntry(e) => reads(&e.key, name) || reads(&e.value, name),
        EntryExpr::StructField(f) => reads(&f.value, name),
    }
}

fn strings(values: &[String]) -> Box<dyn Val + '_> {
    Box::new(CelList::from(
        values
            .iter()
            .map(|s| Box::new(CelString::from(s.as_str())) as Box<dyn Val + '_>)
            .collect::<Vec<_>>(),
    ))
}

/// A JSON value as CEL sees it, borrowing its strings.
fn json_val(value: &Value, depth: usize) -> Result<Box<dyn Val + '_>, String> {
    if depth > MAX_VALUE_DEPTH {
        return Err(format!("claims nested more than {MAX_VALUE_DEPTH} deep"));
    }
    Ok(match value {
        Value::Null => Box::new(CelNull),
        Value::Bool(b) => Box::new(CelBool::from(*b)),
        Value::Number(n) => number_val(n)?,
        Value::String(s) => Box::new(CelString::from(s.as_str())),
        Value::Array(items) => Box::new(CelList::from(
            items
                .iter()
                .map(|item| json_val(item, depth + 1))
                .collect::<Result<Vec<_>, _>>()?,
        )),
        Value::Object(map) => map_val(map, depth + 1)?,
    })
}

fn map_val(map: &Map<String, Value>, depth: usize) -> Result<Box<dyn Val + '_>, String> {
    let entries = map
        .iter()
        .map(|(key, value)| Ok((CelMapKey::from(key.as_str()), json_val(value, depth)?)))
        .collect::<Result<HashMap<_, _>, String>>()?;
    Ok(Box::new(CelMap::from(entries)))
}

fn number_val(n: &Number) -> Result<Box<dyn Val + 'static>, String> {
    if let Some(i) = n.as_i64() {
        Ok(Box::new(CelInt::from(i)))
    } else if let Some(u) = n.as_u64() {
        Ok(Box::new(CelUInt::from(u)))
    } else if let Some(f) = n.as_f64() {
        Ok(Box::new(CelDouble::from(f)))
    } else {
        Err(format!("the number {n} has no CEL value"))
    }
}

/// A result as JSON. Only what JSON can say converts: an optional, bytes or a non-finite
/// double is an error. (The crate hands a type, `type(x)`, back as its name.)
fn to_json(value: &CelValue, depth: usize) -> Result<Value, String> {
    if depth > MAX_VALUE_DEPTH {
        return Err(format!("a result nested more than {MAX_VALUE_DEPTH} deep"));
    }
    Ok(match value {
        CelValue::Null => Value::Null,
        CelValue::Bool(b) => Value::Bool(*b),
        CelValue::Int(i) => Value::from(*i),
        CelValue::UInt(u) => Value::from(*u),
        CelValue::Float(f) => Number::from_f64(*f)
            .map(Value::Number)
            .ok_or_else(|| format!("the result {f} is not a finite number"))?,
        CelValue::String(s) => Value::String(s.as_str().to_owned()),
        CelValue::List(items) => Value::Array(
            items
                .iter()
                .map(|item| to_json(item, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        CelValue::Map(map) => {
            let mut out = Map::new();
            for (key, item) in map.map.iter() {
                let key = match key {
                    Key::String(s) => s.as_str().to_owned(),
                    other => return Err(format!("a map result with the non-string key {other:?}")),
                };
                out.insert(key, to_json(item, depth + 1)?);
            }
            Value::Object(out)
        }
        other => {
            return Err(format!(
                "a result of type {} has no JSON form",
                other.type_of()
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Claims {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn eval(source: &str, value: Value) -> Result<Value, String> {
        Program::compile(source)?.eval_claims(&claims(value))
    }

    #[test]
    fn the_kubernetes_idioms() {
        let token = json!({
            "sub": "1234",
            "email": "jane@example.com",
            "email_verified": true,
            "groups": ["dev", "ops"],
            "n": 3,
        });
        let cases = [
            ("claims.?email_verified.orValue(true) == true", json!(true)),
            ("has(claims.email)", json!(true)),
            ("has(claims.missing)", json!(false)),
            ("'dev' in claims.groups", json!(true)),
            ("'qa' in claims.groups", json!(false)),
            ("claims.email.endsWith('@example.com')", json!(true)),
            ("'oidc:' + claims.sub", json!("oidc:1234")),
            (
                "claims.groups.map(g, 'oidc:' + g)",
                json!(["oidc:dev", "oidc:ops"]),
            ),
            ("claims.email_verified == true", json!(true)),
            ("claims.?nickname.orValue('none')", json!("none")),
            ("claims.n + 1", json!(4)),
            ("double(claims.n) * 1.5", json!(4.5)),
            ("claims.groups.filter(g, g.startsWith('o'))", json!(["ops"])),
            ("claims.groups.exists(g, g == 'ops')", json!(true)),
            ("size(claims.groups)", json!(2)),
            ("claims['email']", json!("jane@example.com")),
            ("{'a': claims.sub}", json!({"a": "1234"})),
            ("null", json!(null)),
        ];
        for (source, expected) in cases {
            assert_eq!(eval(source, token.clone()), Ok(expected), "{source}");
        }
    }

    #[test]
    fn email_verified_through_the_optional_idiom_is_true_only_when_absent_or_true() {
        let rule = Program::compile("claims.?email_verified.orValue(true) == true").unwrap();
        let run = |claims_value: Value| rule.eval_claims(&claims(claims_value));
        assert_eq!(run(json!({"email": "a@b"})), Ok(json!(true)));
        assert_eq!(
            run(json!({"email": "a@b", "email_verified": true})),
            Ok(json!(true))
        );
        assert_eq!(
            run(json!({"email": "a@b", "email_verified": false})),
            Ok(json!(false))
        );
        for hostile in [
            json!("false"),
            json!("true"),
            json!(1),
            json!(0),
            json!(null),
            json!([true]),
            json!({"v": true}),
        ] {
            let result = run(json!({"email": "a@b", "email_verified": hostile.clone()}));
            assert!(
                result.is_err() || result == Ok(json!(false)),
                "email_verified {hostile} gave {result:?}"
            );
        }
    }

    #[test]
    fn json_values_keep_their_types_both_ways() {
        let token = json!({
            "int": 7,
            "neg": -7,
            "big": u64::MAX,
            "float": 2.5,
            "whole_float": 2.0,
            "null": null,
            "list": [1, "a", null, [true]],
            "map": {"k": {"n": 1}},
        });
        for key in ["int", "neg", "big", "float", "null", "list", "map"] {
            assert_eq!(
                eval(&format!("claims[{key:?}]"), token.clone()),
                Ok(token[key].clone()),
                "{key}"
            );
        }
        assert_eq!(
            eval("type(claims.int) == int", token.clone()),
            Ok(json!(true))
        );
        assert_eq!(
            eval("type(claims.big) == uint", token.clone()),
            Ok(json!(true))
        );
        assert_eq!(
            eval("type(claims.whole_float) == double", token.clone()),
            Ok(json!(true))
        );
        assert_eq!(eval("claims.whole_float", token.clone()), Ok(json!(2.0)));
        assert_eq!(
            eval("claims['null'] == null", token.clone()),
            Ok(json!(true))
        );
        assert_eq!(eval("claims.int == 7", token.clone()), Ok(json!(true)));
        // CEL has no mixed arithmetic: an int claim times a double is an error.
        assert!(eval("claims.int * 1.5", token.clone()).is_err());
    }

    #[test]
    fn results_without_a_json_form_are_errors() {
        let token = json!({"f": 1.0});
        for source in ["claims.?missing", "b'bytes'", "claims.f / 0.0", "{1: 'a'}"] {
            assert!(eval(source, token.clone()).is_err(), "{source}");
        }
    }

    #[test]
    fn evaluation_errors_are_errors() {
        let token = json!({"email": "a@b", "groups": "not-a-list", "n": 1});
        for source in [
            "claims.missing",
            "claims.email.endsWith(1)",
            "claims.groups.map(g, g + 'x')",
            "claims.n / 0",
            "claims.n + 'x'",
            "undeclared",
            "claims.email.missing",
            "9223372036854775807 + claims.n",
        ] {
            assert!(eval(source, token.clone()).is_err(), "{source}");
        }
    }

    #[test]
    fn parse_errors_are_the_message() {
        for source in ["claims.", "claims.email ==", "(", "'unterminated", "a b"] {
            let problem = Program::compile(source).err().unwrap();
            assert!(problem.starts_with("invalid CEL"), "{source}: {problem}");
        }
    }

    #[test]
    fn user_expressions_see_username_uid_groups_and_extra() {
        let groups = vec!["dev".to_string(), "system:masters".to_string()];
        let extra = vec![("scopes".to_string(), vec!["a".to_string(), "b".to_string()])];
        let user = UserView {
            username: "jane",
            uid: None,
            groups: &groups,
            extra: &extra,
        };
        let cases = [
            ("user.username", json!("jane")),
            ("user.uid", json!("")),
            ("!user.username.startsWith('system:')", json!(true)),
            ("user.groups.all(g, !g.startsWith('system:'))", json!(false)),
            ("user.extra['scopes']", json!(["a", "b"])),
            ("'b' in user.extra.scopes", json!(true)),
            ("has(user.extra.other)", json!(false)),
        ];
        for (source, expected) in cases {
            let program = Program::compile(source).unwrap();
            assert_eq!(program.eval_user(user), Ok(expected), "{source}");
        }
        let with_uid = UserView {
            uid: Some("42"),
            ..user
        };
        let program = Program::compile("user.uid").unwrap();
        assert_eq!(program.eval_user(with_uid), Ok(json!("42")));
    }

    #[test]
    fn reads_claim_finds_every_way_of_reading_a_claim() {
        let reads = |source: &str, name: &str| Program::compile(source).unwrap().reads_claim(name);
        for source in [
            "claims.email",
            "claims.?email.orValue('')",
            "claims['email']",
            "claims[?'email'].orValue('')",
            "has(claims.email)",
            "claims.email_verified ? claims.email : ''",
            "[claims.sub, {'k': claims.email}]",
            "claims.groups.map(g, g + claims.email)",
            "'x' + claims.email.lowerAscii()",
            "size(claims.email) > 0",
        ] {
            assert!(reads(source, "email"), "{source}");
        }
        for source in [
            "claims.email_verified",
            "claims.sub",
            "'claims.email'",
            "user.email",
            "claims.profile.email",
            "claims[claims.key]",
        ] {
            assert!(!reads(source, "email"), "{source}");
        }
        assert!(reads(
            "claims.?email_verified.orValue(true) == true ? claims.email : ''",
            "email_verified"
        ));
    }

    #[test]
    fn hostile_expressions_are_refused_at_compile_time() {
        let deep =
            |open: &str, close: &str, n: usize| format!("{}1{}", open.repeat(n), close.repeat(n));
        for source in [
            deep("(", ")", 100_000),
            deep("[", "]", 100_000),
            deep("{1:", "}", 100_000),
            deep("f(", ")", 5_000),
            "!".repeat(100_000) + "true",
            "-".repeat(100_000) + "1",
            "claims".to_string() + &".a".repeat(50_000),
            vec!["1"; 50_000].join(" + "),
            vec!["true"; 50_000].join(" && "),
            "'".repeat(100_000),
        ] {
            assert!(Program::compile(&source).is_err(), "{}", &source[..40]);
        }
        // Moderate nesting still works.
        assert_eq!(eval(&deep("(", ")", 20), json!({})), Ok(json!(1)));
        assert_eq!(eval(&vec!["1"; 20].join(" + "), json!({})), Ok(json!(20)));
    }

    #[test]
    fn both_parsers_agree() {
        let token = claims(json!({
            "sub": "1234",
            "email": "jane@example.com",
            "email_verified": false,
            "groups": ["dev", "ops"],
            "n": 3,
            "f": 1.5,
            "m": {"k": [1, {"z": null}]},
        }));
        let sources = [
            "claims.?email_verified.orValue(true) == true",
            "claims[?'email_verified'].orValue(true)",
            "claims.?m.?k.orValue([])",
            "has(claims.m.k) && !has(claims.m.q)",
            "'dev' in claims.groups && !('x' in claims.groups)",
            "claims.email.endsWith('@example.com') ? claims.email : 'x'",
            "claims.groups.map(g, 'oidc:' + g)",
            "claims.groups.filter(g, g != 'dev').map(g, g + g)",
            "claims.groups.all(g, size(g) == 3) || claims.groups.exists_one(g, g == 'ops')",
            "[1, 2u, 3.0, 'a', b'b', null, true, {'k': -claims.n}]",
            "claims.n * 2 - 1 / 1 % 5 <= 6 && claims.f >= 1.0 && claims.n != 4",
            "claims.m['k'][1].z == null",
            "size(claims.sub) + int('2') + int(claims.f)",
            r#"string(claims.n) + "\n" + r'\n' + '''triple''' + "\u00e9""#,
            "claims.sub.contains('23') && claims.sub.startsWith('1')",
            "1 +",
            "claims..x",
            "[?claims.?missing, ?optional.of(1)]",
            "{?'a': claims.?missing, 'b': 1}",
        ];
        for source in sources {
            let pratt = Program::compile(source).map(|p| p.eval_claims(&token));
            let antlr = env()
                .parser()
                .parse(source)
                .map(|expression| Program { expression }.eval_claims(&token));
            assert_eq!(
                pratt.is_ok(),
                antlr.is_ok(),
                "{source}: {pratt:?} / {:?}",
                antlr.as_ref().err()
            );
            if let (Ok(pratt), Ok(antlr)) = (pratt, antlr) {
                assert_eq!(pratt, antlr, "{source}");
            }
        }
    }

    #[test]
    fn hostile_claims_are_errors_or_values_never_panics() {
        // Deeper than MAX_VALUE_DEPTH (serde_json itself stops at 128).
        let mut deep = json!(1);
        for _ in 0..100 {
            deep = json!([deep]);
        }
        assert!(eval("claims.deep", json!({ "deep": deep })).is_err());
        assert!(eval("size(claims)", json!({ "deep": deep })).is_err());

        let huge: Vec<Value> = (0..200_000).map(|i| json!(format!("g{i}"))).collect();
        let token = json!({ "groups": huge });
        assert_eq!(
            eval("size(claims.groups)", token.clone()),
            Ok(json!(200_000))
        );
        assert_eq!(
            eval("'g199999' in claims.groups", token.clone()),
            Ok(json!(true))
        );
        let mapped = eval("claims.groups.map(g, 'oidc:' + g)", token).unwrap();
        assert_eq!(mapped.as_array().map(Vec::len), Some(200_000));

        // Every claim shape against expressions that expect another.
        let shapes = [
            json!(null),
            json!(true),
            json!(-1),
            json!(u64::MAX),
            json!(1.5e308),
            json!(""),
            json!("x".repeat(100_000)),
            json!([]),
            json!([null, 1, "a"]),
            json!({}),
            json!({"": {"": null}}),
        ];
        let sources = [
            "claims.x.endsWith('a')",
            "'a' in claims.x",
            "claims.x.map(g, 'oidc:' + g)",
            "claims.x + 1",
            "claims.x * 2.0",
            "-claims.x",
            "claims.x == true",
            "claims.?x.orValue(true) == true",
            "size(claims.x)",
            "claims.x[0]",
            "claims.x['']",
            "has(claims.x.y)",
            "claims.x.y.z",
            "int(claims.x)",
            "string(claims.x)",
            "double(claims.x)",
            "uint(claims.x)",
        ];
        for source in sources {
            let program = Program::compile(source).unwrap();
            for shape in &shapes {
                let _ = program.eval_claims(&claims(json!({ "x": shape })));
            }
        }
    }
}
