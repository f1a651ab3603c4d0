//! What the Kubernetes API server authorizes a request as: its verb, API group and version,
//! namespace, resource, subresource and name, resolved from the method and the request target
//! the way kube-apiserver's `RequestInfoFactory` does
//! (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go), so that a policy sees the facts
//! RBAC will see.
//!
//! Decisions, each chosen so the filter and the API server cannot disagree:
//! - Percent-decoding: the API server splits `req.URL.Path`, which Go's `url.ParseRequestURI`
//!   has already decoded, so `%2F` separates segments (`pods/a%2Fb` is name `a`, subresource
//!   `b`) and `+` stays `+`. We decode first and split after, and refuse a malformed `%` escape,
//!   for which Go's server answers 400 before anything is authorized.
//! - The namespaces resource: `/api/v1/namespaces/ns` is resource `namespaces`, name `ns` and
//!   also namespace `ns`; `status` and `finalize` after it are its subresources, anything else
//!   is a namespaced resource.
//! - Exec, attach and port-forward: kubectl tries a WebSocket (`GET`, which `RequestInfo` calls
//!   `get`) and then SPDY (`POST`, `create`). Since 1.35 the API server also requires `create` for
//!   the WebSocket attempt (`AuthorizePodWebsocketUpgradeCreatePermission`); `verb` keeps the
//!   `RequestInfo` value, and [`RequestInfo::policy_verb`] is `create` for both attempts, so a
//!   policy decides them alike and `get pods/*` never means a shell.
//! - `fieldSelector=metadata.name=x` on a list or watch names `x`, as the API server does, only
//!   when the whole list query decodes; a query that does not decode fails the API server's
//!   handler too, so no object is read under a name we did not see.
//! - Refused ([`UnresolvableRequest`]): what the API server refuses before authorizing (a bad
//!   method or target: 400; `/api/v1/watch` with nothing after it: 500), and what we cannot
//!   state faithfully (a path or name that is not UTF-8, absurd sizes). The filter denies them.

use std::fmt;

/// A request as the API server's authorizer sees it. Fields are empty when they do not apply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// True for `/api/{version}/...` and `/apis/{group}/{version}/...` with something after the
    /// version; false for `/healthz`, `/version`, `/api`, `/apis/{group}/{version}` and the like.
    pub is_resource_request: bool,
    /// The percent-decoded path, without the query.
    pub path: String,
    /// Resource requests: get, list, watch, create, update, patch, delete or deletecollection
    /// (`proxy` or `watch` from the deprecated path prefixes; empty for other methods).
    /// Non-resource requests: the method in lower case (`get`, `post`, ...).
    pub verb: String,
    /// `api` (the core group) or `apis`.
    pub api_prefix: String,
    /// Empty for the core group.
    pub api_group: String,
    pub api_version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// The segments from the resource on: resource, name, subresource, then whatever follows
    /// (a proxied path, which is not part of the name).
    pub parts: Vec<String>,
}

impl RequestInfo {
    /// The verb a policy should check: [`RequestInfo::verb`], except that opening a pod's exec,
    /// attach or port-forward stream is `create` whether it comes as a WebSocket `GET` or as an
    /// SPDY `POST`, as the API server requires since 1.35.
    pub fn policy_verb(&self) -> &str {
        let opens_pod_stream = self.is_resource_request
            && self.api_group.is_empty()
            && self.resource == "pods"
            && POD_STREAM_SUBRESOURCES.contains(&self.subresource.as_str());
        if opens_pod_stream && self.verb == "get" {
            "create"
        } else {
            &self.verb
        }
    }
}

impl RequestInfo {
    /// Whether the request, once authorized, runs a command in a container or opens a
    /// connection to a backend of the client's choosing, whatever its verb and method: what
    /// RBAC's built-in `view` role never grants (its aggregated rules leave out `pods/exec`,
    /// `pods/attach`, `pods/portforward`, `pods/proxy`, `services/proxy` and `nodes/proxy`),
    /// so a "read-only" policy must refuse it even as a `get`:
    /// - `pods/exec`, `pods/attach`, `pods/portforward` (core group), as a WebSocket `GET` or an
    ///   SPDY `POST`;
    /// - any `proxy` subresource, in any group: `pods/proxy` and `services/proxy` reach any
    ///   port of the backend with only `get` checked; `nodes/proxy` reaches the kubelet's API,
    ///   where `/api/v1/nodes/N/proxy/exec/NS/POD/CONTAINER?command=sh` (a WebSocket `GET`)
    ///   and `.../proxy/run/...` (a `POST`) run a command in any container on the node, and the
    ///   API server authorizes only `get nodes/proxy` or `create nodes/proxy` (Kubernetes docs,
    ///   "Kubelet authentication/authorization": `get nodes/proxy` is not read-only);
    /// - the deprecated `/api/v1/proxy/...` prefix (verb `proxy`), which proxies like the
    ///   subresource.
    ///
    /// `/api/v1/namespaces/NS/proxy` is not one of them: the API server reads it as a resource
    /// named `proxy` in namespace NS, which does not exist (404), because the verb prefixes are
    /// recognised only right after the version (requestinfo.go, `specialVerbs`).
    ///
    /// A protocol upgrade on any other path is decided by the caller, which sees the headers
    /// (`policy::asks_for_protocol_upgrade`).
    pub fn is_exec_class(&self) -> bool {
        if !self.is_resource_request {
            return false;
        }
        let pod_stream = self.api_group.is_empty()
            && self.resource == "pods"
            && POD_STREAM_SUBRESOURCES.contains(&self.subresource.as_str());
        pod_stream || self.subresource == PROXY || self.verb == PROXY
    }
}

/// Why a request gets no [`RequestInfo`]; the filter should deny it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnresolvableRequest {
    /// The method is not an HTTP token.
    InvalidMethod,
    /// The target is empty, does not start with `/`, or holds a control character.
    InvalidTarget,
    /// A `%` in the path is not followed by two hex digits.
    InvalidPercentEncoding,
    /// The decoded path, or the name a field selector gives, is not UTF-8.
    NotUtf8,
    TooManyPathSegments,
    TooManyQueryParameters,
    /// `/api/v1/watch` or `/api/v1/proxy` with nothing after it.
    SpecialVerbWithoutResource,
}

