//! The RBAC authorizer, evaluated as `plugin/pkg/auth/authorizer/rbac` does.
//!
//! ClusterRoleBindings grant everywhere; RoleBindings grant only in their own namespace,
//! whether they reference a Role of that namespace or a ClusterRole. A rule allows when
//! its verbs, API groups, resources (`*`, `resource/subresource`, `*/subresource`) and
//! resource names match, or, for requests outside the API, its verbs and non-resource URLs
//! (`*` or a trailing `*` prefix). A binding whose role is missing adds
//! `RBAC: <kind>.rbac.authorization.k8s.io "<name>" not found` to the refusal, as the real
//! authorizer does. ClusterRoles with an `aggregationRule` get the rules of the
//! ClusterRoles their label selectors match, as the controller manager fills them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::identity::UserInfo;
use crate::requestinfo::RequestInfo;

/// The API group of the RBAC kinds.
pub const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// `rbacv1.PolicyRule`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PolicyRule {
    pub verbs: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    #[serde(rename = "nonResourceURLs", skip_serializing_if = "Vec::is_empty")]
    pub non_resource_urls: Vec<String>,
}

/// `rbacv1.Subject`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Subject {
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_group: String,
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// `rbacv1.RoleRef`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoleRef {
    pub api_group: String,
    pub kind: String,
    pub name: String,
}

/// What the authorizer is asked: `authorizer.AttributesRecord`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attributes {
    pub user: UserInfo,
    pub verb: String,
    pub resource_request: bool,
    pub api_group: String,
    pub api_version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// The request path, for non-resource requests.
    pub path: String,
}

impl Attributes {
    /// The attributes of a resolved request made by `user`.
    pub fn for_request(user: &UserInfo, info: &RequestInfo) -> Self {
        Attributes {
            user: user.clone(),
            verb: info.verb.clone(),
            resource_request: info.is_resource_request,
            api_group: info.api_group.clone(),
            api_version: info.api_version.clone(),
            namespace: info.namespace.clone(),
            resource: info.resource.clone(),
            subresource: info.subresource.clone(),
            name: info.name.clone(),
            path: info.path.clone(),
        }
    }
}

/// The authorizer's answer. `reason` explains an allow (`RBAC: allowed by ...`) or lists
/// the missing roles that may explain a refusal (empty otherwise).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

#[derive(Clone, Debug)]
struct ClusterRole {
    labels: BTreeMap<String, String>,
    rules: Vec<PolicyRule>,
    /// `aggregationRule.clusterRoleSelectors[].matchLabels`; `None` for a plain role.
    aggregation_selectors: Option<Vec<BTreeMap<String, String>>>,
}

#[derive(Clone, Debug)]
struct Binding {
    name: String,
    /// Empty for a ClusterRoleBinding.
    namespace: String,
    role_ref: RoleRef,
    subjects: Vec<Subject>,
}

/// The RBAC objects of the cluster, ready to authorize.
#[derive(Clone, Debug, Default)]
pub struct Rbac {
    cluster_roles: BTreeMap<String, ClusterRole>,
    roles: BTreeMap<(String, String), Vec<PolicyRule>>,
    cluster_role_bindings: Vec<Binding>,
    role_bindings: Vec<Binding>,
}

