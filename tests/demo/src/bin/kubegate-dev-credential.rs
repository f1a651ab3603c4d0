//! A client-go exec credential plugin for development: prints an ExecCredential whose token
//! is a session JWT signed by the committed development key, which filter-config/dev.json
//! trusts. Never use it against anything but a local demo.
//!
//! Usage: kubegate-dev-credential [--email E] [--groups g1,g2] [--ttl SECONDS]

use anyhow::{bail, Context, Result};
use kubegate_testkit::tokens::{exec_credential, now, SessionClaims, Signer};

fn main() -> Result<()> {
    let mut email = "someuser@example.com".to_string();
    let mut groups = "developers".to_string();
    let mut ttl: u64 = 300;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--email" => email = value()?,
            "--groups" => groups = value()?,
            "--ttl" => ttl = value()?.parse().context("--ttl takes seconds")?,
            "-h" | "--help" => {
                println!("kubegate-dev-credential [--email E] [--groups g1,g2] [--ttl SECONDS]");
                return Ok(());
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    let groups: Vec<&str> = groups.split(',').filter(|g| !g.is_empty()).collect();
    let mut claims = SessionClaims::dev(&email, &groups, now());
    claims.expires_at = claims.issued_at + ttl;
    let token = Signer::dev()?.sign(&claims)?;
    println!("{}", exec_credential(&token));
    Ok(())
}
