//! Where the session token is read from: a header with an optional value prefix, or a cookie.
//!
//! The request is seen as every header pair, duplicates included: Envoy's "get one header"
//! returns only the first value, and a second Authorization header is a classic smuggling
//! trick, so nothing here looks at just the first value.

use std::borrow::Cow;

/// One place a token may come from, as configured under `jwt.from`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSource {
    /// A request header (name lower case); the value must start with `prefix`
    /// (compared ignoring ASCII case, so `bearer ` and `Bearer ` both work).
    Header { name: String, prefix: String },
    /// A cookie by exact name.
    Cookie { name: String },
}

/// At most this many token sources across all authenticators (one bit each in
/// `Found::sources`).
pub const MAX_SOURCES: usize = 32;

impl TokenSource {
    /// Whether both read the same header (whatever the prefix) or the same cookie.
    pub fn same_place(&self, other: &TokenSource) -> bool {
        match (self, other) {
            (TokenSource::Header { name: x, .. }, TokenSource::Header { name: y, .. }) => x == y,
            (TokenSource::Cookie { name: x }, TokenSource::Cookie { name: y }) => x == y,
            _ => false,
        }
    }

    /// kubectl's exec-credential plugins send `Authorization: Bearer <jwt>`.
    pub fn default_sources() -> Vec<TokenSource> {
        vec![TokenSource::Header {
            name: "authorization".to_string(),
            prefix: "Bearer ".to_string(),
        }]
    }
}

/// Why no single token could be taken from the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// The same header occurs more than once (only one credential per request).
    RepeatedHeader(String),
    /// Two different tokens were presented (e.g. a header and a cookie).
    ConflictingTokens,
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::RepeatedHeader(name) => {
                write!(f, "the {name} header is repeated; send exactly one")
            }
            TokenError::ConflictingTokens => {
                f.write_str("two different tokens were presented; send exactly one")
            }
        }
    }
}

/// Finds the one session token in `headers` (all pairs, names as the proxy gives them).
/// `Ok(None)` means no configured source holds a token.
pub fn extract<'h>(
    sources: &[TokenSource],
    headers: &'h [(String, String)],
) -> Result<Option<Cow<'h, str>>, TokenError> {
    Ok(find(sources, headers)?.map(|found| found.token))
}

/// The token and where it was found.
#[derive(Debug)]
pub struct Found<'h> {
    pub token: Cow<'h, str>,
    /// Bit `i` is set when `sources[i]` held the token (the same token may arrive in more
    /// than one place).
    pub sources: u64,
}

impl Found<'_> {
    /// Whether one of the source indices `accepted` held the token.
    pub fn came_from_any(&self, accepted: &[usize]) -> bool {
        accepted
            .iter()
            .any(|&i| i < 64 && self.sources & (1u64 << i) != 0)
    }
}

/// `extract`, also saying which sources held the token.
pub fn find<'h>(
    sources: &[TokenSource],
    headers: &'h [(String, String)],
) -> Result<Option<Found<'h>>, TokenError> {
    // A repeated Authorization header is refused even when not configured as a source:
    // the filter replaces it, and two values mean the client is trying something.
    for name in sources
        .iter()
        .filter_map(|s| match s {
            TokenSource::Header { name, .. } => Some(name.as_str()),
            TokenSource::Cookie { .. } => None,
        })
        .chain(std::iter::once("authorization"))
    {
        if headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .nth(1)
            .is_some()
        {
            return Err(TokenError::RepeatedHeader(name.to_string()));
        }
    }

    let mut found: Option<Cow<'h, str>> = None;
    let mut found_in = 0u64;
    for (index, source) in sources.iter().enumerate() {
        let candidates: Vec<&'h str> = match source {
            TokenSource::Header { name, prefix } => headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .filter_map(|(_, value)| strip_prefix_ignore_case(value.trim(), prefix))
                .collect(),
            TokenSource::Cookie { name } => cookie_values(headers, name),
        };
        for candidate in candidates {
            let candidate = candidate.trim();
            if candidate.is_empty() {
                continue;
            }
            match &found {
                Some(existing) if existing.as_ref() != candidate => {
                    return Err(TokenError::ConflictingTokens)
                }
                Some(_) => {}
                None => found = Some(Cow::Borrowed(candidate)),
            }
            if index < 64 {
                found_in |= 1u64 << index;
            }
        }
    }
    Ok(found.map(|token| Found {
        token,
        sources: found_in,
    }))
}

fn strip_prefix_ignore_case<'v>(value: &'v str, prefix: &str) -> Option<&'v str> {
    let head = value.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        value.get(prefix.len()..)
    } else {
        None
    }
}

/// Every value of cookie `name` across all Cookie headers (HTTP/2 may split cookies into
/// several headers, RFC 9113 section 8.2.3).
pub fn cookie_values<'h>(headers: &'h [(String, String)], name: &str) -> Vec<&'h str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, value)| value.split(';'))
        .filter_map(move |pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key.trim() == name).then_some(value.trim())
        })
        .collect()
}

