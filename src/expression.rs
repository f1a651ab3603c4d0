//! CEL expressions in authenticators (`claimValidationRules[].expression`,
//! `claimMappings.*.expression`, `claimMappings.extra[].valueExpression`,
//! `userValidationRules[].expression`), as Kubernetes' AuthenticationConfiguration
//! defines them (kubernetes/apiserver pkg/apis/apiserver/types.go).
//!
//! A CEL interpreter does not fit the default module's size budget, so expressions work
//! only in the second build, `kubegate-cel.wasm` (cargo feature `cel`). The default build
//! refuses, at load, any configuration that uses one: `compile` fails with a message that
//! names the module to use instead, and the caller adds the field path.

use crate::Claims;
use serde_json::Value;

/// Whether this build evaluates CEL expressions.
pub const AVAILABLE: bool = cfg!(feature = "cel");

/// The message a configuration with an expression gets from the default module.
pub const NOT_IN_THIS_BUILD: &str =
    "CEL expressions need the kubegate-cel.wasm module; kubegate.wasm has no CEL interpreter (use claim instead, or load kubegate-cel.wasm)";

/// The user an authenticator produced, as `userValidationRules` see it (`user.username`,
/// `user.uid`, `user.groups`, `user.extra`).
#[derive(Clone, Copy, Debug)]
pub struct UserView<'a> {
    pub username: &'a str,
    pub uid: Option<&'a str>,
    pub groups: &'a [String],
    pub extra: &'a [(String, Vec<String>)],
}

/// One compiled expression. Compiled once at configure time; evaluated per token.
pub struct Expression {
    source: String,
    #[cfg(feature = "cel")]
    program: crate::cel::Program,
}

impl std::fmt::Debug for Expression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Expression").field(&self.source).finish()
    }
}

impl Expression {
    /// Compiles `source`; a syntax error (or, in the default build, any expression at
    /// all) is a configuration error.
    pub fn compile(source: &str) -> Result<Expression, String> {
        if source.trim().is_empty() {
            return Err("an expression must not be empty".into());
        }
        #[cfg(feature = "cel")]
        {
            let program = crate::cel::Program::compile(source)?;
            Ok(Expression {
                source: source.to_string(),
                program,
            })
        }
        #[cfg(not(feature = "cel"))]
        {
            Err(NOT_IN_THIS_BUILD.into())
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether the expression reads `claims.<name>` (Kubernetes requires a username
    /// expression that reads `claims.email` to read `claims.email_verified` too).
    pub fn reads_claim(&self, name: &str) -> bool {
        #[cfg(feature = "cel")]
        {
            self.program.reads_claim(name)
        }
        #[cfg(not(feature = "cel"))]
        {
            let _ = name;
            false
        }
    }

    /// Evaluates with `claims` bound to the token's claims; the result as JSON.
    pub fn eval_claims(&self, claims: &Claims) -> Result<Value, String> {
        #[cfg(feature = "cel")]
        {
            self.program.eval_claims(claims)
        }
        #[cfg(not(feature = "cel"))]
        {
            let _ = claims;
            Err(NOT_IN_THIS_BUILD.into())
        }
    }

    /// Evaluates with `user` bound to the mapped user.
    pub fn eval_user(&self, user: UserView<'_>) -> Result<Value, String> {
        #[cfg(feature = "cel")]
        {
            self.program.eval_user(user)
        }
        #[cfg(not(feature = "cel"))]
        {
            let _ = user;
            Err(NOT_IN_THIS_BUILD.into())
        }
    }
}

#[cfg(all(test, not(feature = "cel")))]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    #[test]
    fn the_default_build_refuses_every_expression_and_names_the_cel_module() {
        for source in [
            "claims.email",
            "true",
            "claims.?email_verified.orValue(true)",
        ] {
            let problem = Expression::compile(source).unwrap_err();
            assert!(problem.contains("kubegate-cel.wasm"), "{problem}");
        }
    }
}
