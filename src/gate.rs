//! One request's decision, as a pure function of (configuration, request headers, clock):
//! route -> token -> verify -> identity -> policy -> header plan. The proxy-wasm glue
//! reads the headers, calls `decide`, and applies the result.

use crate::authn::{self, Authenticator, AuthnError};
use crate::config::{ClientImpersonation, Config};
use crate::jwt;
use crate::policy::{Facts, RequestContext};
use crate::request_info::{self, RequestInfo};
use crate::status::Refusal;
use crate::token;
use crate::token_cache::VerifiedTokenCache;
use crate::upstream::{self, HeaderPlan};
use crate::Claims;
use std::net::IpAddr;
use std::rc::Rc;

/// What the filter does with the request.
#[derive(Debug)]
pub enum Outcome {
    /// Apply the plan and let the proxy forward the request.
    Allow(HeaderPlan),
    /// Answer locally; nothing is forwarded.
    Refuse(Refusal),
}

/// The class of a decision: one counter each, and the `decision=` field of the log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Allowed,
    Unauthenticated,
    Forbidden,
    NotFound,
    /// Refused because it could not be forwarded safely (500): routed to a cluster the
    /// route is not bound to, or a header rewrite the proxy did not apply.
    Internal,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Allowed => "allowed",
            Kind::Unauthenticated => "unauthenticated",
            Kind::Forbidden => "forbidden",
            Kind::NotFound => "not_found",
            Kind::Internal => "internal_error",
        }
    }
}

/// Everything the decision log line says. Never holds a token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionLog {
    pub kind: Kind,
    pub user: Option<String>,
    /// The groups impersonated for the user (after their prefix); empty without a user.
    pub groups: Vec<String>,
    pub method: String,
    pub path: String,
    pub route: Option<String>,
    pub reason: String,
}

impl std::fmt::Display for DecisionLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Debug formatting quotes and escapes client-controlled text, so a path with a
        // newline cannot forge a second log line.
        write!(
            f,
            "decision={} user={:?} method={:?} path={:?} route={:?} reason={:?}",
            self.kind.as_str(),
            self.user.as_deref().unwrap_or("-"),
            self.method,
            self.path,
            self.route.as_deref().unwrap_or("-"),
            self.reason
        )
    }
}

#[derive(Debug)]
pub struct Decision {
    pub outcome: Outcome,
    pub log: DecisionLog,
    /// Whether the token's verification came from the cache (`None`: no token checked).
    pub cache_hit: Option<bool>,
    /// The index (in `Config::authenticators`) of the authenticator whose keys lack the
    /// key the token names (unknown kid, or no key for its alg): a refreshed remote key
    /// set of that authenticator might accept it, so the glue may wait for one.
    pub missing_key: Option<usize>,
}

/// Why a token did not verify: the JWT layer's reasons, or no authenticator for it.
enum AuthFailure {
    Jwt(jwt::JwtError),
    /// Verification with the keys of the authenticator at this index failed.
    Verify(Option<usize>, jwt::JwtError),
    Authn(AuthnError),
}

/// The request's pseudo-header, by exact lower-case name (the proxy lower-cases them).
fn pseudo<'h>(headers: &'h [(String, String)], name: &str) -> &'h str {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// Where the proxy will send the request: Envoy's `xds.cluster_name`, which the router's
/// route match fixes before the filter chain runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upstream<'a> {
    /// The cluster the proxy routes the request to.
    Cluster(&'a str),
    /// The proxy did not say (the property could not be read): a route with
    /// `upstream_clusters` refuses the request.
    Unknown,
    /// Not judged by a proxy (native callers, benchmarks, fuzzing): `upstream_clusters`
    /// is not checked. The filter never passes this.
    Unchecked,
}

/// Judges one request whose client address is unknown (a `source_ip` criterion is then
/// false), without checking `upstream_clusters`. `cache` holds this VM's verified tokens.
pub fn decide(
    config: &Config,
    cache: &mut VerifiedTokenCache,
    headers: &[(String, String)],
    now_unix_seconds: u64,
) -> Decision {
    decide_from(config, cache, headers, None, now_unix_seconds)
}

/// Judges one request from `source_ip` (the proxy's `source.address`), without checking
/// `upstream_clusters`.
pub fn decide_from(
    config: &Config,
    cache: &mut VerifiedTokenCache,
    headers: &[(String, String)],
    source_ip: Option<IpAddr>,
    now_unix_seconds: u64,
) -> Decision {
    decide_at(
        config,
        cache,
        headers,
        source_ip,
        Upstream::Unchecked,
        now_unix_seconds,
    )
}

/// The message of a request refused for carrying `Impersonate-*` headers. It names no
/// header or value the client sent.
pub const CLIENT_IMPERSONATION_MESSAGE: &str = "kubegate: this gateway does not accept Impersonate-* headers: it already impersonates you as yourself; remove --as, --as-group and --as-uid from the kubectl command (and as, as-groups, as-uid, as-user-extra from the kubeconfig user)";

