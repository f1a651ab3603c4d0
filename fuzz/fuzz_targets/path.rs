//! Path and method judging (kubegate::path): any target. Never panics; an accepted path is
//! absolute, decoded, free of dot and empty segments, encoded delimiters and `%`, and
//! judging it again gives the same path.
#![no_main]

use kubegate::path::{check_method, policy_path};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&str, &str)| {
    let (method, target) = input;
    if check_method(method).is_ok() {
        assert!(!method.is_empty());
        assert!(!method.bytes().any(|b| b.is_ascii_lowercase() || b <= b' '));
    }
    let Ok(path) = policy_path(target) else {
        return;
    };
    assert!(path.starts_with('/'));
    assert!(!path.contains("//"));
    assert!(!path.contains(['%', '?', '#', '\\']));
    assert!(!path.bytes().any(|b| b < 0x20 || b == 0x7f));
    assert!(path.as_ref() == "/" || !path.ends_with('/'));
    for segment in path.split('/') {
        let bare = segment.split(';').next().unwrap_or_default();
        assert!(bare != "." && bare != "..", "{target:?} -> {path:?}");
    }
    // A decoded space would need its escape back to be a valid target again.
    if !path.contains(' ') {
        assert_eq!(policy_path(&path).as_deref(), Ok(path.as_ref()));
    }
});
