//! The ABI's serialization of header maps: a little-endian u32 count, then a
//! (name length, value length) u32 pair per entry, then each name and value
//! followed by a NUL byte (proxy-wasm-cpp-host `marshalPairs`/`toPairs`).

/// Serializes pairs; an empty map is the empty byte string (Envoy copies "").
pub(crate) fn serialize(pairs: &[(String, Vec<u8>)]) -> Vec<u8> {
    if pairs.is_empty() {
        return Vec::new();
    }
    let size = 4 + pairs
        .iter()
        .map(|(n, v)| 8 + n.len() + v.len() + 2)
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (name, value) in pairs {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (name, value) in pairs {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    out
}

/// Parses serialized pairs. Unlike the C++ host, which trusts the lengths, a
/// truncated or inconsistent buffer is refused (`None`) instead of over-read.
pub(crate) fn deserialize(bytes: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    let header_end = 4usize.checked_add(count.checked_mul(8)?)?;
    if header_end > bytes.len() {
        return None;
    }
    let mut lengths = Vec::with_capacity(count);
    for i in 0..count {
        let at = 4 + i * 8;
        let name = u32::from_le_bytes(bytes[at..at + 4].try_into().ok()?) as usize;
        let value = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().ok()?) as usize;
        lengths.push((name, value));
    }
    let mut pairs = Vec::with_capacity(count);
    let mut at = header_end;
    for (name_len, value_len) in lengths {
        let name = bytes.get(at..at.checked_add(name_len)?)?.to_vec();
        at = at.checked_add(name_len)?.checked_add(1)?;
        let value = bytes.get(at..at.checked_add(value_len)?)?.to_vec();
        at = at.checked_add(value_len)?.checked_add(1)?;
        pairs.push((name, value));
    }
    // The last terminator may be missing in hand-made buffers; anything past it is ignored.
    if at > bytes.len() + 1 {
        return None;
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_order_and_duplicates() {
        let pairs = vec![
            (":method".to_string(), b"GET".to_vec()),
            ("x-dup".to_string(), b"a".to_vec()),
            ("x-dup".to_string(), b"".to_vec()),
        ];
        let bytes = serialize(&pairs);
        assert_eq!(&bytes[0..4], &3u32.to_le_bytes());
        let back = deserialize(&bytes).expect("parses");
        let back: Vec<(String, Vec<u8>)> = back
            .into_iter()
            .map(|(n, v)| (String::from_utf8(n).unwrap(), v))
            .collect();
        assert_eq!(back, pairs);
    }

    #[test]
    fn matches_the_sdk_layout() {
        // The Rust SDK's own test vector for one pair.
        let bytes = serialize(&[("a".to_string(), b"bc".to_vec())]);
        assert_eq!(
            bytes,
            vec![1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, b'a', 0, b'b', b'c', 0]
        );
    }

    #[test]
    fn refuses_lengths_past_the_buffer() {
        let mut bytes = serialize(&[("name".to_string(), b"value".to_vec())]);
        bytes[8] = 200; // value length far beyond the buffer
        assert!(deserialize(&bytes).is_none());
        assert!(deserialize(&[5, 0, 0, 0, 1]).is_none());
        assert!(deserialize(&[0xff, 0xff, 0xff, 0xff]).is_none());
        assert_eq!(deserialize(&[]), Some(vec![]));
    }
}
