//! Which configured route serves a request, by the request's host (`:authority`), picked the
//! way Envoy picks a virtual host, so that kubegate never judges a request (and never adds a
//! service-account token) under a route other than the one the proxy forwards it by.
//!
//! Envoy (source/common/router/config_impl.cc, `RouteMatcher::findVirtualHost`; route.proto,
//! `VirtualHost.domains`) lower-cases the Host and matches it, port included, against: exact
//! domains, then suffix wildcards (`*.example.com`, longest first), then prefix wildcards
//! (`example.*`, longest first), then `*`. A port is part of the Host unless the connection
//! manager strips it (`strip_matching_host_port`, `strip_any_host_port`) or the route
//! configuration ignores it (`ignore_port_in_host_matching`); a trailing dot stays unless
//! `strip_trailing_host_dot` removes it. Stripping happens before the filters run, so the
//! filter sees the same Host as Envoy's matcher.
//!
//! Each `from` stands for the Envoy domains it matches like:
//!
//! | `from`                         | matches                         | Envoy domains                       |
//! |--------------------------------|---------------------------------|-------------------------------------|
//! | `https://k8s.example.com`      | that name, with any port or none | `k8s.example.com`, `k8s.example.com:*` |
//! | `https://k8s.example.com:8443` | that name with `:8443` only     | `k8s.example.com:8443`              |
//! | `https://*.example.com`        | `X.example.com`, no port        | `*.example.com`                     |
//! | `https://*.example.com:8443`   | `X.example.com:8443` only       | `*.example.com:8443`                |
//! | no `from` (single route)       | every host                      | `*`                                 |
//!
//! and a Host is matched against them in Envoy's order (so `a.example.com:8443` goes to
//! `*.example.com:8443` before `a.example.com`, whose `a.example.com:*` is a prefix wildcard).
//! Letter case is ignored; nothing else is normalised: a trailing dot (`k8s.example.com.`), an
//! empty or non-numeric port, or a port the route does not name matches no route (404), where
//! Envoy would send the request to another virtual host or answer 404 itself (a non-numeric
//! port is the one place kubegate refuses what Envoy's `host:*` would match). Envoy's other
//! wildcards (`example.*`, `*-api.example.com`) have no `from` spelling: refused at configure
//! time.

/// A route's host as configured in `from`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HostPattern {
    /// A single route without `from`: every host.
    Any,
    /// A host without a port (lower case; IPv6 literals in brackets): the host alone or with
    /// any port.
    Exact(String),
    /// A host and a port, `k8s.example.com:8443`: exactly that authority.
    ExactPort(String),
    /// The suffix after `*`, starting with a dot, with the port if `from` names one:
    /// `.example.com` or `.example.com:8443`.
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
        let authority = normalize_host(authority);
        let (host, port) = split_port(&authority)?;
        if host.is_empty() {
            return Err("the host is empty".into());
        }
        if host.ends_with('.') {
            return Err(format!(
                "write the host without its trailing dot: Envoy matches the Host as sent, so \
                 {host:?} would match only a Host that ends in a dot (strip_trailing_host_dot \
                 removes it before both Envoy and kubegate see it)"
            ));
        }
        if let Some(suffix) = host.strip_prefix('*') {
            if !suffix.starts_with('.') || suffix.len() < 2 || suffix.contains('*') {
                return Err(WILDCARD_SHAPE.into());
            }
            check_host_name(suffix.get(1..).unwrap_or_default())?;
            return Ok(HostPattern::Wildcard(match port {
                Some(port) => format!("{suffix}:{port}"),
                None => suffix.to_string(),
            }));
        }
        if host.contains('*') {
            return Err(WILDCARD_SHAPE.into());
        }
        check_host_name(host)?;
        Ok(match port {
            Some(port) => HostPattern::ExactPort(format!("{host}:{port}")),
            None => HostPattern::Exact(host.to_string()),
        })
    }

    /// Envoy's order: exact domains, suffix wildcards (longer first), prefix wildcards (the
    /// `host:*` of an `Exact`, longer first), then `*`.
    fn rank(&self) -> (u8, usize) {
        match self {
            HostPattern::Exact(_) | HostPattern::ExactPort(_) => (0, 0),
            HostPattern::Wildcard(suffix) => (1, usize::MAX - suffix.len()),
            HostPattern::Any => (3, 0),
        }
    }

    /// Whether the pattern's exact domain or suffix wildcard (or `*`) matches the authority.
    fn matches(&self, authority: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Exact(name) | HostPattern::ExactPort(name) => name == authority,
            HostPattern::Wildcard(suffix) => {
                authority.len() > suffix.len() && authority.ends_with(suffix.as_str())
            }
        }
    }

    /// Whether the `host:*` prefix wildcard of an `Exact` matches: the host, a colon and a
    /// port. Envoy's `host:*` takes any non-empty text after the colon; kubegate takes digits
    /// only, so a malformed port (which `ignore_port_in_host_matching` would not strip) is no
    /// route rather than a guess.
    fn matches_with_port(&self, authority: &str) -> bool {
        match self {
            HostPattern::Exact(name) => authority
                .strip_prefix(name.as_str())
                .and_then(|rest| rest.strip_prefix(':'))
                .is_some_and(|port| !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit())),
            _ => false,
        }
    }
}

