//! Pomerium Policy Language (PPL): parsed once at configure time, evaluated per request.
//!
//! Interface (owned by the policy work; config.rs calls `Policy::parse`):
//!
//! ```ignore
//! let policy = Policy::parse(&json_value)?;        // Result<Policy, PolicyError>, error names the path
//! let verdict = policy.evaluate(&Facts { ... });  // Verdict { allowed, reason }
//! ```
