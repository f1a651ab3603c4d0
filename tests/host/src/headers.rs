//! A header map with Envoy's semantics: lower-case names, repeated names kept in
//! order, pseudo-headers (`:method`, ...) always ahead of regular headers.

/// Ordered header entries; values are bytes because the ABI passes bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderMap {
    entries: Vec<(String, Vec<u8>)>,
}

impl HeaderMap {
    pub fn new() -> HeaderMap {
        HeaderMap::default()
    }

    /// Builds a map from pairs in their given order (names are lower-cased).
    pub fn from_pairs<N: AsRef<str>, V: AsRef<[u8]>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.add(name.as_ref(), value.as_ref());
        }
        map
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The first value of `name`: all `get_header_map_value` returns in Envoy.
    pub fn get_first(&self, name: &str) -> Option<&[u8]> {
        let name = name.to_ascii_lowercase();
        self.entries
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
    }

    pub fn get_first_str(&self, name: &str) -> Option<String> {
        self.get_first(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    pub fn get_all(&self, name: &str) -> Vec<&[u8]> {
        let name = name.to_ascii_lowercase();
        self.entries
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|(_, v)| v.as_slice())
            .collect()
    }

    fn pseudo_end(&self) -> usize {
        self.entries
            .iter()
            .take_while(|(n, _)| n.starts_with(':'))
            .count()
    }

    /// Appends one more value (Envoy `addCopy`); pseudo-headers join the front block.
    pub fn add(&mut self, name: &str, value: &[u8]) {
        let name = name.to_ascii_lowercase();
        if name.starts_with(':') {
            let at = self.pseudo_end();
            self.entries.insert(at, (name, value.to_vec()));
        } else {
            self.entries.push((name, value.to_vec()));
        }
    }

    /// Leaves exactly one value (Envoy `setCopy`): the first entry keeps its place.
    pub fn replace(&mut self, name: &str, value: &[u8]) {
        let lower = name.to_ascii_lowercase();
        match self.entries.iter().position(|(n, _)| *n == lower) {
            Some(first) => {
                self.entries[first].1 = value.to_vec();
                let mut index = 0;
                self.entries.retain(|(n, _)| {
                    let keep = index <= first || *n != lower;
                    index += 1;
                    keep
                });
            }
            None => self.add(&lower, value),
        }
    }

    /// Drops every value of `name`.
    pub fn remove(&mut self, name: &str) {
        let name = name.to_ascii_lowercase();
        self.entries.retain(|(n, _)| *n != name);
    }

    /// Replaces the whole map (Envoy `setHeaderMapPairs`).
    pub fn set_all(&mut self, pairs: impl IntoIterator<Item = (String, Vec<u8>)>) {
        self.entries.clear();
        for (name, value) in pairs {
            self.add(&name, &value);
        }
    }

    pub fn entries(&self) -> &[(String, Vec<u8>)] {
        &self.entries
    }

    /// The pairs as text (invalid UTF-8 replaced), for the public API.
    pub fn to_string_pairs(&self) -> Vec<(String, String)> {
        self.entries
            .iter()
            .map(|(n, v)| (n.clone(), String::from_utf8_lossy(v).into_owned()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(map: &HeaderMap) -> Vec<&str> {
        map.entries().iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn first_value_and_all_values() {
        let map = HeaderMap::from_pairs([("X-Dup", "a"), ("other", "o"), ("x-dup", "b")]);
        assert_eq!(map.get_first("x-dup"), Some(&b"a"[..]));
        assert_eq!(map.get_all("X-DUP"), vec![&b"a"[..], &b"b"[..]]);
        assert_eq!(map.get_first("missing"), None);
    }

    #[test]
    fn replace_leaves_one_value_in_place() {
        let mut map = HeaderMap::from_pairs([("a", "1"), ("x", "1"), ("b", "2"), ("x", "2")]);
        map.replace("X", b"new");
        assert_eq!(names(&map), vec!["a", "x", "b"]);
        assert_eq!(map.get_all("x"), vec![&b"new"[..]]);
        map.replace("fresh", b"v");
        assert_eq!(names(&map), vec!["a", "x", "b", "fresh"]);
    }

    #[test]
    fn remove_drops_every_value_and_pseudo_headers_stay_first() {
        let mut map = HeaderMap::from_pairs([(":method", "GET"), ("x", "1"), ("x", "2")]);
        map.add(":path", b"/");
        map.remove("x");
        assert_eq!(names(&map), vec![":method", ":path"]);
        map.add("y", b"1");
        map.add(":authority", b"h");
        assert_eq!(names(&map), vec![":method", ":path", ":authority", "y"]);
    }
}
