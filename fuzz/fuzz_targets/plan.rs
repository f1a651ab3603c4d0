//! The header plan (upstream::plan): any request headers in any letter case and
//! repetition, any identity. After Envoy applies the plan, the upstream sees exactly one
//! Authorization (the service account's), no Proxy-Authorization, no session cookie, and
//! impersonation headers that are exactly the identity's.
#![no_main]

use arbitrary::Arbitrary;
use kubegate::identity::Identity;
use kubegate::token::TokenSource;
use kubegate::upstream::{escape_extra_key, plan};
use kubegate_fuzz::{apply_plan, assert_forwarded_is_clean, values, FuzzHeader, SA_TOKEN};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    headers: Vec<FuzzHeader>,
    custom_header: Option<String>,
    cookie: Option<String>,
    user: String,
    groups: Vec<String>,
    uid: Option<String>,
    extra: Vec<(String, Vec<String>)>,
}

fuzz_target!(|input: Input| {
    let mut sources = TokenSource::default_sources();
    if let Some(name) = &input.custom_header {
        sources.push(TokenSource::Header {
            name: name.to_ascii_lowercase(),
            prefix: String::new(),
        });
    }
    let cookie = input.cookie.clone().filter(|c| {
        let c = c.trim();
        !c.is_empty() && !c.contains([';', '=', ' ']) && c == c.trim()
    });
    if let Some(name) = &cookie {
        sources.push(TokenSource::Cookie { name: name.clone() });
    }
    let headers: Vec<(String, String)> = input.headers.iter().map(FuzzHeader::render).collect();
    let identity = Identity {
        user: input.user,
        unprefixed_groups: input.groups.clone(),
        groups: input.groups,
        uid: input.uid,
        extra: input.extra,
    };
    let plan = plan(&headers, &sources, &identity, SA_TOKEN);
    let forwarded = apply_plan(&headers, &plan);
    assert_forwarded_is_clean(&forwarded, &plan, SA_TOKEN, cookie.as_deref());
    assert_eq!(
        values(&forwarded, "impersonate-user"),
        vec![identity.user.as_str()]
    );
    assert_eq!(
        values(&forwarded, "impersonate-group"),
        identity
            .groups
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    assert_eq!(
        values(&forwarded, "impersonate-uid"),
        identity.uid.iter().map(String::as_str).collect::<Vec<_>>()
    );
    for (key, expected) in &identity.extra {
        let name = format!("impersonate-extra-{}", escape_extra_key(key));
        assert!(name.bytes().all(|b| b.is_ascii_graphic() && b != b':'));
        let seen = values(&forwarded, &name);
        for value in expected {
            assert!(seen.contains(&value.as_str()));
        }
    }
    if let Some(name) = input.custom_header {
        let name = name.to_ascii_lowercase();
        if !name.starts_with("impersonate-") && name != "authorization" {
            assert!(
                values(&forwarded, &name).is_empty(),
                "the token's header passed"
            );
        }
    }
});
