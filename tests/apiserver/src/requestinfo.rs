//! What a request asks for, resolved as the API server's `RequestInfoFactory` does.
//!
//! `/api/v1/...` and `/apis/GROUP/VERSION/...` are resource requests; everything else
//! (including `/api`, `/apis/GROUP`, `/version`) is a non-resource request whose verb is
//! the lower-cased method. For resources the verb comes from the method: GET/HEAD get
//! (list without a name; watch with `watch=<not false/0>` or the `/watch/` prefix), POST
//! create, PUT update, PATCH patch, DELETE delete (deletecollection without a name).
//! `/namespaces/NS/...` sets the namespace unless followed by `status` or `finalize`.
//! A list or watch whose `fieldSelector` pins `metadata.name` names that object.

/// `request.RequestInfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    pub is_resource_request: bool,
    /// The percent-decoded path.
    pub path: String,
    pub verb: String,
    pub api_prefix: String,
    pub api_group: String,
    pub api_version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// The path segments from the resource on.
    pub parts: Vec<String>,
}

/// Why a request cannot be resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResolveError {
    /// The path has a malformed percent escape: Go's HTTP server answers 400 before any
    /// handler runs.
    BadPath,
    /// `/api/v1/watch` or `/api/v1/proxy` with nothing after it: the API server answers 500.
    NoResource(String),
}

const SPECIAL_VERBS: [&str; 2] = ["proxy", "watch"];
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

/// Resolves a request from its method, raw path (as on the request line) and raw query.
pub fn resolve(method: &str, raw_path: &str, raw_query: &str) -> Result<RequestInfo, ResolveError> {
    let path = percent_decode(raw_path, false).ok_or(ResolveError::BadPath)?;
    let mut info = RequestInfo {
        is_resource_request: false,
        path: path.clone(),
        verb: method.to_ascii_lowercase(),
        ..RequestInfo::default()
    };
    let trimmed = path.trim_matches('/');
    let mut parts: Vec<&str> = if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    };
    if parts.len() < 3 || !(parts[0] == "api" || parts[0] == "apis") {
        return Ok(info);
    }
    info.api_prefix = parts[0].to_string();
    parts.remove(0);
    if info.api_prefix == "apis" {
        if parts.len() < 3 {
            return Ok(info);
        }
        info.api_group = parts.remove(0).to_string();
    }
    info.is_resource_request = true;
    info.api_version = parts.remove(0).to_string();

    if SPECIAL_VERBS.contains(&parts[0]) {
        if parts.len() < 2 {
            return Err(ResolveError::NoResource(format!(
                "unable to determine kind and namespace from url, {}",
                raw_path
            )));
        }
        info.verb = parts.remove(0).to_string();
    } else {
        info.verb = match method {
            "POST" => "create",
            "GET" | "HEAD" => "get",
            "PUT" => "update",
            "PATCH" => "patch",
            "DELETE" => "delete",
            _ => "",
        }
        .to_string();
    }

    if parts[0] == "namespaces" && parts.len() > 1 {
        info.namespace = parts[1].to_string();
        if parts.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&parts[2]) {
            parts.drain(..2);
        }
    }
    info.parts = parts.iter().map(|part| part.to_string()).collect();

    if parts.len() >= 3 && info.verb != "proxy" {
        info.subresource = parts[2].to_string();
    }
    if parts.len() >= 2 {
        info.name = parts[1].to_string();
    }
    if !parts.is_empty() {
        info.resource = parts[0].to_string();
    }

    if info.name.is_empty() && info.verb == "get" {
        let query = Query::parse(raw_query);
        let watch = query
            .first("watch")
            .is_some_and(|value| !matches!(value.to_ascii_lowercase().as_str(), "false" | "0"));
        info.verb = if watch { "watch" } else { "list" }.to_string();
        if let Some(name) = query
            .first("fieldSelector")
            .and_then(|selector| exact_field_match(&selector, "metadata.name"))
        {
            if is_valid_path_segment_name(&name) {
                info.name = name;
            }
        }
    }
    if info.name.is_empty() && info.verb == "delete" {
        info.verb = "deletecollection".to_string();
    }
    Ok(info)
}

/// A decoded query string (`+` is a space, as in Go's `url.ParseQuery`).
#[derive(Clone, Debug, Default)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub fn parse(raw: &str) -> Query {
        let pairs = raw
            .split('&')
            .filter(|pair| !pair.is_empty())
            .filter_map(|pair| {
                let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                Some((percent_decode(key, true)?, percent_decode(value, true)?))
            })
            .collect();
        Query { pairs }
    }

    /// The first value of `key`.
    pub fn first(&self, key: &str) -> Option<String> {
        self.pairs
            .iter()
            .find(|(candidate, _)| candidate == key)
            .map(|(_, value)| value.clone())
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(candidate, _)| candidate == key)
            .map(|(_, value)| value.clone())
            .collect()
    }
}