impl fmt::Display for UnresolvableRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnresolvableRequest::InvalidMethod => "the method is not an HTTP token",
            UnresolvableRequest::InvalidTarget => "the request target is not an absolute path",
            UnresolvableRequest::InvalidPercentEncoding => "the path has a malformed % escape",
            UnresolvableRequest::NotUtf8 => "the decoded path or name is not UTF-8",
            UnresolvableRequest::TooManyPathSegments => "the path has too many segments",
            UnresolvableRequest::TooManyQueryParameters => "the query has too many parameters",
            UnresolvableRequest::SpecialVerbWithoutResource => {
                "a watch or proxy path prefix names no resource"
            }
        })
    }
}

impl std::error::Error for UnresolvableRequest {}

/// The API server's prefixes: `/apis/{group}/{version}` and the groupless (legacy) `/api/{version}`.
const GROUPED_API_PREFIX: &str = "apis";
const LEGACY_API_PREFIX: &str = "api";
/// Deprecated path prefixes that carry the verb: `/api/v1/watch/...`, `/api/v1/proxy/...`.
const SPECIAL_VERBS: [&str; 2] = ["proxy", "watch"];
/// After `proxy` the rest of the path is the proxied path, never a subresource.
const SPECIAL_VERB_WITHOUT_SUBRESOURCES: &str = PROXY;
/// The verb of the deprecated proxy prefix, and the subresource of every proxy endpoint.
const PROXY: &str = "proxy";
/// What may follow `/namespaces/{name}` as the namespace's own subresource.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];
const POD_STREAM_SUBRESOURCES: [&str; 3] = ["exec", "attach", "portforward"];
/// Go's net/url ignores a whole query of more than 10000 parameters (the `urlmaxqueryparams`
/// default in recent Go), older Go reads it all; rather than guess, refuse both.
const MAX_QUERY_PARAMETERS: usize = 10_000;
/// Far beyond any real path; bounds the work and the allocation.
const MAX_PATH_SEGMENTS: usize = 512;

/// Resolves a request from its method and its `:path` (path and query, as Envoy hands it over).
pub fn resolve(method: &str, path_and_query: &str) -> Result<RequestInfo, UnresolvableRequest> {
    if !is_http_token(method) {
        return Err(UnresolvableRequest::InvalidMethod);
    }
    let (path, raw_query) = parse_target(path_and_query)?;
    let query = Query::parse(raw_query)?;
    let segments = split_path(&path)?;
    let mut info = RequestInfo {
        verb: method.to_ascii_lowercase(),
        ..RequestInfo::default()
    };

    let Some(api) = locate_api(&segments) else {
        info.path = path;
        return Ok(info);
    };
    let (verb, after_verb) = match api.rest.split_first() {
        Some((first, rest)) if SPECIAL_VERBS.contains(first) => {
            if rest.is_empty() {
                return Err(UnresolvableRequest::SpecialVerbWithoutResource);
            }
            (*first, rest)
        }
        _ => (verb_for_method(method), api.rest),
    };
    let (namespace, parts) = match after_verb {
        ["namespaces", namespace, rest @ ..] => match rest.first() {
            Some(next) if !NAMESPACE_SUBRESOURCES.contains(next) => (*namespace, rest),
            _ => (*namespace, after_verb),
        },
        _ => ("", after_verb),
    };
    let resource = parts.first().copied().unwrap_or_default();
    let name = parts.get(1).copied().unwrap_or_default();
    let subresource = match parts.get(2) {
        Some(subresource) if verb != SPECIAL_VERB_WITHOUT_SUBRESOURCES => *subresource,
        _ => "",
    };

    info.is_resource_request = true;
    info.verb = verb.to_string();
    info.api_prefix = api.prefix.to_string();
    info.api_group = api.group.to_string();
    info.api_version = api.version.to_string();
    info.namespace = namespace.to_string();
    info.resource = resource.to_string();
    info.subresource = subresource.to_string();
    info.name = name.to_string();
    info.parts = parts.iter().map(|part| part.to_string()).collect();

    // A GET without a name reads a collection: a list, or a watch when asked for.
    if info.name.is_empty() && info.verb == "get" {
        match list_options::decode(&query) {
            list_options::Outcome::Decoded {
                watch,
                name_from_field_selector,
            } => {
                info.verb = if watch { "watch" } else { "list" }.to_string();
                if let Some(name) = name_from_field_selector {
                    info.name =
                        String::from_utf8(name).map_err(|_| UnresolvableRequest::NotUtf8)?;
                }
            }
            list_options::Outcome::Undecodable { watch } => {
                info.verb = if watch { "watch" } else { "list" }.to_string();
            }
        }
    }
    if info.name.is_empty() && info.verb == "delete" {
        info.verb = "deletecollection".to_string();
    }
    info.path = path;
    Ok(info)
}

/// The API path split into its prefix, group, version and the segments after the version.
struct ApiPath<'a, 'p> {
    prefix: &'p str,
    group: &'p str,
    version: &'p str,
    /// Never empty: a path that ends at the version is a discovery (non-resource) request.
    rest: &'a [&'p str],
}

fn locate_api<'a, 'p>(segments: &'a [&'p str]) -> Option<ApiPath<'a, 'p>> {
    match segments {
        [LEGACY_API_PREFIX, version, rest @ ..] if !rest.is_empty() => Some(ApiPath {
            prefix: LEGACY_API_PREFIX,
            group: "",
            version,
            rest,
        }),
        [GROUPED_API_PREFIX, group, version, rest @ ..] if !rest.is_empty() => Some(ApiPath {
            prefix: GROUPED_API_PREFIX,
            group,
            version,
            rest,
        }),
        _ => None,
    }
}

/// The API server's verb for a method on a resource path (before list, watch and
/// deletecollection are told apart); methods compare case-sensitively, as in Go.
fn verb_for_method(method: &str) -> &'static str {
    match method {
        "POST" => "create",
        "GET" | "HEAD" => "get",
        "PUT" => "update",
        "PATCH" => "patch",
        "DELETE" => "delete",
        _ => "",
    }
}