const WILDCARD_SHAPE: &str = "a wildcard must be a leading \"*.\" label (Envoy's prefix \
     wildcards such as \"example.*\" and partial labels such as \"*-api.example.com\" are not \
     supported)";

/// The host and the port of a lower-cased authority; a port must be 1 to 65535.
fn split_port(authority: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => {
                let host = authority.get(..=end).unwrap_or(authority);
                let rest = authority.get(end + 1..).unwrap_or_default();
                match rest.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None if rest.is_empty() => (host, None),
                    None => return Err(format!("{authority:?} is not a host name")),
                }
            }
            None => return Err(format!("{authority:?} is not a host name")),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some("*") => {
            return Err(
                "a route without a port already matches the host with any port (Envoy's \
                 \"host\" and \"host:*\"); remove \":*\""
                    .into(),
            )
        }
        Some(port) => match port.parse::<u16>() {
            Ok(number) if number > 0 && port.bytes().all(|b| b.is_ascii_digit()) => Some(number),
            _ => return Err(format!("{port:?} is not a port (1 to 65535)")),
        },
    };
    Ok((host, port))
}

fn check_host_name(host: &str) -> Result<(), String> {
    let bracketed = host.starts_with('[') && host.ends_with(']');
    let allowed = |c: char| {
        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') || (bracketed && c == ':')
    };
    let inner = if bracketed {
        host.get(1..host.len() - 1).unwrap_or_default()
    } else {
        host
    };
    if inner.is_empty() || !inner.chars().all(allowed) || inner.contains("..") {
        return Err(format!("{host:?} is not a host name"));
    }
    Ok(())
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Any => f.write_str("*"),
            HostPattern::Exact(name) | HostPattern::ExactPort(name) => f.write_str(name),
            HostPattern::Wildcard(suffix) => write!(f, "*{suffix}"),
        }
    }
}

/// The authority as routes match it: surrounding whitespace removed and ASCII lower case, as
/// Envoy lower-cases the Host before matching. The port and any trailing dot stay.
pub fn normalize_host(authority: &str) -> String {
    authority.trim().to_ascii_lowercase()
}

