//! The request path and method a policy judges: the ones the API server will act on, or a
//! refusal when they are ambiguous.
//!
//! What the API server does with a request target (see SECURITY.md, "Paths"):
//! - kube-apiserver's handler chain is not Go's `http.ServeMux`, so nothing cleans the path
//!   or redirects an unclean one: `WithRequestInfo` splits `req.URL.Path` (already
//!   percent-decoded by Go's `url.ParseRequestURI`, once) on `/`, ignoring leading and trailing
//!   slashes, authorization runs on that, and only then does the director route it (go-restful
//!   for `/api` and `/apis`, a prefix mux for the rest). A `..` is never resolved: it is a name.
//! - Envoy hands the filter `:path` after its own optional normalisation (`normalize_path`,
//!   `merge_slashes`, `path_with_escaped_slashes_action`), and forwards what the filter saw.
//!
//! So the filter decodes exactly once, as Go does, and refuses every target on which two
//! reasonable parsers could disagree, instead of guessing which one is upstream:
//! - not origin form (`*`, absolute form, empty), a raw `#`, `\`, control character or space;
//! - a malformed `%` escape (Go answers 400), a decoded `/`, `\`, `?` or `#` (`%2F`, `%5C`,
//!   `%3F`, `%23`: a delimiter for some parsers and proxies, part of a name for others), a
//!   decoded `%` (`%25`: double encoding), a decoded control character, or a result that is
//!   not UTF-8;
//! - a `.` or `..` segment, decoded or not, also with a `;` parameter (`..;`), which RFC 3986
//!   resolvers remove and the API server does not;
//! - an empty segment inside the path (`//`), which `merge_slashes` removes and the API server
//!   reads as an empty API version, namespace or name.
//!
//! One trailing slash is removed (`/api/v1/pods/` judges as `/api/v1/pods`): the API server's
//! request info ignores it, so it cannot name anything else. Apart from that the policy sees
//! the decoded path (`/api/v1/namespaces/kube%2Dsystem` is `/api/v1/namespaces/kube-system`),
//! and the upstream gets `:path` unchanged, which the API server decodes to the same thing.
//!
//! Methods are case-sensitive (RFC 9110 section 9.1): `get` is not `GET`, the API server
//! answers it 405 and Envoy's HTTP/1 codec refuses it. A method that is not a token, or holds
//! a lower-case letter, is refused too, so a case variant can never slip past an
//! `http_method` rule to a component that folds case.

use std::borrow::Cow;
use std::fmt;

/// Why a request's method or path cannot be judged by a policy; the request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmbiguousRequest {
    /// The method is empty, not an HTTP token, or has a lower-case letter.
    Method,
    /// The target is not an absolute path (`*`, absolute form, empty).
    NotOriginForm,
    /// A raw character that parsers treat differently: control, space, `#`, `\`.
    IllegalCharacter,
    /// A `%` not followed by two hex digits.
    MalformedEscape,
    /// `%2F`, `%5C`, `%3F` or `%23`: a delimiter to some parsers, a name character to others.
    EncodedSeparator,
    /// `%25`: the path would change again if anyone decoded it twice.
    DoubleEncoding,
    /// A decoded control character.
    EncodedControl,
    /// The decoded path is not UTF-8.
    NotUtf8,
    /// A `.` or `..` segment.
    DotSegment,
    /// An empty segment inside the path (`//`).
    EmptySegment,
}

impl fmt::Display for AmbiguousRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AmbiguousRequest::Method => "the method is not an upper-case HTTP token",
            AmbiguousRequest::NotOriginForm => "the request target is not an absolute path",
            AmbiguousRequest::IllegalCharacter => {
                "the path has a control character, space, '#' or '\\'"
            }
            AmbiguousRequest::MalformedEscape => "the path has a malformed % escape",
            AmbiguousRequest::EncodedSeparator => "the path has an encoded '/' or '\\'",
            AmbiguousRequest::DoubleEncoding => "the path has an encoded '%' (double encoding)",
            AmbiguousRequest::EncodedControl => "the path has an encoded control character",
            AmbiguousRequest::NotUtf8 => "the decoded path is not UTF-8",
            AmbiguousRequest::DotSegment => "the path has a '.' or '..' segment",
            AmbiguousRequest::EmptySegment => "the path has an empty segment ('//')",
        })
    }
}

impl std::error::Error for AmbiguousRequest {}

/// Accepts a method that is an HTTP token without lower-case letters (`GET`, `PATCH`,
/// `X-CUSTOM`); refuses `get`, `Get`, empty, or anything with a separator or space.
pub fn check_method(method: &str) -> Result<(), AmbiguousRequest> {
    let token = !method.is_empty()
        && method.bytes().all(|b| {
            b.is_ascii_uppercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
        });
    if token {
        Ok(())
    } else {
        Err(AmbiguousRequest::Method)
    }
}