/// RFC 9110 token: what Go's server accepts as a method (it answers 400 to anything else).
fn is_http_token(method: &str) -> bool {
    !method.is_empty()
        && method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The decoded path and the raw query of an origin-form target, as Go's `url.ParseRequestURI`
/// reads them for the API server: no fragment is split off, `+` in the path is literal.
fn parse_target(path_and_query: &str) -> Result<(String, &str), UnresolvableRequest> {
    if path_and_query.is_empty() || path_and_query.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(UnresolvableRequest::InvalidTarget);
    }
    if path_and_query == "*" {
        return Ok(("*".to_string(), ""));
    }
    let (raw_path, raw_query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    if !raw_path.starts_with('/') {
        return Err(UnresolvableRequest::InvalidTarget);
    }
    let decoded = percent_decode(raw_path.as_bytes(), PlusSign::Literal)
        .ok_or(UnresolvableRequest::InvalidPercentEncoding)?;
    let path = String::from_utf8(decoded).map_err(|_| UnresolvableRequest::NotUtf8)?;
    Ok((path, raw_query))
}

/// The path's segments with leading and trailing slashes ignored; empty ones in between kept.
fn split_path(path: &str) -> Result<Vec<&str>, UnresolvableRequest> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(Vec::new());
    }
    let mut segments = Vec::new();
    for segment in trimmed.split('/') {
        if segments.len() == MAX_PATH_SEGMENTS {
            return Err(UnresolvableRequest::TooManyPathSegments);
        }
        segments.push(segment);
    }
    Ok(segments)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PlusSign {
    /// Paths: `+` is itself.
    Literal,
    /// Query keys and values (form encoding): `+` is a space.
    Space,
}

/// Go's `url.unescape`: every `%` must start a two-hex-digit escape, or the whole input fails.
fn percent_decode(input: &[u8], plus: PlusSign) -> Option<Vec<u8>> {
    let mut decoded = Vec::with_capacity(input.len());
    let mut bytes = input.iter();
    while let Some(&byte) = bytes.next() {
        match byte {
            b'%' => {
                let high = bytes.next().and_then(|&digit| hex_value(digit))?;
                let low = bytes.next().and_then(|&digit| hex_value(digit))?;
                decoded.push((high << 4) | low);
            }
            b'+' if plus == PlusSign::Space => decoded.push(b' '),
            _ => decoded.push(byte),
        }
    }
    Some(decoded)
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

/// A raw query read the way Go's `url.Values` reads it: `&`-separated pairs, a pair holding
/// `;` or a malformed escape skipped, keys and values form-decoded, the first value of a key
/// the one that counts.
struct Query<'a> {
    raw: &'a str,
}

impl<'a> Query<'a> {
    fn parse(raw: &'a str) -> Result<Self, UnresolvableRequest> {
        let separators = raw.bytes().filter(|&b| b == b'&' || b == b';').count();
        if separators >= MAX_QUERY_PARAMETERS {
            return Err(UnresolvableRequest::TooManyQueryParameters);
        }
        Ok(Query { raw })
    }

    fn first(&self, wanted: &str) -> Option<Vec<u8>> {
        self.raw
            .split('&')
            .filter(|pair| !pair.is_empty() && !pair.contains(';'))
            .find_map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                let key = percent_decode(key.as_bytes(), PlusSign::Space)?;
                if key != wanted.as_bytes() {
                    return None;
                }
                percent_decode(value.as_bytes(), PlusSign::Space)
            })
    }
}

/// How the API server reads the list options of a GET on a collection
/// (`metainternalversion.ListOptions` decoded from the query): only `watch` and the name a
/// field selector pins matter for authorization.
mod list_options {
    use super::{field_selector, label_selector, Query};

    pub(super) enum Outcome {
        Decoded {
            watch: bool,
            name_from_field_selector: Option<Vec<u8>>,
        },
        /// A parameter failed to decode: the API server drops all options but `watch` (read
        /// more loosely), and its list handler will refuse the request with 400.
        Undecodable { watch: bool },
    }

    /// Parameters whose value must be a base-10 int64.
    const INTEGER_PARAMETERS: [&str; 2] = ["limit", "timeoutSeconds"];

    pub(super) fn decode(query: &Query) -> Outcome {
        let watch_value = query.first("watch");
        let integers_parse = INTEGER_PARAMETERS.iter().all(|parameter| {
            query
                .first(parameter)
                .is_none_or(|value| parses_as_int64(&value))
        });
        let labels_parse = query
            .first("labelSelector")
            .is_none_or(|selector| label_selector::parses(&selector));
        let field_selector = query.first("fieldSelector").unwrap_or_default();
        let exact_name = field_selector::exact_match(&field_selector, "metadata.name");
        match exact_name {
            Ok(name) if integers_parse && labels_parse => Outcome::Decoded {
                watch: watch_value.is_some_and(|value| !is_false(&value)),
                name_from_field_selector: name.filter(|name| is_valid_path_segment_name(name)),
            },
            _ => Outcome::Undecodable {
                watch: watch_value.is_some_and(|value| !is_false_lowercased(&value)),
            },
        }
    }

    fn parses_as_int64(value: &[u8]) -> bool {
        std::str::from_utf8(value).is_ok_and(|text| text.parse::<i64>().is_ok())
    }

    /// Go's `Convert_Slice_string_To_bool`: false only for `0` and what `strings.EqualFold`
    /// matches with `false`, where `ſ` (U+017F) folds to `s`.
    fn is_false(value: &[u8]) -> bool {
        if value == b"0" {
            return true;
        }
        let Ok(text) = std::str::from_utf8(value) else {
            return false;
        };
        text.chars().count() == 5
            && text.chars().zip("false".chars()).all(|(given, expected)| {
                given.to_ascii_lowercase() == expected || (expected == 's' && given == 'ſ')
            })
    }

    /// The fallback after a failed decode compares `strings.ToLower(value)`: no non-ASCII
    /// letter lowers to a letter of `false`, so ASCII case folding is the same test.
    fn is_false_lowercased(value: &[u8]) -> bool {
        value == b"0" || value.eq_ignore_ascii_case(b"false")
    }

    /// apimachinery's `IsValidPathSegmentName`: a name the path could have carried.
    fn is_valid_path_segment_name(name: &[u8]) -> bool {
        name != b"." && name != b".." && !name.iter().any(|&b| b == b'/' || b == b'%')
    }
}

/// Field selectors as apimachinery's `fields.ParseSelector` reads them: comma-separated
/// `field=value`, `field==value` or `field!=value` terms, `\` escaping `\`, `,` and `=` in values.
mod field_selector {
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Operator {
        NotEquals,
        DoubleEquals,
        Equals,
    }

    /// Checked in this order at each position, so `==` is not read as `=` plus a value `=...`.
    const OPERATORS: [(&[u8], Operator); 3] = [
        (b"!=", Operator::NotEquals),
        (b"==", Operator::DoubleEquals),
        (b"=", Operator::Equals),
    ];

    pub(super) struct SyntaxError;