/// Decodes `%XX` escapes (and `+` as a space when asked); `None` for a malformed escape.
/// Bytes that are not UTF-8 are replaced, which only matters for names no object has.
pub fn percent_decode(input: &str, plus_is_space: bool) -> Option<String> {
    let bytes = input.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            b'%' => {
                let high = hex_value(*bytes.get(index + 1)?)?;
                let low = hex_value(*bytes.get(index + 2)?)?;
                decoded.push(high << 4 | low);
                index += 3;
            }
            b'+' if plus_is_space => {
                decoded.push(b' ');
                index += 1;
            }
            byte => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    Some(String::from_utf8_lossy(&decoded).into_owned())
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

/// `fields.Selector.RequiresExactMatch`: the value a `field=value` or `field==value` term
/// pins (terms are comma-separated; `\,`, `\=` and `\\` escape).
pub fn exact_field_match(selector: &str, field: &str) -> Option<String> {
    for term in split_unescaped(selector, ',') {
        let (key, operator_and_value) = match term.find(['=', '!']) {
            Some(position) => term.split_at(position),
            None => continue,
        };
        if key.trim() != field {
            continue;
        }
        let value = if let Some(value) = operator_and_value.strip_prefix("==") {
            value
        } else if operator_and_value.starts_with("!=") {
            continue;
        } else if let Some(value) = operator_and_value.strip_prefix('=') {
            value
        } else {
            continue;
        };
        return Some(unescape_field_value(value));
    }
    None
}

fn split_unescaped(text: &str, separator: char) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut escaped = false;
    for character in text.chars() {
        if escaped {
            current.push('\\');
            current.push(character);
            escaped = false;
        } else if character == '\\' {
            escaped = true;
        } else if character == separator {
            pieces.push(std::mem::take(&mut current));
        } else {
            current.push(character);
        }
    }
    if escaped {
        current.push('\\');
    }
    pieces.push(current);
    pieces
}

fn unescape_field_value(value: &str) -> String {
    let mut unescaped = String::with_capacity(value.len());
    let mut characters = value.chars();
    while let Some(character) = characters.next() {
        if character == '\\' {
            if let Some(next) = characters.next() {
                unescaped.push(next);
            }
        } else {
            unescaped.push(character);
        }
    }
    unescaped
}

/// `path.IsValidPathSegmentName`.
fn is_valid_path_segment_name(name: &str) -> bool {
    name != "." && name != ".." && !name.contains('/') && !name.contains('%')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(method: &str, target: &str) -> RequestInfo {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        resolve(method, path, query).unwrap()
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb", false).as_deref(), Some("a/b"));
        assert_eq!(percent_decode("a+b", true).as_deref(), Some("a b"));
        assert_eq!(percent_decode("a+b", false).as_deref(), Some("a+b"));
        assert_eq!(percent_decode("%zz", false), None);
        assert_eq!(percent_decode("%4", false), None);
    }

    #[test]
    fn bad_escapes_and_empty_watch_are_errors() {
        assert_eq!(
            resolve("GET", "/api/v1/%zz", ""),
            Err(ResolveError::BadPath)
        );
        assert!(matches!(
            resolve("GET", "/api/v1/watch", ""),
            Err(ResolveError::NoResource(_))
        ));
    }

    #[test]
    fn field_selector_names() {
        assert_eq!(
            exact_field_match("metadata.name=x", "metadata.name").as_deref(),
            Some("x")
        );
        assert_eq!(
            exact_field_match("a=b,metadata.name==y", "metadata.name").as_deref(),
            Some("y")
        );
        assert_eq!(exact_field_match("metadata.name!=y", "metadata.name"), None);
        assert_eq!(
            exact_field_match("metadata.name=a\\,b", "metadata.name").as_deref(),
            Some("a,b")
        );
        assert_eq!(
            info(
                "GET",
                "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Dnginx-1"
            )
            .name,
            "nginx-1"
        );
        assert_eq!(
            info(
                "GET",
                "/api/v1/namespaces/default/pods?fieldSelector=metadata.name%3Da%2Fb"
            )
            .name,
            ""
        );
    }

    #[test]
    fn exec_is_create_on_post_and_get_on_websocket() {
        let post = info(
            "POST",
            "/api/v1/namespaces/default/pods/nginx-1/exec?command=echo",
        );
        assert_eq!(
            (
                post.verb.as_str(),
                post.resource.as_str(),
                post.subresource.as_str(),
                post.name.as_str()
            ),
            ("create", "pods", "exec", "nginx-1")
        );
        assert_eq!(
            info("GET", "/api/v1/namespaces/default/pods/nginx-1/exec").verb,
            "get"
        );
    }
}