/// The path a policy judges, from `:path` (path and query as the proxy hands it over):
/// decoded once, one trailing slash removed, or refused when ambiguous (module comment).
pub fn policy_path(path_and_query: &str) -> Result<Cow<'_, str>, AmbiguousRequest> {
    let raw = path_and_query
        .split_once('?')
        .map_or(path_and_query, |(path, _)| path);
    if !raw.starts_with('/') {
        return Err(AmbiguousRequest::NotOriginForm);
    }
    if raw
        .bytes()
        .any(|b| b <= b' ' || b == 0x7f || b == b'#' || b == b'\\')
    {
        return Err(AmbiguousRequest::IllegalCharacter);
    }
    let decoded: Cow<'_, str> = if raw.contains('%') {
        Cow::Owned(decode(raw)?)
    } else {
        Cow::Borrowed(raw)
    };
    check_segments(&decoded)?;
    Ok(match decoded {
        Cow::Borrowed(path) => Cow::Borrowed(strip_trailing_slash(path)),
        Cow::Owned(mut path) => {
            if strip_trailing_slash(&path).len() < path.len() {
                path.pop();
            }
            Cow::Owned(path)
        }
    })
}

/// Go's single `url.PathUnescape`-style pass, refusing what decodes to a separator, a `%`
/// or a control character.
fn decode(raw: &str) -> Result<String, AmbiguousRequest> {
    let mut out = Vec::with_capacity(raw.len());
    let mut bytes = raw.bytes();
    while let Some(byte) = bytes.next() {
        if byte != b'%' {
            out.push(byte);
            continue;
        }
        let high = bytes.next().and_then(hex_value);
        let low = bytes.next().and_then(hex_value);
        let (Some(high), Some(low)) = (high, low) else {
            return Err(AmbiguousRequest::MalformedEscape);
        };
        let value = (high << 4) | low;
        match value {
            b'/' | b'\\' | b'?' | b'#' => return Err(AmbiguousRequest::EncodedSeparator),
            b'%' => return Err(AmbiguousRequest::DoubleEncoding),
            0..=0x1f | 0x7f => return Err(AmbiguousRequest::EncodedControl),
            _ => out.push(value),
        }
    }
    String::from_utf8(out).map_err(|_| AmbiguousRequest::NotUtf8)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// Refuses dot segments anywhere and empty segments except one trailing.
fn check_segments(path: &str) -> Result<(), AmbiguousRequest> {
    // `path` starts with '/', so the first piece is the empty string before it.
    let mut segments = path.split('/').skip(1).peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        if segment.is_empty() && !last {
            return Err(AmbiguousRequest::EmptySegment);
        }
        let bare = segment.split(';').next().unwrap_or_default();
        if bare == "." || bare == ".." {
            return Err(AmbiguousRequest::DotSegment);
        }
    }
    Ok(())
}

