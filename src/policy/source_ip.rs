//! `source_ip`: the client address the proxy reports, against IP addresses and CIDR ranges.
//!
//! ```yaml
//! - source_ip: 10.0.0.0/8
//! - source_ip: [192.0.2.7, "2001:db8::/32", "::1"]
//! ```
//!
//! Decisions:
//! - Addresses and ranges are parsed with `std::net` (no zone ids such as `fe80::1%eth0`, no
//!   leading zeros in a prefix length); a range with host bits set (`10.1.2.3/8`) is refused,
//!   since it is usually a typo, with the range it would have meant in the message.
//! - IPv4-mapped IPv6 addresses (`::ffff:192.0.2.7`) are IPv4, in the configuration and in
//!   the client address alike: `::ffff:192.0.2.7` is `192.0.2.7`, and `::ffff:10.0.0.0/104` is
//!   `10.0.0.0/8`. An IPv6 range otherwise matches IPv6 clients only, so `::/0` is "every IPv6
//!   client" and does not cover IPv4 ones; `0.0.0.0/0` is every IPv4 client.
//! - Without a client address (the proxy reported none, or not an IP socket) the criterion is
//!   false.

use super::error::JsonPath;
use super::PolicyError;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The client's IP address from a proxy address such as Envoy's `source.address` property:
/// `192.0.2.7:53211`, `[2001:db8::7]:53211`, or a bare address. IPv4-mapped IPv6 addresses
/// come back as IPv4. `None` for anything else (a Unix socket path, an empty value, a bad
/// port).
#[must_use]
pub fn source_ip_from_address(address: &str) -> Option<IpAddr> {
    // By hand rather than through `SocketAddr`'s parser, which would only add code: the
    // address parsers are already in the module for the configuration.
    let port =
        |port: &str| port.bytes().all(|byte| byte.is_ascii_digit()) && port.parse::<u16>().is_ok();
    let ip = if let Ok(ip) = address.parse::<IpAddr>() {
        ip
    } else if let Some(bracketed) = address.strip_prefix('[') {
        let (ip, rest) = bracketed.split_once(']')?;
        let ip = ip.parse::<Ipv6Addr>().ok()?;
        if !rest.strip_prefix(':').is_some_and(port) {
            return None;
        }
        IpAddr::V6(ip)
    } else {
        let (ip, rest) = address.rsplit_once(':')?;
        if !port(rest) {
            return None;
        }
        IpAddr::V4(ip.parse::<Ipv4Addr>().ok()?)
    };
    Some(ip.to_canonical())
}

/// One configured address or range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Network {
    V4 { bits: u32, prefix: u32 },
    V6 { bits: u128, prefix: u32 },
}

impl Network {
    fn parse(text: &str) -> Result<Network, String> {
        let malformed = || {
            format!(
                "{text:?} is not an IP address or CIDR range (such as \"192.0.2.7\", \
                 \"10.0.0.0/8\" or \"2001:db8::/32\")"
            )
        };
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| malformed())?;
        let prefix = match prefix {
            Some(prefix) => Some(parse_prefix(prefix).ok_or_else(malformed)?),
            None => None,
        };
        let network = match address {
            IpAddr::V4(address) => Network::V4 {
                bits: u32::from(address),
                prefix: prefix.unwrap_or(32),
            },
            IpAddr::V6(address) => match (address.to_ipv4_mapped(), prefix) {
                (Some(mapped), None) => Network::V4 {
                    bits: u32::from(mapped),
                    prefix: 32,
                },
                (Some(mapped), Some(prefix)) if prefix >= 96 => Network::V4 {
                    bits: u32::from(mapped),
                    prefix: prefix - 96,
                },
                (_, prefix) => Network::V6 {
                    bits: u128::from(address),
                    prefix: prefix.unwrap_or(128),
                },
            },
        };
        let masked = network.masked().ok_or_else(malformed)?;
        if masked != network {
            // (Printing the range it would have meant would take the address formatters into
            // the module, a few KiB, for this one message.)
            return Err(format!(
                "{text:?} has host bits set: give the first address of the range (as in \
                 \"10.0.0.0/8\") or a single address without a prefix length"
            ));
        }
        Ok(network)
    }

    /// The network with its host bits cleared; `None` for a prefix longer than the address.
    fn masked(self) -> Option<Network> {
        match self {
            Network::V4 { bits, prefix } => Some(Network::V4 {
                bits: bits & mask_v4(prefix)?,
                prefix,
            }),
            Network::V6 { bits, prefix } => Some(Network::V6 {
                bits: bits & mask_v6(prefix)?,
                prefix,
            }),
        }
    }

    /// `ip` must be canonical (IPv4-mapped addresses as IPv4).
    fn contains(self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Network::V4 { bits, prefix }, IpAddr::V4(ip)) => {
                mask_v4(prefix).is_some_and(|mask| u32::from(ip) & mask == bits)
            }
            (Network::V6 { bits, prefix }, IpAddr::V6(ip)) => {
                mask_v6(prefix).is_some_and(|mask| u128::from(ip) & mask == bits)
            }
            _ => false,
        }
    }
}