/// The Cookie header value with cookie `name` removed; `None` when nothing is left.
pub fn cookie_header_without(value: &str, name: &str) -> Option<String> {
    let kept: Vec<&str> = value
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            pair.split_once('=')
                .map_or(pair.trim() != name, |(key, _)| key.trim() != name)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn sources_with_cookie() -> Vec<TokenSource> {
        vec![
            TokenSource::Header {
                name: "authorization".into(),
                prefix: "Bearer ".into(),
            },
            TokenSource::Cookie {
                name: "_session".into(),
            },
        ]
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let headers = h(&[("authorization", &format!("{scheme} abc.def.ghi"))]);
            let token = extract(&TokenSource::default_sources(), &headers).unwrap();
            assert_eq!(token.as_deref(), Some("abc.def.ghi"), "scheme {scheme}");
        }
    }

    #[test]
    fn other_schemes_are_not_tokens() {
        let headers = h(&[("authorization", "Basic dXNlcjpwYXNz")]);
        assert_eq!(
            extract(&TokenSource::default_sources(), &headers).unwrap(),
            None
        );
        let headers = h(&[("authorization", "Bearer")]);
        assert_eq!(
            extract(&TokenSource::default_sources(), &headers).unwrap(),
            None
        );
        let headers = h(&[("authorization", "Bearer    ")]);
        assert_eq!(
            extract(&TokenSource::default_sources(), &headers).unwrap(),
            None
        );
    }

    #[test]
    fn value_prefix_after_bearer_is_honoured() {
        let sources = vec![TokenSource::Header {
            name: "authorization".into(),
            prefix: "Bearer Pomerium-".into(),
        }];
        let headers = h(&[("authorization", "Bearer Pomerium-abc.def.ghi")]);
        assert_eq!(
            extract(&sources, &headers).unwrap().as_deref(),
            Some("abc.def.ghi")
        );
        let headers = h(&[("authorization", "Bearer abc.def.ghi")]);
        assert_eq!(extract(&sources, &headers).unwrap(), None);
    }

    #[test]
    fn custom_header_in_any_letter_case() {
        let sources = vec![TokenSource::Header {
            name: "x-session-token".into(),
            prefix: String::new(),
        }];
        let headers = h(&[("X-Session-Token", "abc.def.ghi")]);
        assert_eq!(
            extract(&sources, &headers).unwrap().as_deref(),
            Some("abc.def.ghi")
        );
    }

    #[test]
    fn repeated_authorization_is_refused_in_any_case() {
        let headers = h(&[
            ("authorization", "Bearer a.b.c"),
            ("Authorization", "Bearer a.b.c"),
        ]);
        assert_eq!(
            extract(&TokenSource::default_sources(), &headers),
            Err(TokenError::RepeatedHeader("authorization".into()))
        );
        // Even when the token is configured to come from a cookie only.
        let cookie_only = vec![TokenSource::Cookie {
            name: "_session".into(),
        }];
        let headers = h(&[
            ("authorization", "Basic x"),
            ("AUTHORIZATION", "Basic y"),
            ("cookie", "_session=a.b.c"),
        ]);
        assert!(extract(&cookie_only, &headers).is_err());
    }

    #[test]
    fn cookie_token_is_found_among_others_and_split_headers() {
        let headers = h(&[
            ("cookie", "theme=dark; _session=a.b.c"),
            ("cookie", "lang=en"),
        ]);
        assert_eq!(
            extract(&sources_with_cookie(), &headers)
                .unwrap()
                .as_deref(),
            Some("a.b.c")
        );
        // A cookie whose name only contains the configured name is not it.
        let headers = h(&[("cookie", "x_session=a.b.c; _sessionx=d.e.f")]);
        assert_eq!(extract(&sources_with_cookie(), &headers).unwrap(), None);
    }

    #[test]
    fn two_different_tokens_are_refused() {
        let headers = h(&[
            ("authorization", "Bearer a.b.c"),
            ("cookie", "_session=d.e.f"),
        ]);
        assert_eq!(
            extract(&sources_with_cookie(), &headers),
            Err(TokenError::ConflictingTokens)
        );
        let headers = h(&[("cookie", "_session=a.b.c; _session=d.e.f")]);
        assert_eq!(
            extract(&sources_with_cookie(), &headers),
            Err(TokenError::ConflictingTokens)
        );
        let headers = h(&[("cookie", "_session=a.b.c"), ("cookie", "_session=d.e.f")]);
        assert_eq!(
            extract(&sources_with_cookie(), &headers),
            Err(TokenError::ConflictingTokens)
        );
    }

    #[test]
    fn the_same_token_twice_is_one_token() {
        let headers = h(&[
            ("authorization", "Bearer a.b.c"),
            ("cookie", "_session=a.b.c"),
        ]);
        assert_eq!(
            extract(&sources_with_cookie(), &headers)
                .unwrap()
                .as_deref(),
            Some("a.b.c")
        );
    }

    #[test]
    fn no_source_no_token() {
        let headers = h(&[(":path", "/api"), ("accept", "application/json")]);
        assert_eq!(extract(&sources_with_cookie(), &headers).unwrap(), None);
    }

    #[test]
    fn non_ascii_prefix_boundaries_do_not_panic() {
        let headers = h(&[("authorization", "Béarer x"), ("cookie", "é=ü; ;;=")]);
        assert_eq!(extract(&sources_with_cookie(), &headers).unwrap(), None);
    }

    #[test]
    fn cookie_removal_keeps_other_cookies() {
        assert_eq!(
            cookie_header_without("a=1; _session=x; b=2", "_session").as_deref(),
            Some("a=1; b=2")
        );
        assert_eq!(cookie_header_without("_session=x", "_session"), None);
        assert_eq!(
            cookie_header_without(" _session = x ;c=3", "_session").as_deref(),
            Some("c=3")
        );
        assert_eq!(
            cookie_header_without("_sessionx=1", "_session").as_deref(),
            Some("_sessionx=1")
        );
    }
}
