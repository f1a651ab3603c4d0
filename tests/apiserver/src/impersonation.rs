//! The impersonation filter (`endpoints/filters/impersonation.go`).
//!
//! `Impersonate-User` (first value), one group per `Impersonate-Group` value (headers are
//! never split on commas), `Impersonate-Uid` (first value) and `Impersonate-Extra-<key>`
//! (the key lower-cased, then percent-decoded; a malformed escape keeps the raw key).
//! Groups, uid or extras without a user are a 400. Each requested item is authorized for
//! the caller with verb `impersonate`: `users` (or `serviceaccounts` in the account's
//! namespace for `system:serviceaccount:NS:NAME`), `groups`, `userextras/<key>` and `uids`
//! (the last two in `authentication.k8s.io`); the first refusal is a 403. The new user
//! gets `system:authenticated` unless it already has it or `system:unauthenticated`
//! (`system:unauthenticated` for `system:anonymous`), and a service account without
//! explicit groups gets its fixed groups.

use std::collections::BTreeMap;

use hyper::HeaderMap;

use crate::identity::{
    service_account_groups, service_account_username, split_service_account_username, UserInfo,
    ALL_AUTHENTICATED, ALL_UNAUTHENTICATED, ANONYMOUS,
};
use crate::rbac::{Attributes, Rbac};
use crate::requestinfo::percent_decode;
use crate::status::Status;

const EXTRA_PREFIX: &str = "impersonate-extra-";
const AUTHENTICATION_GROUP: &str = "authentication.k8s.io";

/// One thing the caller asks to act as (`corev1.ObjectReference` in the API server).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImpersonationRequest {
    User(String),
    ServiceAccount { namespace: String, name: String },
    Group(String),
    Extra { key: String, value: String },
    Uid(String),
}

impl ImpersonationRequest {
    /// The authorization check for this item, made for `caller`.
    fn attributes(&self, caller: &UserInfo) -> Attributes {
        let (api_group, resource, subresource, namespace, name) = match self {
            ImpersonationRequest::User(name) => ("", "users", "", "", name.as_str()),
            ImpersonationRequest::ServiceAccount { namespace, name } => {
                ("", "serviceaccounts", "", namespace.as_str(), name.as_str())
            }
            ImpersonationRequest::Group(name) => ("", "groups", "", "", name.as_str()),
            ImpersonationRequest::Extra { key, value } => (
                AUTHENTICATION_GROUP,
                "userextras",
                key.as_str(),
                "",
                value.as_str(),
            ),
            ImpersonationRequest::Uid(uid) => (AUTHENTICATION_GROUP, "uids", "", "", uid.as_str()),
        };
        Attributes {
            user: caller.clone(),
            verb: "impersonate".to_string(),
            resource_request: true,
            api_group: api_group.to_string(),
            api_version: "v1".to_string(),
            namespace: namespace.to_string(),
            resource: resource.to_string(),
            subresource: subresource.to_string(),
            name: name.to_string(),
            path: String::new(),
        }
    }

    /// Go's `%v` of the ObjectReference the API server builds, for the 400's message:
    /// `{Kind Namespace Name UID APIVersion ResourceVersion FieldPath}`.
    fn go_format(&self) -> String {
        let (kind, namespace, name, api_version, field_path) = match self {
            ImpersonationRequest::User(name) => ("User", "", name.as_str(), "", ""),
            ImpersonationRequest::ServiceAccount { namespace, name } => {
                ("ServiceAccount", namespace.as_str(), name.as_str(), "", "")
            }
            ImpersonationRequest::Group(name) => ("Group", "", name.as_str(), "", ""),
            ImpersonationRequest::Extra { key, value } => (
                "UserExtra",
                "",
                value.as_str(),
                "authentication.k8s.io/v1",
                key.as_str(),
            ),
            ImpersonationRequest::Uid(uid) => {
                ("UID", "", uid.as_str(), "authentication.k8s.io/v1", "")
            }
        };
        format!("{{{kind} {namespace} {name}  {api_version}  {field_path}}}")
    }
}