/// A prefix length: decimal digits without a sign or leading zeros, at most 128 (each family
/// checks its own limit through its mask).
fn parse_prefix(text: &str) -> Option<u32> {
    let digits_only = !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit());
    let leading_zero = text.len() > 1 && text.starts_with('0');
    if !digits_only || leading_zero || text.len() > 3 {
        return None;
    }
    text.parse().ok().filter(|&prefix| prefix <= 128)
}

/// The netmask of an IPv4 prefix length; `None` above 32.
fn mask_v4(prefix: u32) -> Option<u32> {
    match prefix {
        0 => Some(0),
        1..=32 => Some(u32::MAX << (32 - prefix)),
        _ => None,
    }
}

/// The netmask of an IPv6 prefix length; `None` above 128.
fn mask_v6(prefix: u32) -> Option<u128> {
    match prefix {
        0 => Some(0),
        1..=128 => Some(u128::MAX << (128 - prefix)),
        _ => None,
    }
}

/// Any of a list of addresses and ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceIpMatcher {
    networks: Box<[Network]>,
}

impl SourceIpMatcher {
    /// A string or a non-empty list of strings.
    pub(crate) fn parse(value: &Value, path: &JsonPath<'_>) -> Result<Self, PolicyError> {
        let one = |value: &Value, path: &JsonPath<'_>| {
            let text = value
                .as_str()
                .ok_or_else(|| path.wrong_type("a string", value))?;
            Network::parse(text).map_err(|problem| path.error(problem))
        };
        let networks = match value {
            Value::String(_) => Box::new([one(value, path)?]) as Box<[Network]>,
            Value::Array(items) if items.is_empty() => {
                return Err(path.error(
                    "empty list: give at least one IP address or CIDR range (an empty list \
                     would never match)",
                ))
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(index, item)| one(item, &path.index(index)))
                .collect::<Result<_, _>>()?,
            other => {
                return Err(path.wrong_type("an IP address or CIDR range, or a list of them", other))
            }
        };
        Ok(SourceIpMatcher { networks })
    }

    /// Whether the client address is in any configured range; false without one.
    pub(crate) fn matches(&self, source_ip: Option<IpAddr>) -> bool {
        source_ip.is_some_and(|ip| {
            let ip = ip.to_canonical();
            self.networks.iter().any(|network| network.contains(ip))
        })
    }
}

#[cfg(test)]
mod tests {
    #[cfg(target_arch = "wasm32")]
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use super::*;
    use serde_json::json;

    fn matcher(value: Value) -> SourceIpMatcher {
        SourceIpMatcher::parse(&value, &JsonPath::root()).expect("valid source_ip")
    }

