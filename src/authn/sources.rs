//! An authenticator's token sources (`from`): the headers and cookies its tokens may
//! arrive in. All authenticators' sources form one list, read once per request.

use crate::config::{error, ConfigError};
use crate::token::TokenSource;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTokenSource {
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    cookie: Option<String>,
}

/// The authenticator's token sources, added to the shared list (`all`) where new;
/// returns their indices there. One header carries one kind of token: the same header
/// with two prefixes would read one value as two different tokens.
pub(super) fn token_sources(
    raw: Option<Vec<RawTokenSource>>,
    at: &str,
    all: &mut Vec<TokenSource>,
) -> Result<Vec<usize>, ConfigError> {
    let sources = match raw {
        None => TokenSource::default_sources(),
        Some(list) if list.is_empty() => {
            return Err(error(at, "at least one token source is required"))
        }
        Some(list) => list
            .into_iter()
            .enumerate()
            .map(|(i, s)| token_source(s, &format!("{at}[{i}]")))
            .collect::<Result<Vec<_>, _>>()?,
    };
    let mut indices = Vec::with_capacity(sources.len());
    for (i, source) in sources.into_iter().enumerate() {
        if let Some(existing) = all.iter().position(|s| *s == source) {
            if indices.contains(&existing) {
                return Err(error(
                    format!("{at}[{i}]"),
                    "this header or cookie is already a token source",
                ));
            }
            indices.push(existing);
            continue;
        }
        if all.iter().any(|s| s.same_place(&source)) {
            return Err(error(
                format!("{at}[{i}]"),
                "this header or cookie is already a token source with another prefix",
            ));
        }
        if all.len() >= crate::token::MAX_SOURCES {
            return Err(error(
                format!("{at}[{i}]"),
                format!("at most {} token sources in all", crate::token::MAX_SOURCES),
            ));
        }
        all.push(source);
        indices.push(all.len() - 1);
    }
    Ok(indices)
}

fn token_source(raw: RawTokenSource, at: &str) -> Result<TokenSource, ConfigError> {
    match (raw.header, raw.cookie) {
        (Some(name), None) => {
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !valid {
                return Err(error(format!("{at}.header"), "not a header name"));
            }
            if name.to_ascii_lowercase().starts_with("impersonate-") {
                return Err(error(
                    format!("{at}.header"),
                    "impersonate-* headers are the filter's own",
                ));
            }
            Ok(TokenSource::Header {
                name: name.to_ascii_lowercase(),
                prefix: raw.prefix.unwrap_or_default(),
            })
        }
        (None, Some(name)) => {
            if raw.prefix.is_some() {
                return Err(error(
                    format!("{at}.prefix"),
                    "a prefix applies to header sources only",
                ));
            }
            if name.is_empty() || name.contains([';', '=', ' ']) {
                return Err(error(format!("{at}.cookie"), "not a cookie name"));
            }
            Ok(TokenSource::Cookie { name })
        }
        _ => Err(error(at, "set exactly one of header and cookie")),
    }
}