    /// The value `field` must equal for `selector` to match (the first in the sorted terms, as
    /// `RequiresExactMatch` finds it), or an error if any term does not parse.
    pub(super) fn exact_match(
        selector: &[u8],
        field: &str,
    ) -> Result<Option<Vec<u8>>, SyntaxError> {
        let mut terms = split_terms(selector);
        terms.sort_unstable();
        let mut exact = None;
        for term in terms.into_iter().filter(|term| !term.is_empty()) {
            let (lhs, operator, rhs) = split_term(term).ok_or(SyntaxError)?;
            let value = unescape_value(rhs).ok_or(SyntaxError)?;
            if exact.is_none() && operator != Operator::NotEquals && lhs == field.as_bytes() {
                exact = Some(value);
            }
        }
        Ok(exact)
    }

    /// Splits on commas not escaped by a backslash; escapes stay in the terms.
    fn split_terms(selector: &[u8]) -> Vec<&[u8]> {
        let mut terms = Vec::new();
        let mut start = 0;
        let mut escaped = false;
        for (index, &byte) in selector.iter().enumerate() {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b',' {
                terms.push(selector.get(start..index).unwrap_or_default());
                start = index + 1;
            }
        }
        terms.push(selector.get(start..).unwrap_or_default());
        terms
    }

    /// Splits at the first operator; the field cannot escape anything.
    fn split_term(term: &[u8]) -> Option<(&[u8], Operator, &[u8])> {
        (0..term.len()).find_map(|index| {
            let rest = term.get(index..)?;
            OPERATORS.iter().find_map(|&(symbol, operator)| {
                let value = rest.strip_prefix(symbol)?;
                Some((term.get(..index)?, operator, value))
            })
        })
    }

    /// `fields.UnescapeValue`: an unescaped `,` or `=`, or a `\` before anything but `\`, `,`
    /// and `=`, is an error. Like Go, bytes that are not UTF-8 come out as U+FFFD when the
    /// value had to be unescaped.
    fn unescape_value(raw: &[u8]) -> Option<Vec<u8>> {
        if !raw.iter().any(|b| matches!(b, b'\\' | b',' | b'=')) {
            return Some(raw.to_vec());
        }
        let mut value = String::with_capacity(raw.len());
        let mut escaped = false;
        for chunk in raw.utf8_chunks() {
            let invalid = chunk.invalid().iter().map(|_| char::REPLACEMENT_CHARACTER);
            for character in chunk.valid().chars().chain(invalid) {
                match (escaped, character) {
                    (true, '\\' | ',' | '=') => {
                        value.push(character);
                        escaped = false;
                    }
                    (true, _) | (false, ',' | '=') => return None,
                    (false, '\\') => escaped = true,
                    (false, _) => value.push(character),
                }
            }
        }
        (!escaped).then(|| value.into_bytes())
    }
}

/// Whether a label selector parses, as apimachinery's `labels.Parse` decides: its lexer,
/// grammar and key/value validation. Erring towards "parses" is harmless (the API server's
/// list handler would refuse the request), erring the other way would drop a name the API
/// server keeps, so each rule follows the Go source.
mod label_selector {
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Token {
        EndOfString,
        /// Unreachable with the operator table below; kept so a failure cannot turn into success.
        Error,
        ClosedPar,
        Comma,
        DoesNotExist,
        DoubleEquals,
        Equals,
        GreaterThan,
        Identifier,
        In,
        LessThan,
        NotEquals,
        NotIn,
        OpenPar,
    }