/// Judges one request from `source_ip` that the proxy will send to `upstream`: what the
/// filter calls.
pub fn decide_at(
    config: &Config,
    cache: &mut VerifiedTokenCache,
    headers: &[(String, String)],
    source_ip: Option<IpAddr>,
    upstream: Upstream<'_>,
    now_unix_seconds: u64,
) -> Decision {
    let method = pseudo(headers, ":method");
    let full_path = pseudo(headers, ":path");
    let path = full_path.split('?').next().unwrap_or_default();
    let authority = pseudo(headers, ":authority");
    let mut log = DecisionLog {
        kind: Kind::NotFound,
        user: None,
        groups: Vec::new(),
        method: method.to_string(),
        path: path.to_string(),
        route: None,
        reason: String::new(),
    };
    // Only chooses the refusal's format, so the first of several is as good as any.
    let accept = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("accept"))
        .map_or("", |(_, v)| v.as_str());
    let refuse = |mut log: DecisionLog, kind: Kind, refusal: Refusal| {
        let refusal = refusal.as_text_for(full_path, accept);
        log.kind = kind;
        log.reason = refusal.message.clone();
        Decision {
            outcome: Outcome::Refuse(refusal),
            log,
            cache_hit: None,
            missing_key: None,
        }
    };
    let unauthenticated = |log: DecisionLog, token_present: bool, message: String| {
        refuse(
            log,
            Kind::Unauthenticated,
            Refusal::unauthorized(&config.realm, token_present, message),
        )
    };

    let Some(route) = config
        .route_table
        .find(authority)
        .and_then(|i| config.routes.get(i))
    else {
        let host = crate::route::normalize_host(authority);
        return refuse(
            log,
            Kind::NotFound,
            Refusal::not_found(format!("kubegate: no route for host {host:?}")),
        );
    };
    log.route = Some(route.name.clone());
    // The service-account token goes only to the route's own API server: a request the
    // proxy routes to any other cluster (another Envoy route for the same host, a catch-all,
    // the identity provider's cluster) is refused before anything is added to it.
    if let Some(clusters) = &route.upstream_clusters {
        let misrouted = match upstream {
            Upstream::Unchecked => None,
            Upstream::Cluster(cluster) if clusters.iter().any(|c| c == cluster) => None,
            Upstream::Cluster(cluster) => Some(format!(
                "the proxy routes it to cluster {cluster:?}, which is not in the route's upstream_clusters"
            )),
            Upstream::Unknown => Some(
                "the proxy did not say which cluster it routes it to (xds.cluster_name), and the route has upstream_clusters"
                    .to_string(),
            ),
        };
        if let Some(reason) = misrouted {
            let mut decision = refuse(
                log,
                Kind::Internal,
                Refusal::internal(
                    "kubegate: this request is not routed to the API server of its route, so it is not forwarded; the gateway's log says why"
                        .to_string(),
                ),
            );
            decision.log.reason = reason;
            return decision;
        }
    }
    // A client's own impersonation (kubectl --as) is refused before any token work: kubegate
    // impersonates the verified user itself, and a request asking for someone else is a
    // mistake or an attack either way (kube-oidc-proxy refuses it too). "strip" removes the
    // headers instead and goes on (Pomerium's behaviour); the plan removes them either way.
    if route.client_impersonation == ClientImpersonation::Refuse
        && upstream::has_client_impersonation(headers)
    {
        return refuse(
            log,
            Kind::Forbidden,
            Refusal::forbidden(CLIENT_IMPERSONATION_MESSAGE.to_string()),
        );
    }
    // The policy judges the method and path the API server will act on (decoded once, as
    // Go decodes it); a target that parsers could read differently is refused before any
    // token work, since no policy can judge it faithfully (src/path.rs, SECURITY.md).
    let judged_path = match crate::path::check_method(method)
        .and_then(|()| crate::path::policy_path(full_path))
    {
        Ok(judged) => judged,
        Err(e) => {
            return refuse(
                log,
                Kind::Forbidden,
                Refusal::forbidden(format!("kubegate: {method:?} {path:?} refused: {e}")),
            )
        }
    };
    let path: &str = &judged_path;
    // The Kubernetes reading of the request, for policies with kubernetes_* criteria. One
    // the resolver cannot read is refused: those criteria cannot judge it, and a `not`
    // over them must not turn "unknown" into "allowed".
    let kubernetes: Option<RequestInfo> = if route.policy.reads_kubernetes() {
        match request_info::resolve(method, full_path) {
            Ok(info) => Some(info),
            Err(e) => {
                return refuse(
                    log,
                    Kind::Forbidden,
                    Refusal::forbidden(format!("kubegate: {method:?} {path:?} refused: {e}")),
                )
            }
        }
    } else {
        None
    };

    let found =
        match token::find(&config.token_sources, headers) {
            Ok(Some(found)) => found,
            Ok(None) => return unauthenticated(
                log,
                false,
                "kubegate: no session token in the request (send Authorization: Bearer <token>)"
                    .to_string(),
            ),
            Err(e) => return unauthenticated(log, true, format!("kubegate: {e}")),
        };
    let token = &found.token;

    // The token's `iss` picks the one authenticator whose keys and rules judge it. On a
    // cache hit the claims were verified by that same authenticator (the choice is a
    // function of the claims); the claim rules (times above all) still run every time.
    let (verified, cache_hit) = match cache.get(token, now_unix_seconds) {
        Some(claims) => (
            authn::for_issuer(&config.authenticators, &claims)
                .map_err(AuthFailure::Authn)
                .and_then(|authenticator| {
                    jwt::check_claims(&claims, &authenticator.claim_rules, now_unix_seconds)
                        .map_err(AuthFailure::Jwt)
                        .map(|()| (authenticator, claims))
                }),
            true,
        ),
        None => (
            jwt::unverified_claims(token, config.max_token_bytes)
                .map_err(AuthFailure::Jwt)
                .and_then(|unverified| {
                    authn::for_issuer(&config.authenticators, &unverified)
                        .map_err(AuthFailure::Authn)
                })
                .and_then(|authenticator| {
                    let claims = jwt::verify(
                        token,
                        &authenticator.keys,
                        &authenticator.claim_rules,
                        now_unix_seconds,
                    )
                    .map_err(|e| {
                        let index = config
                            .authenticators
                            .iter()
                            .position(|a| std::ptr::eq(a, authenticator));
                        AuthFailure::Verify(index, e)
                    })?;
                    let claims = Rc::new(claims);
                    cache.insert(token, Rc::clone(&claims), now_unix_seconds);
                    Ok((authenticator, claims))
                }),
            false,
        ),
    };
    let (authenticator, claims): (&Authenticator, Rc<Claims>) = match verified {
        Ok(verified) => verified,
        Err(failure) => {
            let missing_key = match &failure {
                AuthFailure::Verify(
                    index,
                    jwt::JwtError::UnknownKid(_) | jwt::JwtError::NoKeyForAlg(_),
                ) => *index,
                _ => None,
            };
            let message = match failure {
                AuthFailure::Jwt(e) | AuthFailure::Verify(_, e) => {
                    format!("kubegate: invalid token: {e}")
                }
                AuthFailure::Authn(e) => format!("kubegate: invalid token: {e}"),
            };
            let mut decision = unauthenticated(log, true, message);
            decision.cache_hit = Some(cache_hit);
            decision.missing_key = missing_key;
            return decision;
        }
    };
    let with_cache = |mut decision: Decision| {
        decision.cache_hit = Some(cache_hit);
        decision
    };
    // A token is taken only from where its own authenticator reads tokens.
    if !found.came_from_any(&authenticator.sources) {
        let e = AuthnError::WrongSource(authenticator.issuer.clone());
        return with_cache(unauthenticated(log, true, format!("kubegate: {e}")));
    }

    let identity = match authenticator.authenticate(&claims) {
        Ok(identity) => identity,
        Err(e) if e.is_forbidden() => {
            return with_cache(refuse(
                log,
                Kind::Forbidden,
                Refusal::forbidden(format!("kubegate: {e}")),
            ))
        }
        Err(e) => {
            return with_cache(unauthenticated(
                log,
                true,
                format!("kubegate: invalid token: {e}"),
            ))
        }
    };
    log.user = Some(identity.user.clone());
    log.groups = identity.groups.clone();
    // The configured reserved prefixes (`system:` always among them), on the names as the
    // API server will see them.
    if let Err(e) = config.reserved.check(&identity) {
        return with_cache(refuse(
            log,
            Kind::Forbidden,
            Refusal::forbidden(format!("kubegate: {e}")),
        ));
    }

    // Policy matches the raw claim values; prefixes are a Kubernetes naming concern.
    let facts = Facts {
        claims: Some(&claims),
        user_id: claims.get("sub").and_then(|v| v.as_str()),
        email: claims.get("email").and_then(|v| v.as_str()),
        groups: &identity.unprefixed_groups,
        method,
        path,
    };
    let context = RequestContext {
        kubernetes: kubernetes.as_ref(),
        protocol_upgrade: crate::policy::asks_for_protocol_upgrade(method, headers),
        source_ip,
        now_unix_seconds,
    };
    let verdict = route.policy.evaluate_with(&facts, &context);
    if !verdict.allowed {
        let message = format!(
            "kubegate: user {:?} is not allowed to {} {} through {}: {}",
            identity.user, method, path, route.name, verdict.reason
        );
        let mut decision = refuse(log, Kind::Forbidden, Refusal::forbidden(message));
        decision.log.reason = verdict.reason.to_string();
        return with_cache(decision);
    }

    let plan = upstream::plan_with(
        headers,
        &config.token_sources,
        &config.strip_request_headers,
        &identity,
        route.service_account_token(),
    );
    log.kind = Kind::Allowed;
    log.reason = verdict.reason.to_string();
    Decision {
        outcome: Outcome::Allow(plan),
        log,
        cache_hit: Some(cache_hit),
        missing_key: None,
    }
}