    fn error(value: Value) -> String {
        SourceIpMatcher::parse(&value, &JsonPath::root())
            .expect_err("invalid source_ip")
            .to_string()
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().expect("test address"))
    }

    fn holds(value: Value, client: &str) -> bool {
        matcher(value).matches(ip(client))
    }

    #[test]
    fn single_ipv4_address() {
        assert!(holds(json!("192.0.2.7"), "192.0.2.7"));
        assert!(!holds(json!("192.0.2.7"), "192.0.2.8"));
        assert!(!holds(json!("192.0.2.7"), "2001:db8::7"));
    }

    #[test]
    fn ipv4_ranges_and_their_edges() {
        let ten = json!("10.0.0.0/8");
        assert!(holds(ten.clone(), "10.0.0.0"));
        assert!(holds(ten.clone(), "10.255.255.255"));
        assert!(!holds(ten.clone(), "9.255.255.255"));
        assert!(!holds(ten.clone(), "11.0.0.0"));
        let host = json!("192.0.2.7/32");
        assert!(holds(host.clone(), "192.0.2.7"));
        assert!(!holds(host, "192.0.2.6"));
        let all = json!("0.0.0.0/0");
        assert!(holds(all.clone(), "0.0.0.0"));
        assert!(holds(all.clone(), "255.255.255.255"));
        assert!(
            !holds(all, "::1"),
            "0.0.0.0/0 is every IPv4 client, not IPv6 ones"
        );
        let odd = json!("192.0.2.128/25");
        assert!(holds(odd.clone(), "192.0.2.128"));
        assert!(holds(odd.clone(), "192.0.2.255"));
        assert!(!holds(odd, "192.0.2.127"));
        let one_bit = json!("128.0.0.0/1");
        assert!(holds(one_bit.clone(), "128.0.0.0"));
        assert!(!holds(one_bit, "127.255.255.255"));
    }

    #[test]
    fn ipv6_ranges_and_their_edges() {
        let doc = json!("2001:db8::/32");
        assert!(holds(doc.clone(), "2001:db8::"));
        assert!(holds(doc.clone(), "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"));
        assert!(!holds(doc.clone(), "2001:db9::"));
        assert!(!holds(doc, "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"));
        let host = json!("2001:db8::7/128");
        assert!(holds(host.clone(), "2001:db8::7"));
        assert!(!holds(host, "2001:db8::6"));
        assert!(holds(json!("::1"), "::1"));
        let all = json!("::/0");
        assert!(holds(all.clone(), "::"));
        assert!(holds(
            all.clone(),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
        ));
        assert!(
            !holds(all.clone(), "192.0.2.7"),
            "::/0 is every IPv6 client"
        );
        assert!(
            !holds(all, "::ffff:192.0.2.7"),
            "an IPv4-mapped client is IPv4"
        );
        let last_bit = json!("2001:db8::/127");
        assert!(holds(last_bit.clone(), "2001:db8::1"));
        assert!(!holds(last_bit, "2001:db8::2"));
    }

    #[test]
    fn ipv4_mapped_addresses_are_ipv4() {
        // A mapped client matches IPv4 entries...
        assert!(holds(json!("192.0.2.7"), "::ffff:192.0.2.7"));
        assert!(holds(json!("10.0.0.0/8"), "::ffff:10.1.2.3"));
        assert!(!holds(json!("10.0.0.0/8"), "::ffff:11.1.2.3"));
        // ...and mapped entries are IPv4 entries.
        assert!(holds(json!("::ffff:192.0.2.7"), "192.0.2.7"));
        assert!(holds(json!("::ffff:10.0.0.0/104"), "10.200.0.1"));
        assert!(!holds(json!("::ffff:10.0.0.0/104"), "11.0.0.1"));
        assert!(holds(json!("::ffff:0.0.0.0/96"), "203.0.113.9"));
        assert!(holds(json!("::ffff:192.0.2.7/128"), "::ffff:192.0.2.7"));
        // The IPv4-compatible form (deprecated) is not mapped: it stays IPv6.
        assert!(!holds(json!("::192.0.2.7"), "192.0.2.7"));
    }

    #[test]
    fn a_list_is_any_of_its_entries() {
        let list = json!(["192.0.2.7", "10.0.0.0/8", "2001:db8::/32"]);
        assert!(holds(list.clone(), "192.0.2.7"));
        assert!(holds(list.clone(), "10.9.8.7"));
        assert!(holds(list.clone(), "2001:db8::1"));
        assert!(!holds(list.clone(), "192.0.2.8"));
        assert!(!holds(list, "::1"));
    }

    #[test]
    fn no_client_address_is_false() {
        assert!(!matcher(json!("0.0.0.0/0")).matches(None));
        assert!(!matcher(json!(["0.0.0.0/0", "::/0"])).matches(None));
    }

    #[test]
    fn client_address_from_the_proxy() {
        assert_eq!(source_ip_from_address("192.0.2.7:53211"), ip("192.0.2.7"));
        assert_eq!(
            source_ip_from_address("[2001:db8::7]:53211"),
            ip("2001:db8::7")
        );
        assert_eq!(
            source_ip_from_address("[::ffff:192.0.2.7]:443"),
            ip("192.0.2.7")
        );
        assert_eq!(source_ip_from_address("192.0.2.7"), ip("192.0.2.7"));
        assert_eq!(source_ip_from_address("::1"), ip("::1"));
        assert_eq!(source_ip_from_address(""), None);
        assert_eq!(source_ip_from_address("/var/run/envoy.sock"), None);
        assert_eq!(source_ip_from_address("192.0.2.7:"), None);
        assert_eq!(source_ip_from_address("2001:db8::7:53211:1"), None);
        assert_eq!(source_ip_from_address("host.example:80"), None);
        assert_eq!(source_ip_from_address("192.0.2.7:65536"), None);
        assert_eq!(source_ip_from_address("192.0.2.7:+80"), None);
        assert_eq!(source_ip_from_address("192.0.2.7:http"), None);
        assert_eq!(source_ip_from_address("[192.0.2.7]:80"), None);
        assert_eq!(source_ip_from_address("[2001:db8::7]"), None);
        assert_eq!(source_ip_from_address("[2001:db8::7]:"), None);
        assert_eq!(source_ip_from_address("[2001:db8::7]80"), None);
        assert_eq!(source_ip_from_address("[2001:db8::7]:80:80"), None);
        assert_eq!(
            source_ip_from_address("2001:db8::7:80"),
            ip("2001:db8::7:80")
        );
        assert_eq!(source_ip_from_address("::ffff:10.0.0.1"), ip("10.0.0.1"));
        assert_eq!(source_ip_from_address("0.0.0.0:0"), ip("0.0.0.0"));
    }

    #[test]
    fn bad_entries_are_refused_at_their_path() {
        let malformed = |text: &str| {
            format!(
                "{text:?} is not an IP address or CIDR range (such as \"192.0.2.7\", \
                 \"10.0.0.0/8\" or \"2001:db8::/32\")"
            )
        };
        for text in [
            "",
            "10.0.0.256",
            "10.0.0",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0.0/08",
            "10.0.0.0/8/8",
            "10.0.0.0/ 8",
            " 10.0.0.1",
            "2001:db8::/129",
            "2001:db8::/1000",
            "fe80::1%eth0",
            "[::1]",
            "localhost",
            "010.0.0.1",
            "::ffff:10.0.0.0/200",
        ] {
            assert_eq!(
                error(json!(text)),
                format!("policy: {}", malformed(text)),
                "{text:?}"
            );
        }
        assert_eq!(
            error(json!(["10.0.0.0/8", "10.0.0.0/33"])),
            format!("policy[1]: {}", malformed("10.0.0.0/33"))
        );
    }

    #[test]
    fn host_bits_are_refused() {
        let host_bits = |text: &str| {
            format!(
                "{text:?} has host bits set: give the first address of the range (as in \
                 \"10.0.0.0/8\") or a single address without a prefix length"
            )
        };
        assert_eq!(
            error(json!("10.1.2.3/8")),
            format!("policy: {}", host_bits("10.1.2.3/8"))
        );
        assert_eq!(
            error(json!(["::1", "2001:db8::1/32"])),
            format!("policy[1]: {}", host_bits("2001:db8::1/32"))
        );
        // Mapped: 10.1.0.0/8 after the mapping.
        assert_eq!(
            error(json!("::ffff:10.1.0.0/104")),
            format!("policy: {}", host_bits("::ffff:10.1.0.0/104"))
        );
        assert_eq!(
            error(json!("0.0.0.1/0")),
            format!("policy: {}", host_bits("0.0.0.1/0"))
        );
        assert_eq!(
            error(json!("2001:db8::/0")),
            format!("policy: {}", host_bits("2001:db8::/0"))
        );
        assert!(matcher(json!("10.0.0.0/7")).matches(ip("11.255.0.1")));
    }

    #[test]
    fn shape_errors() {
        assert_eq!(
            error(json!([])),
            "policy: empty list: give at least one IP address or CIDR range (an empty list would \
             never match)"
        );
        assert_eq!(
            error(json!(10)),
            "policy: expected an IP address or CIDR range, or a list of them, found a number"
        );
        assert_eq!(
            error(json!({"is": "10.0.0.0/8"})),
            "policy: expected an IP address or CIDR range, or a list of them, found an object"
        );
        assert_eq!(
            error(json!(["10.0.0.0/8", ["::1"]])),
            "policy[1]: expected a string, found a list"
        );
    }

    #[test]
    fn prefix_lengths() {
        assert_eq!(parse_prefix("0"), Some(0));
        assert_eq!(parse_prefix("32"), Some(32));
        assert_eq!(parse_prefix("128"), Some(128));
        assert_eq!(parse_prefix("129"), None);
        assert_eq!(parse_prefix("00"), None);
        assert_eq!(parse_prefix("0128"), None);
        assert_eq!(parse_prefix(""), None);
        assert_eq!(parse_prefix("99999999999999999999"), None);
        assert_eq!(mask_v4(0), Some(0));
        assert_eq!(mask_v4(32), Some(u32::MAX));
        assert_eq!(mask_v4(33), None);
        assert_eq!(mask_v6(128), Some(u128::MAX));
        assert_eq!(mask_v6(129), None);
    }
}