    #[derive(Clone, Copy)]
    struct Item<'a> {
        token: Token,
        literal: &'a [u8],
    }

    const END: Item<'static> = Item {
        token: Token::EndOfString,
        literal: b"",
    };

    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Operator {
        In,
        NotIn,
        Equals,
        DoubleEquals,
        NotEquals,
        GreaterThan,
        LessThan,
        Exists,
        DoesNotExist,
    }

    /// `in` and `notin` are keywords only where an operator is expected.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Context {
        KeyAndOperator,
        Values,
    }

    const LABEL_NAME_MAX_LENGTH: usize = 63;
    const DNS1123_SUBDOMAIN_MAX_LENGTH: usize = 253;

    pub(super) fn parses(selector: &[u8]) -> bool {
        let mut parser = Parser {
            items: scan(selector),
            position: 0,
        };
        parser.parse().is_some()
    }

    fn operator_token(symbol: &[u8]) -> Option<Token> {
        Some(match symbol {
            b")" => Token::ClosedPar,
            b"," => Token::Comma,
            b"!" => Token::DoesNotExist,
            b"==" => Token::DoubleEquals,
            b"=" => Token::Equals,
            b">" => Token::GreaterThan,
            b"<" => Token::LessThan,
            b"!=" => Token::NotEquals,
            b"(" => Token::OpenPar,
            _ => return None,
        })
    }

    fn is_whitespace(byte: u8) -> bool {
        matches!(byte, b' ' | b'\t' | b'\r' | b'\n')
    }

    fn is_special_symbol(byte: u8) -> bool {
        matches!(byte, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
    }

    fn scan(input: &[u8]) -> Vec<Item<'_>> {
        let mut lexer = Lexer { input, position: 0 };
        let mut items = Vec::new();
        loop {
            let item = lexer.lex();
            items.push(item);
            if item.token == Token::EndOfString {
                return items;
            }
        }
    }

    struct Lexer<'a> {
        input: &'a [u8],
        position: usize,
    }

    impl<'a> Lexer<'a> {
        /// Go's lexer reads 0 past the end, so a NUL byte reads as the end too.
        fn read(&mut self) -> u8 {
            match self.input.get(self.position) {
                Some(&byte) => {
                    self.position += 1;
                    byte
                }
                None => 0,
            }
        }

        fn unread(&mut self) {
            self.position = self.position.saturating_sub(1);
        }

        fn slice(&self, start: usize, end: usize) -> &'a [u8] {
            self.input.get(start..end).unwrap_or_default()
        }

        fn lex(&mut self) -> Item<'a> {
            let mut byte = self.read();
            while is_whitespace(byte) {
                byte = self.read();
            }
            if byte == 0 {
                return END;
            }
            self.unread();
            if is_special_symbol(byte) {
                self.scan_special_symbol()
            } else {
                self.scan_identifier_or_keyword()
            }
        }

        fn scan_identifier_or_keyword(&mut self) -> Item<'a> {
            let start = self.position;
            let mut end = start;
            loop {
                let byte = self.read();
                if byte == 0 {
                    break;
                }
                if is_special_symbol(byte) || is_whitespace(byte) {
                    self.unread();
                    break;
                }
                end = self.position;
            }
            let literal = self.slice(start, end);
            let token = match literal {
                b"in" => Token::In,
                b"notin" => Token::NotIn,
                _ => Token::Identifier,
            };
            Item { token, literal }
        }

        /// The longest operator starting here (`!=` and `==` over `!` and `=`).
        fn scan_special_symbol(&mut self) -> Item<'a> {
            let start = self.position;
            let mut longest: Option<Item<'a>> = None;
            loop {
                let byte = self.read();
                if byte == 0 {
                    break;
                }
                if !is_special_symbol(byte) {
                    self.unread();
                    break;
                }
                let symbol = self.slice(start, self.position);
                match operator_token(symbol) {
                    Some(token) => {
                        longest = Some(Item {
                            token,
                            literal: symbol,
                        })
                    }
                    None if longest.is_some() => {
                        self.unread();
                        break;
                    }
                    None => {}
                }
            }
            longest.unwrap_or(Item {
                token: Token::Error,
                literal: b"",
            })
        }
    }

    struct Parser<'a> {
        items: Vec<Item<'a>>,
        position: usize,
    }

    /// Each method returns `None` where the Go parser returns an error.
    impl<'a> Parser<'a> {
        fn lookahead(&self, context: Context) -> Item<'a> {
            let item = self.items.get(self.position).copied().unwrap_or(END);
            match item.token {
                Token::In | Token::NotIn if context == Context::Values => Item {
                    token: Token::Identifier,
                    ..item
                },
                _ => item,
            }
        }

        fn consume(&mut self, context: Context) -> Item<'a> {
            let item = self.lookahead(context);
            self.position += 1;
            item
        }

        fn parse(&mut self) -> Option<()> {
            loop {
                match self.lookahead(Context::Values).token {
                    Token::Identifier | Token::DoesNotExist => {
                        self.parse_requirement()?;
                        match self.consume(Context::Values).token {
                            Token::EndOfString => return Some(()),
                            Token::Comma => {
                                let next = self.lookahead(Context::Values).token;
                                if next != Token::Identifier && next != Token::DoesNotExist {
                                    return None;
                                }
                            }
                            _ => return None,
                        }
                    }
                    Token::EndOfString => return Some(()),
                    _ => return None,
                }
            }
        }

        fn parse_requirement(&mut self) -> Option<()> {
            let inferred = self.parse_key_and_infer_operator()?;
            if matches!(inferred, Some(Operator::Exists | Operator::DoesNotExist)) {
                return Some(());
            }
            let operator = self.parse_operator()?;
            let values = match operator {
                Operator::In | Operator::NotIn => self.parse_values()?,
                _ => self.parse_exact_value()?,
            };
            requirement_values_are_valid(operator, &values).then_some(())
        }

        fn parse_key_and_infer_operator(&mut self) -> Option<Option<Operator>> {
            let mut item = self.consume(Context::Values);
            let mut operator = None;
            if item.token == Token::DoesNotExist {
                operator = Some(Operator::DoesNotExist);
                item = self.consume(Context::Values);
            }
            if item.token != Token::Identifier || !is_label_key(item.literal) {
                return None;
            }
            let next = self.lookahead(Context::Values).token;
            let key_stands_alone = next == Token::EndOfString || next == Token::Comma;
            if key_stands_alone && operator != Some(Operator::DoesNotExist) {
                operator = Some(Operator::Exists);
            }
            Some(operator)
        }

        fn parse_operator(&mut self) -> Option<Operator> {
            Some(match self.consume(Context::KeyAndOperator).token {
                Token::In => Operator::In,
                Token::Equals => Operator::Equals,
                Token::DoubleEquals => Operator::DoubleEquals,
                Token::GreaterThan => Operator::GreaterThan,
                Token::LessThan => Operator::LessThan,
                Token::NotIn => Operator::NotIn,
                Token::NotEquals => Operator::NotEquals,
                _ => return None,
            })
        }

        /// `( value, value, ... )`, where empty values are allowed.
        fn parse_values(&mut self) -> Option<Vec<&'a [u8]>> {
            if self.consume(Context::Values).token != Token::OpenPar {
                return None;
            }
            match self.lookahead(Context::Values).token {
                Token::Identifier | Token::Comma => {
                    let values = self.parse_identifiers_list()?;
                    (self.consume(Context::Values).token == Token::ClosedPar).then_some(values)
                }
                Token::ClosedPar => {
                    self.consume(Context::Values);
                    Some(vec![b""])
                }
                _ => None,
            }
        }

        fn parse_identifiers_list(&mut self) -> Option<Vec<&'a [u8]>> {
            let mut values = Vec::new();
            loop {
                let item = self.consume(Context::Values);
                match item.token {
                    Token::Identifier => {
                        values.push(item.literal);
                        match self.lookahead(Context::Values).token {
                            Token::Comma => continue,
                            Token::ClosedPar => return Some(values),
                            _ => return None,
                        }
                    }
                    Token::Comma => {
                        if values.is_empty() {
                            values.push(b"");
                        }
                        match self.lookahead(Context::Values).token {
                            Token::ClosedPar => {
                                values.push(b"");
                                return Some(values);
                            }
                            Token::Comma => values.push(b""),
                            _ => {}
                        }
                    }
                    _ => return None,
                }
            }
        }

        fn parse_exact_value(&mut self) -> Option<Vec<&'a [u8]>> {
            let next = self.lookahead(Context::Values).token;
            if next == Token::EndOfString || next == Token::Comma {
                return Some(vec![b""]);
            }
            let item = self.consume(Context::Values);
            (item.token == Token::Identifier).then(|| vec![item.literal])
        }
    }

    /// `labels.NewRequirement` after the key (already checked): the value count per operator,
    /// integers for `>` and `<`, and every value a valid label value.
    fn requirement_values_are_valid(operator: Operator, values: &[&[u8]]) -> bool {
        let count_is_valid = match operator {
            Operator::In | Operator::NotIn => !values.is_empty(),
            Operator::Exists | Operator::DoesNotExist => values.is_empty(),
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => values.len() == 1,
            Operator::GreaterThan | Operator::LessThan => {
                values.len() == 1
                    && values.iter().all(|value| {
                        std::str::from_utf8(value).is_ok_and(|text| text.parse::<i64>().is_ok())
                    })
            }
        };
        count_is_valid && values.iter().all(|value| is_label_value(value))
    }

    /// `[prefix/]name`: the prefix a DNS-1123 subdomain, the name at most 63 characters of
    /// alphanumerics, `-`, `_` and `.`, beginning and ending alphanumeric.
    fn is_label_key(key: &[u8]) -> bool {
        let (prefix, name) = match key.iter().position(|&b| b == b'/') {
            Some(slash) => (key.get(..slash), key.get(slash + 1..).unwrap_or_default()),
            None => (None, key),
        };
        let prefix_is_valid = prefix.is_none_or(is_dns1123_subdomain);
        prefix_is_valid
            && !name.is_empty()
            && name.len() <= LABEL_NAME_MAX_LENGTH
            && is_label_name_shaped(name)
    }

    /// Empty, or at most 63 characters shaped like a label name.
    fn is_label_value(value: &[u8]) -> bool {
        value.is_empty() || (value.len() <= LABEL_NAME_MAX_LENGTH && is_label_name_shaped(value))
    }

    fn is_label_name_shaped(text: &[u8]) -> bool {
        let inner_is_valid = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
        match (text.first(), text.last()) {
            (Some(first), Some(last)) => {
                first.is_ascii_alphanumeric()
                    && last.is_ascii_alphanumeric()
                    && text.iter().all(inner_is_valid)
            }
            _ => false,
        }
    }

    fn is_dns1123_subdomain(text: &[u8]) -> bool {
        text.len() <= DNS1123_SUBDOMAIN_MAX_LENGTH
            && text.split(|&b| b == b'.').all(|label| {
                let alphanumeric = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
                match (label.first(), label.last()) {
                    (Some(first), Some(last)) => {
                        alphanumeric(first)
                            && alphanumeric(last)
                            && label.iter().all(|b| alphanumeric(b) || *b == b'-')
                    }
                    _ => false,
                }
            })
    }

    #[cfg(test)]
    mod tests {
        use super::parses;
        #[cfg(target_arch = "wasm32")]
        use wasm_bindgen_test::wasm_bindgen_test as test;

        #[test]
        fn selectors_kubectl_users_write_parse() {
            for selector in [
                "",
                "app=web",
                "app==web",
                "app!=web",
                "app",
                "!app",
                "app in (web,db)",
                "app notin (web)",
                "tier in (),env",
                "x in (a,,b)",
                "x in (,)",
                "in in (in, notin)",
                "app.kubernetes.io/name=nginx,tier!=cache",
                "n>5",
                "n<3",
                "a=",
                "a==",
                "a=,b",
                " app = web , env ",
                "notin",
                // A NUL where a token would start reads as the end of the input.
                "a=b \0 (",
            ] {
                assert!(parses(selector.as_bytes()), "{selector:?} should parse");
            }
        }

        #[test]
        fn malformed_selectors_do_not_parse() {
            for selector in [
                "=web",
                "app=web,",
                ",app",
                "app web",
                "app=(web)",
                "app in web",
                "app in (web",
                "app in (web db)",
                "!app=web",
                "n>five",
                "n>",
                "Example.com/app=web",
                "/app=web",
                "a/b/c=d",
                "-app=web",
                "app=-web",
                "app=we b",
                "app=web!",
                &format!("app={}", "v".repeat(64)),
                &format!("{}=v", "k".repeat(64)),
                "app=web=x",
                "n<-3",
                // A NUL inside a token only ends that token.
                "a=b\0(",
            ] {
                assert!(
                    !parses(selector.as_bytes()),
                    "{selector:?} should not parse"
                );
            }
        }

        #[test]
        fn keys_and_values_at_their_length_limits_parse() {
            let prefix = format!("{}.example.com", "a".repeat(241));
            assert_eq!(prefix.len(), 253);
            let selector = format!("{prefix}/{}={}", "k".repeat(63), "v".repeat(63));
            assert!(parses(selector.as_bytes()));
            let too_long_prefix = format!("a{prefix}/k=v");
            assert!(!parses(too_long_prefix.as_bytes()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn info(method: &str, target: &str) -> RequestInfo {
        match resolve(method, target) {
            Ok(info) => info,
            Err(refusal) => panic!("{method} {target} refused: {refusal}"),
        }
    }

    #[test]
    fn escaped_slashes_split_like_the_decoded_path() {
        let resolved = info("GET", "/api/v1/namespaces/default/pods/a%2Fb");
        assert_eq!(resolved.path, "/api/v1/namespaces/default/pods/a/b");
        assert_eq!(
            (resolved.name.as_str(), resolved.subresource.as_str()),
            ("a", "b")
        );
        let resolved = info("GET", "/api/v1/namespaces/d%65fault/pods/x+y");
        assert_eq!(
            (resolved.namespace.as_str(), resolved.name.as_str()),
            ("default", "x+y")
        );
    }

    #[test]
    fn malformed_targets_are_refused() {
        for (target, refusal) in [
            ("", UnresolvableRequest::InvalidTarget),
            ("api/v1/pods", UnresolvableRequest::InvalidTarget),
            (
                "https://k8s/api/v1/pods",
                UnresolvableRequest::InvalidTarget,
            ),
            ("/api/v1/pods\n", UnresolvableRequest::InvalidTarget),
            (
                "/api/v1/pods/%zz",
                UnresolvableRequest::InvalidPercentEncoding,
            ),
            (
                "/api/v1/pods/%4",
                UnresolvableRequest::InvalidPercentEncoding,
            ),
            ("/api/v1/pods/%ff", UnresolvableRequest::NotUtf8),
            (
                "/api/v1/watch",
                UnresolvableRequest::SpecialVerbWithoutResource,
            ),
            (
                "/apis/apps/v1/proxy/",
                UnresolvableRequest::SpecialVerbWithoutResource,
            ),
        ] {
            assert_eq!(resolve("GET", target), Err(refusal), "{target:?}");
        }
        assert_eq!(resolve("", "/api"), Err(UnresolvableRequest::InvalidMethod));
        assert_eq!(
            resolve("GE T", "/api"),
            Err(UnresolvableRequest::InvalidMethod)
        );
    }

    #[test]
    fn a_percent_in_the_query_is_not_the_paths_business() {
        // Go skips the malformed pair; the rest of the query still counts.
        let resolved = info("GET", "/api/v1/pods?x=%zz&watch=1");
        assert_eq!(resolved.verb, "watch");
    }

    #[test]
    fn query_pairs_are_read_as_go_reads_them() {
        let query = Query::parse("a=1&wat%63h=2&watch=3;x&watch+=4&watch=%zz&watch=5").unwrap();
        assert_eq!(query.first("watch").as_deref(), Some(&b"2"[..]));
        assert_eq!(query.first("watch ").as_deref(), Some(&b"4"[..]));
        assert_eq!(query.first("a").as_deref(), Some(&b"1"[..]));
        assert_eq!(query.first("b"), None);
        let query = Query::parse("watch&watch=1").unwrap();
        assert_eq!(query.first("watch").as_deref(), Some(&b""[..]));
    }

    #[test]
    fn watch_values_follow_the_go_conversion() {
        for (query, verb) in [
            ("watch=true", "watch"),
            ("watch=1", "watch"),
            ("watch=", "watch"),
            ("watch", "watch"),
            ("watch=yes", "watch"),
            ("watch=false", "list"),
            ("watch=FALSE", "list"),
            ("watch=0", "list"),
            ("watch=fal%C5%BFe", "list"),
            ("watch=false&watch=true", "list"),
            ("watch=true&watch=false", "watch"),
            // An undecodable query: the looser reading, where U+017F is not an `s`.
            ("watch=fal%C5%BFe&limit=x", "watch"),
            ("watch=False&limit=x", "list"),
            ("", "list"),
        ] {
            let resolved = info("GET", &format!("/api/v1/pods?{query}"));
            assert_eq!(resolved.verb, verb, "{query:?}");
        }
    }

    #[test]
    fn a_field_selector_names_the_object_only_when_the_query_decodes() {
        for (query, name) in [
            ("fieldSelector=metadata.name%3Dx", "x"),
            ("fieldSelector=metadata.name%3D%3Dx", "x"),
            ("fieldSelector=metadata.name%21%3Dx", ""),
            ("fieldSelector=metadata.namespace%3Dx", ""),
            ("fieldSelector=metadata.name%3Db,metadata.name%3Da", "a"),
            ("fieldSelector=spec.nodeName%3Dn,metadata.name%3Dx", "x"),
            ("fieldSelector=metadata.name%3Da%5C%2Cb", "a,b"),
            ("fieldSelector=metadata.name%3Da%2Cb", ""),
            ("fieldSelector=metadata.name%3D", ""),
            ("fieldSelector=metadata.name%3D..", ""),
            ("fieldSelector=metadata.name%3Da%25b", ""),
            ("fieldSelector=metadata.name%3Dx,garbage", ""),
            ("fieldSelector=metadata.name%3Da%3Db", ""),
            ("fieldSelector=metadata.name%3Dx%5C", ""),
            ("fieldSelector=metadata.name%3Dx&limit=500", "x"),
            ("fieldSelector=metadata.name%3Dx&limit=", ""),
            ("fieldSelector=metadata.name%3Dx&timeoutSeconds=1.5", ""),
            (
                "fieldSelector=metadata.name%3Dx&labelSelector=app%3Dweb",
                "x",
            ),
            (
                "fieldSelector=metadata.name%3Dx&labelSelector=app%3D%3D%3D",
                "",
            ),
            (
                "fieldSelector=metadata.name%3Dx&continue=abc&resourceVersion=7",
                "x",
            ),
        ] {
            let resolved = info("GET", &format!("/api/v1/namespaces/ns/pods?{query}"));
            assert_eq!(resolved.name, name, "{query:?}");
            assert_eq!(resolved.verb, "list", "{query:?}");
        }
        assert_eq!(
            resolve("GET", "/api/v1/pods?fieldSelector=metadata.name%3D%FF"),
            Err(UnresolvableRequest::NotUtf8)
        );
    }

    #[test]
    fn a_field_selector_does_not_name_a_deletecollection() {
        let resolved = info(
            "DELETE",
            "/api/v1/namespaces/ns/pods?fieldSelector=metadata.name%3Dx",
        );
        assert_eq!(
            (resolved.verb.as_str(), resolved.name.as_str()),
            ("deletecollection", "")
        );
    }

    #[test]
    fn methods_map_to_verbs_case_sensitively() {
        for (method, verb) in [
            ("HEAD", "get"),
            ("POST", "create"),
            ("PUT", "update"),
            ("PATCH", "patch"),
            ("DELETE", "delete"),
            ("OPTIONS", ""),
            ("get", ""),
        ] {
            assert_eq!(
                info(method, "/api/v1/namespaces/ns/pods/x").verb,
                verb,
                "{method}"
            );
        }
        assert_eq!(info("OPTIONS", "/healthz").verb, "options");
    }

    #[test]
    fn deprecated_verb_prefixes() {
        let watch = info("GET", "/api/v1/watch/namespaces/ns/pods/x");
        assert_eq!(
            (
                watch.verb.as_str(),
                watch.namespace.as_str(),
                watch.resource.as_str(),
                watch.name.as_str()
            ),
            ("watch", "ns", "pods", "x")
        );
        let watch_all = info("GET", "/apis/apps/v1/watch/deployments?watch=false");
        assert_eq!(
            (watch_all.verb.as_str(), watch_all.name.as_str()),
            ("watch", "")
        );
        let proxy = info("GET", "/api/v1/proxy/namespaces/ns/services/s/a/b");
        assert_eq!(
            (
                proxy.verb.as_str(),
                proxy.resource.as_str(),
                proxy.name.as_str(),
                proxy.subresource.as_str()
            ),
            ("proxy", "services", "s", "")
        );
        assert_eq!(proxy.parts, ["services", "s", "a", "b"]);
    }

    #[test]
    fn namespace_subresources_and_odd_shapes() {
        let finalize = info("PUT", "/api/v1/namespaces/ns/finalize");
        assert_eq!(
            (
                finalize.namespace.as_str(),
                finalize.resource.as_str(),
                finalize.name.as_str(),
                finalize.subresource.as_str()
            ),
            ("ns", "namespaces", "ns", "finalize")
        );
        let bare = info("GET", "/api/v1/namespaces");
        assert_eq!((bare.verb.as_str(), bare.namespace.as_str()), ("list", ""));
        let empty_segment = info("GET", "/api/v1//pods");
        assert_eq!(
            (empty_segment.resource.as_str(), empty_segment.name.as_str()),
            ("", "pods")
        );
        let slashes = info("GET", "//api/v1/pods/");
        assert_eq!(
            (slashes.verb.as_str(), slashes.resource.as_str()),
            ("list", "pods")
        );
        let empty_group = info("GET", "/apis//v1/namespaces/ns/pods/x/exec");
        assert_eq!(
            (empty_group.api_group.as_str(), empty_group.policy_verb()),
            ("", "create")
        );
        let star = info("OPTIONS", "*");
        assert_eq!((star.path.as_str(), star.is_resource_request), ("*", false));
    }

    #[test]
    fn the_policy_verb_differs_only_for_pod_streams() {
        for (method, target, verb, policy_verb) in [
            (
                "GET",
                "/api/v1/namespaces/ns/pods/x/exec?command=sh",
                "get",
                "create",
            ),
            (
                "HEAD",
                "/api/v1/namespaces/ns/pods/x/attach",
                "get",
                "create",
            ),
            (
                "GET",
                "/api/v1/namespaces/ns/pods/x/portforward",
                "get",
                "create",
            ),
            (
                "POST",
                "/api/v1/namespaces/ns/pods/x/exec",
                "create",
                "create",
            ),
            ("GET", "/api/v1/namespaces/ns/pods/x/log", "get", "get"),
            ("GET", "/api/v1/namespaces/ns/pods/x/proxy/", "get", "get"),
            ("GET", "/api/v1/nodes/n/proxy/exec", "get", "get"),
            (
                "GET",
                "/apis/example.com/v1/namespaces/ns/pods/x/exec",
                "get",
                "get",
            ),
            ("GET", "/exec", "get", "get"),
        ] {
            let resolved = info(method, target);
            assert_eq!(
                (resolved.verb.as_str(), resolved.policy_verb()),
                (verb, policy_verb),
                "{target}"
            );
        }
    }

    #[test]
    fn sizes_are_bounded() {
        let deep = format!(
            "/api/v1/namespaces/ns/services/s/proxy{}",
            "/a".repeat(MAX_PATH_SEGMENTS)
        );
        assert_eq!(
            resolve("GET", &deep),
            Err(UnresolvableRequest::TooManyPathSegments)
        );
        let deep_enough = format!("/api/v1/namespaces/ns/services/s/proxy{}", "/a".repeat(400));
        assert_eq!(info("GET", &deep_enough).parts.len(), 403);
        let wide = format!(
            "/api/v1/pods?{}watch=true",
            "a=1&".repeat(MAX_QUERY_PARAMETERS)
        );
        assert_eq!(
            resolve("GET", &wide),
            Err(UnresolvableRequest::TooManyQueryParameters)
        );
        let semicolons = format!(
            "/api/v1/pods?watch=true{}",
            ";".repeat(MAX_QUERY_PARAMETERS)
        );
        assert_eq!(
            resolve("GET", &semicolons),
            Err(UnresolvableRequest::TooManyQueryParameters)
        );
        let wide_enough = format!(
            "/api/v1/pods?{}watch=true",
            "a=1&".repeat(MAX_QUERY_PARAMETERS - 1)
        );
        assert_eq!(info("GET", &wide_enough).verb, "watch");
    }

    #[test]
    fn no_input_panics() {
        // A deterministic spray of targets built from the characters that steer the parser.
        let alphabet: Vec<&str> = vec![
            "/",
            "api",
            "apis",
            "v1",
            "namespaces",
            "ns",
            "pods",
            "x",
            "exec",
            "watch",
            "proxy",
            "status",
            "?",
            "&",
            "=",
            "%",
            "%2F",
            "%3D",
            "%2C",
            "%5C",
            "%FF",
            "%C5%BF",
            "+",
            ";",
            "fieldSelector",
            "labelSelector",
            "metadata.name",
            "limit",
            "!",
            "(",
            ")",
            ",",
            " ",
            "in",
            "notin",
            "\\",
            "%00",
            "é",
            "",
        ];
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            let mut target = String::from("/");
            for _ in 0..(state % 24) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let index = usize::try_from(state % alphabet.len() as u64).unwrap();
                target.push_str(alphabet[index]);
            }
            for method in ["GET", "DELETE", "POST"] {
                if let Ok(resolved) = resolve(method, &target) {
                    assert!(resolved.path.starts_with('/'), "{target:?}");
                    assert_eq!(
                        resolved.is_resource_request,
                        !resolved.api_prefix.is_empty()
                    );
                    let _ = resolved.policy_verb();
                }
            }
        }
    }

    #[test]
    fn exec_class_requests() {
        for (method, target) in [
            (
                "GET",
                "/api/v1/namespaces/ns/pods/x/exec?command=sh&stdin=true",
            ),
            ("POST", "/api/v1/namespaces/ns/pods/x/exec?command=sh"),
            ("GET", "/api/v1/namespaces/ns/pods/x/attach?stdout=true"),
            ("POST", "/api/v1/namespaces/ns/pods/x/attach"),
            ("GET", "/api/v1/namespaces/ns/pods/x/portforward?ports=80"),
            ("POST", "/api/v1/namespaces/ns/pods/x/portforward"),
            ("GET", "/api/v1/namespaces/ns/pods/x/proxy"),
            ("GET", "/api/v1/namespaces/ns/pods/x:8080/proxy/admin"),
            ("GET", "/api/v1/namespaces/ns/services/https:s:443/proxy/"),
            ("DELETE", "/api/v1/namespaces/ns/services/s/proxy/x"),
            ("GET", "/api/v1/nodes/n/proxy"),
            ("GET", "/api/v1/nodes/n/proxy/exec/ns/pod/c?command=sh"),
            ("POST", "/api/v1/nodes/n:10250/proxy/run/ns/pod/c?cmd=id"),
            ("GET", "/api/v1/nodes/n/proxy/configz"),
            ("GET", "/api/v1/proxy/namespaces/ns/pods/x/exec"),
            ("GET", "/api/v1/proxy/nodes/n/exec/ns/pod/c"),
            ("GET", "/api/v1/namespaces/ns/pods/x%2Fexec"),
            ("GET", "/apis//v1/namespaces/ns/pods/x/exec"),
            ("GET", "/apis/example.io/v1/namespaces/ns/widgets/w/proxy/x"),
        ] {
            assert!(info(method, target).is_exec_class(), "{method} {target}");
        }
        for (method, target) in [
            ("GET", "/api/v1/namespaces/ns/pods"),
            ("GET", "/api/v1/namespaces/ns/pods/x"),
            ("GET", "/api/v1/namespaces/ns/pods/x/log?follow=true"),
            ("GET", "/api/v1/namespaces/ns/pods/proxy"),
            ("GET", "/api/v1/namespaces/ns/services/proxy"),
            ("GET", "/api/v1/nodes/proxy"),
            ("GET", "/api/v1/namespaces/ns/proxy"),
            ("GET", "/api/v1/namespaces/proxy"),
            ("GET", "/api/v1/watch/namespaces/ns/pods"),
            ("POST", "/apis/example.io/v1/namespaces/ns/pods/x/exec"),
            ("PATCH", "/api/v1/namespaces/ns/pods/x/ephemeralcontainers"),
            ("GET", "/version"),
            ("GET", "/proxy/exec"),
        ] {
            assert!(!info(method, target).is_exec_class(), "{method} {target}");
        }
    }
}
