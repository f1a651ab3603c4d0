//! Token extraction: any header list, any configured sources. Never panics; a token it
//! returns is trimmed, non-empty and taken from a configured place; a repeated
//! Authorization header (in any letter case) is always refused.
#![no_main]

use arbitrary::Arbitrary;
use kubegate::token::{cookie_header_without, extract, TokenSource};
use kubegate_fuzz::{mix_case, FuzzHeader};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Source {
    Header { name: String, prefix: String },
    Cookie { name: String },
}

#[derive(Arbitrary, Debug)]
struct Input {
    sources: Vec<Source>,
    headers: Vec<FuzzHeader>,
    cookie_value: String,
    cookie_name: String,
    case_mask: u64,
}

fuzz_target!(|input: Input| {
    let mut sources: Vec<TokenSource> = input
        .sources
        .into_iter()
        .take(4)
        .map(|s| match s {
            Source::Header { name, prefix } => TokenSource::Header {
                name: name.to_ascii_lowercase(),
                prefix,
            },
            Source::Cookie { name } => TokenSource::Cookie { name },
        })
        .collect();
    if sources.is_empty() {
        sources = TokenSource::default_sources();
    }
    let headers: Vec<(String, String)> = input.headers.iter().map(FuzzHeader::render).collect();
    let result = extract(&sources, &headers);
    let authorizations = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        .count();
    if authorizations > 1 {
        assert!(
            result.is_err(),
            "a repeated Authorization header was accepted"
        );
    }
    if let Ok(Some(token)) = &result {
        assert!(!token.is_empty());
        assert_eq!(token.trim(), token.as_ref());
        assert!(
            headers.iter().any(|(_, v)| v.contains(token.as_ref())),
            "the token is not from the request"
        );
    }

    // Cookie removal never leaves the named cookie behind.
    let name = mix_case(&input.cookie_name, input.case_mask);
    if !name.trim().is_empty() && !name.contains([';', '=']) {
        if let Some(kept) = cookie_header_without(&input.cookie_value, name.trim()) {
            for pair in kept.split(';') {
                let key = pair.split_once('=').map_or(pair, |(k, _)| k).trim();
                assert_ne!(key, name.trim());
            }
        }
    }
});