fn strip_trailing_slash(path: &str) -> &str {
    if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn judged(target: &str) -> Result<String, AmbiguousRequest> {
        policy_path(target).map(Cow::into_owned)
    }

    #[test]
    fn ordinary_kubectl_paths_are_unchanged_and_borrowed() {
        for path in [
            "/",
            "/version",
            "/api",
            "/apis",
            "/api/v1/namespaces/default/pods",
            "/apis/apps/v1/namespaces/kube-system/deployments/coredns",
            "/api/v1/namespaces/default/pods/nginx-1/exec",
            "/openapi/v3/apis/apps/v1",
            "/api/v1/namespaces/default/pods/a.b-c_d~e",
        ] {
            assert!(matches!(policy_path(path), Ok(Cow::Borrowed(p)) if p == path));
        }
    }

    #[test]
    fn the_query_is_not_part_of_the_path() {
        assert_eq!(
            judged("/api/v1/namespaces/default/pods?limit=500&watch=1").unwrap(),
            "/api/v1/namespaces/default/pods"
        );
        // Whatever the query holds, it is not judged here.
        assert_eq!(judged("/api?x=%zz&y=/../#").unwrap(), "/api");
    }

    #[test]
    fn percent_encoding_is_decoded_once_as_go_does() {
        assert_eq!(
            judged("/api/v1/namespaces/kube%2Dsystem/secrets").unwrap(),
            "/api/v1/namespaces/kube-system/secrets"
        );
        assert_eq!(
            judged("/%61%70%69/v1/namespaces/kube-system").unwrap(),
            "/api/v1/namespaces/kube-system"
        );
        // Lower- and upper-case hex alike; `+` stays `+` in a path.
        assert_eq!(judged("/a%2db%2Dc+d").unwrap(), "/a-b-c+d");
        assert_eq!(judged("/%C3%A9").unwrap(), "/é");
    }

    #[test]
    fn one_trailing_slash_is_removed() {
        assert_eq!(
            judged("/api/v1/namespaces/kube-system/").unwrap(),
            "/api/v1/namespaces/kube-system"
        );
        assert_eq!(judged("/api/?watch=1").unwrap(), "/api");
        assert_eq!(judged("/").unwrap(), "/");
        assert_eq!(judged("/%61pi/").unwrap(), "/api");
    }

    #[test]
    fn dot_segments_are_refused_raw_encoded_and_with_parameters() {
        for path in [
            "/api/v1/namespaces/default/pods/../secrets",
            "/api/v1/namespaces/default/pods/..",
            "/api/v1/namespaces/default/pods/../",
            "/api/./v1",
            "/.",
            "/..",
            "/api/%2e%2e/secrets",
            "/api/%2E./secrets",
            "/api/.%2e",
            "/api/%2e/v1",
            "/api/..;/secrets",
            "/api/.;x/v1",
        ] {
            assert_eq!(judged(path), Err(AmbiguousRequest::DotSegment), "{path}");
        }
        // Dots inside a name are just characters.
        for path in ["/api/...", "/api/.hidden", "/api/a..b", "/api/..a"] {
            assert!(judged(path).is_ok(), "{path}");
        }
    }

    #[test]
    fn empty_segments_are_refused() {
        for path in [
            "//api",
            "/api//v1",
            "/api/v1//",
            "///",
            "//",
            "/api/v1/namespaces//pods",
        ] {
            assert_eq!(judged(path), Err(AmbiguousRequest::EmptySegment), "{path}");
        }
    }

    #[test]
    fn encoded_separators_and_double_encoding_are_refused() {
        for (path, expected) in [
            (
                "/api/v1/namespaces/a%2Fb",
                AmbiguousRequest::EncodedSeparator,
            ),
            (
                "/api/v1/namespaces/a%2fb",
                AmbiguousRequest::EncodedSeparator,
            ),
            ("/api%5Cv1", AmbiguousRequest::EncodedSeparator),
            ("/api%5c..%5csecrets", AmbiguousRequest::EncodedSeparator),
            ("/api/x%3Fwatch=1", AmbiguousRequest::EncodedSeparator),
            ("/api/x%23y", AmbiguousRequest::EncodedSeparator),
            ("/api/%252e%252e/x", AmbiguousRequest::DoubleEncoding),
            ("/api/%252F", AmbiguousRequest::DoubleEncoding),
            ("/api/%00", AmbiguousRequest::EncodedControl),
            ("/api/%0d%0aX-Evil:%201", AmbiguousRequest::EncodedControl),
            ("/api/%7f", AmbiguousRequest::EncodedControl),
            ("/api/%ff", AmbiguousRequest::NotUtf8),
            ("/api/%C3", AmbiguousRequest::NotUtf8),
        ] {
            assert_eq!(judged(path), Err(expected), "{path}");
        }
    }

    #[test]
    fn malformed_escapes_are_refused() {
        for path in ["/api/%", "/api/%2", "/api/%zz", "/api/%2g", "/api/%%32%65"] {
            assert_eq!(
                judged(path),
                Err(AmbiguousRequest::MalformedEscape),
                "{path}"
            );
        }
    }

    #[test]
    fn targets_that_are_not_absolute_paths_or_hold_odd_characters_are_refused() {
        for path in ["", "*", "api/v1", "http://evil/api", "?x=1", "%2Fapi"] {
            assert_eq!(
                judged(path),
                Err(AmbiguousRequest::NotOriginForm),
                "{path:?}"
            );
        }
        for path in [
            "/api\\..\\secrets",
            "/api#/../secrets",
            "/api /v1",
            "/api\t",
            "/api\r\nx: y",
            "/api\u{0}",
            "/api\u{7f}",
        ] {
            assert_eq!(
                judged(path),
                Err(AmbiguousRequest::IllegalCharacter),
                "{path:?}"
            );
        }
    }

    #[test]
    fn methods_are_upper_case_tokens() {
        for method in [
            "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "X-CUSTOM", "M2",
        ] {
            assert_eq!(check_method(method), Ok(()), "{method}");
        }
        for method in [
            "get", "Get", "gET", "", "GET ", "G ET", "GET\r\n", "GÉT", "GET/1",
        ] {
            assert_eq!(
                check_method(method),
                Err(AmbiguousRequest::Method),
                "{method:?}"
            );
        }
    }

    #[test]
    fn the_result_never_contains_what_was_refused() {
        // A quick exhaustive pass over short targets built from the interesting bytes.
        let alphabet = ["/", ".", "%2e", "%2f", "%25", "a", ";", "%41", "?", "%3f"];
        let mut checked = 0;
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    for d in alphabet {
                        let target = format!("/{a}{b}{c}{d}");
                        checked += 1;
                        let Ok(path) = policy_path(&target) else {
                            continue;
                        };
                        assert!(path.starts_with('/'), "{target}");
                        assert!(!path.contains("//"), "{target} -> {path}");
                        assert!(!path.contains('%'), "{target} -> {path}");
                        assert!(!path.contains('?'), "{target} -> {path}");
                        assert!(path == "/" || !path.ends_with('/'), "{target} -> {path}");
                        for segment in path.split('/') {
                            let bare = segment.split(';').next().unwrap_or_default();
                            assert!(bare != "." && bare != "..", "{target} -> {path}");
                        }
                        // Idempotent: judging the judged path changes nothing.
                        assert_eq!(judged(&path).as_deref(), Ok(path.as_ref()), "{target}");
                    }
                }
            }
        }
        assert_eq!(checked, 10usize.pow(4));
    }
}
