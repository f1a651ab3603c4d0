//! Which configured route serves a request, by the request's host (`:authority`).
//!
//! Names compare without the port, ignoring ASCII case and a trailing dot. `*.example.com`
//! matches any name ending in `.example.com` (as Envoy's virtual-host wildcards do) but not
//! `example.com` itself. Exact names win over wildcards, longer wildcards over shorter.

/// A route's host as configured in `from`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    /// A single route without `from`: every host.
    Any,
    Exact(String),
    /// The suffix after `*`, starting with a dot: `.example.com`.
    Wildcard(String),
}

impl HostPattern {
    /// Parses `from`: a URL (`https://k8s.example.com[:port][/]`) or a bare host name.
    pub fn parse(from: &str) -> Result<HostPattern, String> {
        let rest = match from.split_once("://") {
            Some((scheme, rest)) => {
                if !scheme.eq_ignore_ascii_case("https") && !scheme.eq_ignore_ascii_case("http") {
                    return Err(format!("scheme {scheme:?} is not http or https"));
                }
                rest
            }
            None => from,
        };
        let authority = rest.split('/').next().unwrap_or_default();
        if rest.len() > authority.len() + 1 {
            return Err("a route matches on the host only; remove the path".into());
        }
        if authority.contains('@') {
            return Err("user info is not allowed in a route's host".into());
        }
        let host = normalize_host(authority);
        if host.is_empty() {
            return Err("the host is empty".into());
        }
        if let Some(suffix) = host.strip_prefix('*') {
            if !suffix.starts_with('.') || suffix.len() < 2 || suffix.contains('*') {
                return Err("a wildcard must be a leading \"*.\" label".into());
            }
            return Ok(HostPattern::Wildcard(suffix.to_string()));
        }
        if host.contains('*') {
            return Err("a wildcard must be a leading \"*.\" label".into());
        }
        if !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_'))
        {
            return Err(format!("{host:?} is not a host name"));
        }
        Ok(HostPattern::Exact(host))
    }

    fn rank(&self) -> (u8, usize) {
        match self {
            HostPattern::Exact(_) => (0, 0),
            // Longer suffixes are more specific: sort them first.
            HostPattern::Wildcard(suffix) => (1, usize::MAX - suffix.len()),
            HostPattern::Any => (2, 0),
        }
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(name) => name == host,
            HostPattern::Wildcard(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
        }
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Exact(name) => f.write_str(name),
            HostPattern::Wildcard(suffix) => write!(f, "*{suffix}"),
        }
    }
}

/// The host of an authority: port removed (IPv6 literals keep their brackets), lower case,
/// trailing dot removed.
pub fn normalize_host(authority: &str) -> String {
    let authority = authority.trim();
    let host = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => authority.get(..=end).unwrap_or(authority),
            None => authority,
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
            _ => authority,
        }
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Index of the route whose pattern serves `authority`, most specific first.
pub struct RouteTable {
    /// (pattern, index into the configured routes), sorted by specificity.
    ordered: Vec<(HostPattern, usize)>,
}

impl RouteTable {
    pub fn new(patterns: impl IntoIterator<Item = HostPattern>) -> RouteTable {
        let mut ordered: Vec<(HostPattern, usize)> = patterns
            .into_iter()
            .enumerate()
            .map(|(i, p)| (p, i))
            .collect();
        ordered.sort_by_key(|(p, i)| (p.rank(), *i));
        RouteTable { ordered }
    }

    pub fn find(&self, authority: &str) -> Option<usize> {
        let host = normalize_host(authority);
        if host.is_empty() {
            return None;
        }
        self.ordered
            .iter()
            .find(|(pattern, _)| pattern.matches(&host))
            .map(|(_, index)| *index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    fn table(froms: &[&str]) -> RouteTable {
        RouteTable::new(froms.iter().map(|f| HostPattern::parse(f).unwrap()))
    }

    #[test]
    fn parses_urls_and_hosts() {
        assert_eq!(
            HostPattern::parse("https://K8s.Example.com").unwrap(),
            HostPattern::Exact("k8s.example.com".into())
        );
        assert_eq!(
            HostPattern::parse("https://k8s.example.com:8443/").unwrap(),
            HostPattern::Exact("k8s.example.com".into())
        );
        assert_eq!(
            HostPattern::parse("*.example.com").unwrap(),
            HostPattern::Wildcard(".example.com".into())
        );
        assert_eq!(
            HostPattern::parse("https://[::1]:8443").unwrap(),
            HostPattern::Exact("[::1]".into())
        );
        for bad in [
            "ftp://x",
            "https://",
            "https://a.b/path",
            "https://u@a.b",
            "a.*.com",
            "*example.com",
            "*.",
            "https://a b",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn matches_host_ignoring_port_case_and_trailing_dot() {
        let t = table(&["https://k8s.example.com"]);
        assert_eq!(t.find("k8s.example.com"), Some(0));
        assert_eq!(t.find("K8S.example.COM:443"), Some(0));
        assert_eq!(t.find("k8s.example.com."), Some(0));
        assert_eq!(t.find("evil.com"), None);
        assert_eq!(t.find("k8s.example.com.evil.com"), None);
        assert_eq!(t.find("xk8s.example.com"), None);
        assert_eq!(t.find(""), None);
    }

    #[test]
    fn exact_beats_wildcard_and_longer_wildcard_beats_shorter() {
        let t = table(&["*.example.com", "*.prod.example.com", "api.example.com"]);
        assert_eq!(t.find("api.example.com"), Some(2));
        assert_eq!(t.find("a.prod.example.com"), Some(1));
        assert_eq!(t.find("b.example.com"), Some(0));
        assert_eq!(t.find("example.com"), None);
    }

    #[test]
    fn ipv6_authorities() {
        let t = table(&["https://[::1]"]);
        assert_eq!(t.find("[::1]:8443"), Some(0));
        assert_eq!(t.find("[::1]"), Some(0));
        assert_eq!(t.find("[::2]:8443"), None);
    }

    #[test]
    fn any_matches_everything_but_nothing() {
        let t = RouteTable::new([HostPattern::Any]);
        assert_eq!(t.find("whatever:1"), Some(0));
        assert_eq!(t.find(""), None);
    }
}