/// Index of the route whose pattern serves `authority`, in Envoy's order.
pub struct RouteTable {
    /// (pattern, index into the configured routes), sorted by Envoy's order (ties: the
    /// configured order).
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
        let authority = normalize_host(authority);
        if authority.is_empty() {
            return None;
        }
        // Exact domains, then suffix wildcards: the order of `ordered`.
        let exact_or_suffix = self.ordered.iter().find(|(pattern, _)| {
            !matches!(pattern, HostPattern::Any) && pattern.matches(&authority)
        });
        if let Some((_, index)) = exact_or_suffix {
            return Some(*index);
        }
        // Then the `host:*` prefix wildcards, the longest host first.
        let mut longest: Option<(usize, usize)> = None;
        for (pattern, index) in &self.ordered {
            if let HostPattern::Exact(name) = pattern {
                let longer = longest.is_none_or(|(length, _)| name.len() > length);
                if longer && pattern.matches_with_port(&authority) {
                    longest = Some((name.len(), *index));
                }
            }
        }
        if let Some((_, index)) = longest {
            return Some(index);
        }
        self.ordered
            .iter()
            .find(|(pattern, _)| matches!(pattern, HostPattern::Any))
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
            HostPattern::ExactPort("k8s.example.com:8443".into())
        );
        assert_eq!(
            HostPattern::parse("*.example.com").unwrap(),
            HostPattern::Wildcard(".example.com".into())
        );
        assert_eq!(
            HostPattern::parse("https://*.Example.com:443").unwrap(),
            HostPattern::Wildcard(".example.com:443".into())
        );
        assert_eq!(
            HostPattern::parse("https://[::1]:8443").unwrap(),
            HostPattern::ExactPort("[::1]:8443".into())
        );
        assert_eq!(
            HostPattern::parse("https://[::1]").unwrap(),
            HostPattern::Exact("[::1]".into())
        );
        for bad in [
            "ftp://x",
            "https://",
            "https://a.b/path",
            "https://u@a.b",
            "a.*.com",
            "*example.com",
            "*-api.example.com",
            "example.*",
            "k8s.example.com:*",
            "*.",
            "https://a b",
            "https://k8s.example.com.",
            "https://k8s.example.com.:443",
            "https://k8s.example.com:",
            "https://k8s.example.com:0",
            "https://k8s.example.com:65536",
            "https://k8s.example.com:+443",
            "https://a:b:443",
            "https://[::1",
            "https://[::1]x",
            "https://a..b",
        ] {
            assert!(HostPattern::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_host_without_a_port_matches_any_port_but_nothing_else() {
        let t = table(&["https://k8s.example.com"]);
        assert_eq!(t.find("k8s.example.com"), Some(0));
        assert_eq!(t.find("K8S.example.COM:443"), Some(0));
        assert_eq!(t.find("k8s.example.com:8443"), Some(0));
        // Envoy's "k8s.example.com:*" needs at least one character after the colon.
        assert_eq!(t.find("k8s.example.com:"), None);
        // Nor does a port that is not a number (Envoy's would; Envoy Gateway's would not).
        assert_eq!(t.find("k8s.example.com:x"), None);
        assert_eq!(t.find("k8s.example.com:443:443"), None);
        // Envoy matches the Host as sent: the trailing dot is another name.
        assert_eq!(t.find("k8s.example.com."), None);
        assert_eq!(t.find("k8s.example.com.:443"), None);
        assert_eq!(t.find("evil.com"), None);
        assert_eq!(t.find("k8s.example.com.evil.com"), None);
        assert_eq!(t.find("xk8s.example.com"), None);
        assert_eq!(t.find(""), None);
    }

    #[test]
    fn a_port_in_from_is_required_as_written() {
        let t = table(&["https://k8s.example.com:8443", "https://*.example.com:443"]);
        assert_eq!(t.find("k8s.example.com:8443"), Some(0));
        assert_eq!(t.find("K8S.EXAMPLE.COM:8443"), Some(0));
        assert_eq!(t.find("k8s.example.com"), None);
        assert_eq!(t.find("k8s.example.com:443"), Some(1));
        assert_eq!(t.find("k8s.example.com:08443"), None);
        assert_eq!(t.find("a.example.com:443"), Some(1));
        assert_eq!(t.find("a.example.com"), None);
        assert_eq!(t.find("a.example.com:8443"), None);
    }

    #[test]
    fn exact_then_suffix_then_host_with_any_port_as_envoy_orders_them() {
        let t = table(&["*.example.com", "*.prod.example.com", "api.example.com"]);
        assert_eq!(t.find("api.example.com"), Some(2));
        assert_eq!(t.find("a.prod.example.com"), Some(1));
        assert_eq!(t.find("b.example.com"), Some(0));
        assert_eq!(t.find("example.com"), None);
        // A wildcard without a port matches only a Host without one.
        assert_eq!(t.find("b.example.com:443"), None);
        // api.example.com:443 is no exact domain; Envoy tries the suffix wildcards before
        // the prefix wildcard "api.example.com:*".
        let t = table(&["https://api.example.com", "https://*.example.com:443"]);
        assert_eq!(t.find("api.example.com:443"), Some(1));
        assert_eq!(t.find("api.example.com:8443"), Some(0));
        assert_eq!(t.find("api.example.com"), Some(0));
        // An exact host with its port beats the same host with any port.
        let t = table(&["https://api.example.com", "https://api.example.com:8443"]);
        assert_eq!(t.find("api.example.com:8443"), Some(1));
        assert_eq!(t.find("api.example.com:9443"), Some(0));
    }

    #[test]
    fn ipv6_authorities() {
        let t = table(&["https://[::1]"]);
        assert_eq!(t.find("[::1]:8443"), Some(0));
        assert_eq!(t.find("[::1]"), Some(0));
        assert_eq!(t.find("[::2]:8443"), None);
        let t = table(&["https://[::1]:8443"]);
        assert_eq!(t.find("[::1]:8443"), Some(0));
        assert_eq!(t.find("[::1]"), None);
    }

    #[test]
    fn any_matches_everything_but_nothing() {
        let t = RouteTable::new([HostPattern::Any]);
        assert_eq!(t.find("whatever:1"), Some(0));
        assert_eq!(t.find("trailing.dot."), Some(0));
        assert_eq!(t.find(""), None);
    }
}