/// What the impersonation headers of a request amount to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Impersonation {
    /// No impersonation header: the caller acts as itself.
    None,
    /// The caller may act as this user.
    Acting(UserInfo),
    /// The API server's refusal (400 or 403).
    Refused(Status),
}

/// The impersonation requests in `headers`, in the order the API server checks them (user,
/// groups, extras by key, uid), or the 400 message when there is no user to act as.
pub fn requests(headers: &HeaderMap) -> Result<Vec<ImpersonationRequest>, String> {
    let mut requests = Vec::new();
    let user = first_value(headers, "impersonate-user");
    let has_user = !user.is_empty();
    if has_user {
        match split_service_account_username(&user) {
            Some((namespace, name)) => {
                requests.push(ImpersonationRequest::ServiceAccount { namespace, name })
            }
            None => requests.push(ImpersonationRequest::User(user)),
        }
    }
    let mut has_groups = false;
    for group in headers.get_all("impersonate-group") {
        has_groups = true;
        requests.push(ImpersonationRequest::Group(lossy(group.as_bytes())));
    }
    let mut extras: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        if let Some(encoded) = name.as_str().strip_prefix(EXTRA_PREFIX) {
            // hyper lower-cases header names, as the API server lower-cases the key.
            let key = percent_decode(encoded, false).unwrap_or_else(|| encoded.to_string());
            extras.entry(key).or_default().push(lossy(value.as_bytes()));
        }
    }
    let has_extra = !extras.is_empty();
    for (key, values) in extras {
        for value in values {
            requests.push(ImpersonationRequest::Extra {
                key: key.clone(),
                value,
            });
        }
    }
    let uid = first_value(headers, "impersonate-uid");
    let has_uid = !uid.is_empty();
    if has_uid {
        requests.push(ImpersonationRequest::Uid(uid));
    }
    if (has_groups || has_extra || has_uid) && !has_user {
        let listed: Vec<String> = requests
            .iter()
            .map(ImpersonationRequest::go_format)
            .collect();
        return Err(format!(
            "requested [{}] without impersonating a user",
            listed.join(" ")
        ));
    }
    Ok(requests)
}

/// Applies the impersonation filter for `caller`.
pub fn impersonate(caller: &UserInfo, headers: &HeaderMap, rbac: &Rbac) -> Impersonation {
    let requests = match requests(headers) {
        Ok(requests) => requests,
        Err(message) => return Impersonation::Refused(Status::bad_request(message)),
    };
    if requests.is_empty() {
        return Impersonation::None;
    }
    let groups_specified = headers.contains_key("impersonate-group");
    let mut user = UserInfo::default();
    for request in &requests {
        let attributes = request.attributes(caller);
        let decision = rbac.authorize(&attributes);
        if !decision.allowed {
            return Impersonation::Refused(Status::forbidden(&attributes, &decision.reason));
        }
        match request {
            ImpersonationRequest::User(name) => user.username = name.clone(),
            ImpersonationRequest::ServiceAccount { namespace, name } => {
                user.username = service_account_username(namespace, name);
                if !groups_specified {
                    user.groups = service_account_groups(namespace);
                }
            }
            ImpersonationRequest::Group(group) => user.groups.push(group.clone()),
            ImpersonationRequest::Extra { key, value } => user
                .extra
                .entry(key.clone())
                .or_default()
                .push(value.clone()),
            ImpersonationRequest::Uid(uid) => user.uid = uid.clone(),
        }
    }
    if user.username != ANONYMOUS {
        if !user
            .groups
            .iter()
            .any(|group| group == ALL_AUTHENTICATED || group == ALL_UNAUTHENTICATED)
        {
            user.groups.push(ALL_AUTHENTICATED.to_string());
        }
    } else if !user.groups.iter().any(|group| group == ALL_UNAUTHENTICATED) {
        user.groups.push(ALL_UNAUTHENTICATED.to_string());
    }
    Impersonation::Acting(user)
}

fn first_value(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .map(|value| lossy(value.as_bytes()))
        .unwrap_or_default()
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