/// The rules that apply to a user in a namespace (for SelfSubjectRulesReview).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RulesReview {
    pub rules: Vec<PolicyRule>,
    /// Missing roles, as `RBAC: ...` would name them.
    pub errors: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ObjectMeta {
    name: String,
    namespace: String,
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct RoleObject {
    metadata: ObjectMeta,
    rules: Option<Vec<PolicyRule>>,
    aggregation_rule: Option<AggregationRule>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct AggregationRule {
    cluster_role_selectors: Vec<LabelSelector>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct LabelSelector {
    match_labels: BTreeMap<String, String>,
    match_expressions: Vec<Value>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct BindingObject {
    metadata: ObjectMeta,
    role_ref: RoleRef,
    subjects: Option<Vec<Subject>>,
}

impl Rbac {
    /// The RBAC kinds among `objects` (other kinds are skipped). Later objects of the same
    /// kind and name replace earlier ones, as an apply would.
    pub fn from_objects<'a>(objects: impl IntoIterator<Item = &'a Value>) -> Result<Rbac, String> {
        let mut rbac = Rbac::default();
        let mut cluster_role_bindings = BTreeMap::new();
        let mut role_bindings = BTreeMap::new();
        for object in objects {
            let api_version = object
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            if !api_version.starts_with(RBAC_GROUP) {
                continue;
            }
            let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
            match kind {
                "ClusterRole" | "Role" => {
                    let role: RoleObject = serde_json::from_value(object.clone())
                        .map_err(|error| format!("{kind}: {error}"))?;
                    if role.metadata.name.is_empty() {
                        return Err(format!("{kind} without metadata.name"));
                    }
                    let rules = role.rules.unwrap_or_default();
                    if kind == "ClusterRole" {
                        let aggregation_selectors = role.aggregation_rule.map(|rule| {
                            rule.cluster_role_selectors
                                .into_iter()
                                // A selector with expressions we do not evaluate selects
                                // nothing, rather than everything.
                                .filter(|selector| selector.match_expressions.is_empty())
                                .map(|selector| selector.match_labels)
                                .collect()
                        });
                        rbac.cluster_roles.insert(
                            role.metadata.name,
                            ClusterRole {
                                labels: role.metadata.labels,
                                rules,
                                aggregation_selectors,
                            },
                        );
                    } else {
                        if role.metadata.namespace.is_empty() {
                            return Err(format!("Role {} without a namespace", role.metadata.name));
                        }
                        rbac.roles
                            .insert((role.metadata.namespace, role.metadata.name), rules);
                    }
                }
                "ClusterRoleBinding" | "RoleBinding" => {
                    let binding: BindingObject = serde_json::from_value(object.clone())
                        .map_err(|error| format!("{kind}: {error}"))?;
                    if binding.metadata.name.is_empty() {
                        return Err(format!("{kind} without metadata.name"));
                    }
                    let entry = Binding {
                        name: binding.metadata.name.clone(),
                        namespace: if kind == "RoleBinding" {
                            binding.metadata.namespace.clone()
                        } else {
                            String::new()
                        },
                        role_ref: binding.role_ref,
                        subjects: binding.subjects.unwrap_or_default(),
                    };
                    if kind == "RoleBinding" {
                        if entry.namespace.is_empty() {
                            return Err(format!("RoleBinding {} without a namespace", entry.name));
                        }
                        role_bindings.insert((entry.namespace.clone(), entry.name.clone()), entry);
                    } else {
                        cluster_role_bindings.insert(entry.name.clone(), entry);
                    }
                }
                _ => {}
            }
        }
        rbac.cluster_role_bindings = cluster_role_bindings.into_values().collect();
        rbac.role_bindings = role_bindings.into_values().collect();
        rbac.aggregate();
        Ok(rbac)
    }

    /// Fills aggregated ClusterRoles until nothing changes (aggregates can nest: `view` is
    /// aggregated into `edit`, `edit` into `admin`).
    fn aggregate(&mut self) {
        for _round in 0..8 {
            let mut changed = false;
            let names: Vec<String> = self.cluster_roles.keys().cloned().collect();
            for name in names {
                let Some(selectors) = self.cluster_roles[&name].aggregation_selectors.clone()
                else {
                    continue;
                };
                let mut rules: Vec<PolicyRule> = Vec::new();
                for (other_name, other) in &self.cluster_roles {
                    if *other_name == name {
                        continue;
                    }
                    let selected = selectors.iter().any(|labels| {
                        !labels.is_empty()
                            && labels
                                .iter()
                                .all(|(key, value)| other.labels.get(key) == Some(value))
                    });
                    if selected {
                        for rule in &other.rules {
                            if !rules.contains(rule) {
                                rules.push(rule.clone());
                            }
                        }
                    }
                }
                if let Some(role) = self.cluster_roles.get_mut(&name) {
                    if role.rules != rules {
                        role.rules = rules;
                        changed = true;
                    }
                }
            }
            if !changed {
                break;
            }
        }
    }

    /// The rules of every aggregated ClusterRole, as the controller manager writes them
    /// back into the objects.
    pub fn aggregated_rules(&self) -> Vec<(String, Vec<PolicyRule>)> {
        self.cluster_roles
            .iter()
            .filter(|(_, role)| role.aggregation_selectors.is_some())
            .map(|(name, role)| (name.clone(), role.rules.clone()))
            .collect()
    }

    /// `RBACAuthorizer.Authorize`: ClusterRoleBindings first, then the RoleBindings of the
    /// request's namespace; the first rule that allows decides.
    pub fn authorize(&self, attributes: &Attributes) -> Decision {
        let mut errors: Vec<String> = Vec::new();
        for binding in self.applicable_bindings(&attributes.user, &attributes.namespace) {
            match self.role_rules(&binding.role_ref, &binding.namespace) {
                Ok(rules) => {
                    if rules.iter().any(|rule| rule_allows(attributes, rule)) {
                        return Decision {
                            allowed: true,
                            reason: format!(
                                "RBAC: allowed by {}",
                                describe_binding(binding, &attributes.user)
                            ),
                        };
                    }
                }
                Err(error) => {
                    if !errors.contains(&error) {
                        errors.push(error)
                    }
                }
            }
        }
        Decision {
            allowed: false,
            reason: if errors.is_empty() {
                String::new()
            } else {
                format!("RBAC: {}", aggregate_errors(&errors))
            },
        }
    }

    /// Every rule granted to `user` in `namespace` (cluster-wide bindings included).
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> RulesReview {
        let mut review = RulesReview::default();
        for binding in self.applicable_bindings(user, namespace) {
            match self.role_rules(&binding.role_ref, &binding.namespace) {
                Ok(rules) => review.rules.extend(rules.iter().cloned()),
                Err(error) => review.errors.push(error),
            }
        }
        review
    }

    fn applicable_bindings<'a>(
        &'a self,
        user: &'a UserInfo,
        namespace: &'a str,
    ) -> impl Iterator<Item = &'a Binding> + 'a {
        let namespaced = self
            .role_bindings
            .iter()
            .filter(move |binding| !namespace.is_empty() && binding.namespace == namespace);
        self.cluster_role_bindings
            .iter()
            .chain(namespaced)
            .filter(move |binding| {
                binding
                    .subjects
                    .iter()
                    .any(|subject| subject_applies(subject, user, &binding.namespace))
            })
    }

    /// `GetRoleReferenceRules`.
    fn role_rules(
        &self,
        role_ref: &RoleRef,
        binding_namespace: &str,
    ) -> Result<&[PolicyRule], String> {
        match role_ref.kind.as_str() {
            "ClusterRole" => self
                .cluster_roles
                .get(&role_ref.name)
                .map(|role| role.rules.as_slice())
                .ok_or_else(|| format!("clusterrole.{RBAC_GROUP} \"{}\" not found", role_ref.name)),
            "Role" => self
                .roles
                .get(&(binding_namespace.to_string(), role_ref.name.clone()))
                .map(Vec::as_slice)
                .ok_or_else(|| format!("role.{RBAC_GROUP} \"{}\" not found", role_ref.name)),
            other => Err(format!("unsupported role reference kind: {other:?}")),
        }
    }
}

/// `utilerrors.NewAggregate(errs).Error()`.
fn aggregate_errors(errors: &[String]) -> String {
    if errors.len() == 1 {
        errors[0].clone()
    } else {
        format!("[{}]", errors.join(", "))
    }
}

/// `clusterRoleBindingDescriber` / `roleBindingDescriber`, naming the subject that matched.
fn describe_binding(binding: &Binding, user: &UserInfo) -> String {
    let subject = binding
        .subjects
        .iter()
        .find(|subject| subject_applies(subject, user, &binding.namespace))
        .map(|subject| describe_subject(subject, &binding.namespace))
        .unwrap_or_default();
    if binding.namespace.is_empty() {
        format!(
            "ClusterRoleBinding \"{}\" of {} \"{}\" to {subject}",
            binding.name, binding.role_ref.kind, binding.role_ref.name
        )
    } else {
        format!(
            "RoleBinding \"{}/{}\" of {} \"{}\" to {subject}",
            binding.name, binding.namespace, binding.role_ref.kind, binding.role_ref.name
        )
    }
}

fn describe_subject(subject: &Subject, binding_namespace: &str) -> String {
    if subject.kind == "ServiceAccount" {
        let namespace = if subject.namespace.is_empty() {
            binding_namespace
        } else {
            &subject.namespace
        };
        format!("{} \"{}/{}\"", subject.kind, subject.name, namespace)
    } else {
        format!("{} \"{}\"", subject.kind, subject.name)
    }
}

/// `appliesToUser`.
fn subject_applies(subject: &Subject, user: &UserInfo, binding_namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.username == subject.name,
        "Group" => user.groups.contains(&subject.name),
        "ServiceAccount" => {
            let namespace = if subject.namespace.is_empty() {
                binding_namespace
            } else {
                &subject.namespace
            };
            !namespace.is_empty()
                && user.username
                    == crate::identity::service_account_username(namespace, &subject.name)
        }
        _ => false,
    }
}

/// `RuleAllows`.
pub fn rule_allows(attributes: &Attributes, rule: &PolicyRule) -> bool {
    if attributes.resource_request {
        let combined = if attributes.subresource.is_empty() {
            attributes.resource.clone()
        } else {
            format!("{}/{}", attributes.resource, attributes.subresource)
        };
        verb_matches(rule, &attributes.verb)
            && api_group_matches(rule, &attributes.api_group)
            && resource_matches(rule, &combined, &attributes.subresource)
            && resource_name_matches(rule, &attributes.name)
    } else {
        verb_matches(rule, &attributes.verb) && non_resource_url_matches(rule, &attributes.path)
    }
}

fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs
        .iter()
        .any(|candidate| candidate == "*" || candidate == verb)
}

fn api_group_matches(rule: &PolicyRule, group: &str) -> bool {
    rule.api_groups
        .iter()
        .any(|candidate| candidate == "*" || candidate == group)
}

fn resource_matches(rule: &PolicyRule, combined: &str, subresource: &str) -> bool {
    rule.resources.iter().any(|candidate| {
        candidate == "*"
            || candidate == combined
            || (!subresource.is_empty()
                && candidate.len() == subresource.len() + 2
                && candidate.starts_with("*/")
                && candidate.ends_with(subresource))
    })
}

fn resource_name_matches(rule: &PolicyRule, name: &str) -> bool {
    rule.resource_names.is_empty()
        || rule
            .resource_names
            .iter()
            .any(|candidate| candidate == name)
}

fn non_resource_url_matches(rule: &PolicyRule, path: &str) -> bool {
    rule.non_resource_urls.iter().any(|candidate| {
        candidate == "*"
            || candidate == path
            || candidate
                .strip_suffix('*')
                .is_some_and(|prefix| path.starts_with(prefix))
    })
}
