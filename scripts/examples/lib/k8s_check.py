"""Kubernetes manifests: the API's own schemas, then the cross-object wiring.

Built-in kinds (core v1, apps/v1, rbac.authorization.k8s.io/v1) are checked against the
JSON schemas generated from Kubernetes' OpenAPI definitions, as packaged by PyPI
kubernetes-validate, in their "strict" form (no unknown fields: kubectl's default
--validate=strict would refuse them on a real server). `kubectl create --dry-run=client
--validate=strict` cannot do this offline: it fetches the OpenAPI document from a server.

Schemas cannot see relations between objects, and most broken deployments are broken there:
a binding to a role that does not exist, a Secret for a service account nobody created, a
Deployment reading a Secret key from another namespace, a WasmPlugin selecting no gateway.
`wiring_errors` checks those across the whole set of example objects.
"""
from __future__ import annotations

from typing import Any, Iterable

import kubernetes_validate

# Kubernetes versions the examples must be valid for: the oldest still common, and the one
# the reference observations were made with.
K8S_VERSIONS = ("1.30.0", "1.36.0")
BUILTIN_CLUSTER_ROLES = {"cluster-admin", "admin", "edit", "view"}
SA_TOKEN_KEYS = {"token", "ca.crt", "namespace"}
ISTIO_GROUPS = {"networking.istio.io", "extensions.istio.io", "security.istio.io"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding"}


def api_group(obj: dict) -> str:
    av = obj.get("apiVersion", "")
    return av.rpartition("/")[0] if "/" in av else ""


def is_istio(obj: dict) -> bool:
    return api_group(obj) in ISTIO_GROUPS


def schema_errors(obj: Any) -> list[str]:
    if not isinstance(obj, dict) or "apiVersion" not in obj or "kind" not in obj:
        return ["not a Kubernetes object (apiVersion and kind are required)"]
    out = []
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            where = ".".join(str(p) for p in e.path) or "<root>"
            out.append(f"Kubernetes {e.version} schema: {where}: {e.message}")
            break
        except kubernetes_validate.SchemaNotFoundError as e:
            out.append(e.message)
            break
    meta = obj.get("metadata") or {}
    if obj.get("kind") not in CLUSTER_SCOPED and not meta.get("namespace"):
        out.append("metadata.namespace: set it explicitly, so `kubectl apply` does not put the "
                   "object in whatever namespace the current context has")
    return out


def _key(obj: dict) -> tuple[str, str, str]:
    meta = obj.get("metadata") or {}
    return obj.get("kind", ""), meta.get("namespace", ""), meta.get("name", "")


def _labels_match(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def wiring_errors(objs: Iterable[tuple[str, dict]], kubegate_env_names=None) -> list[str]:
    """objs: (source file, object) pairs. kubegate_env_names: a function giving the token
    environment variable names a kubegate configuration reads (from envoy_check)."""
    objs = list(objs)
    index = {_key(o): (src, o) for src, o in objs}
    out: list[str] = []

    def have(kind, ns, name):
        return (kind, ns, name) in index

    namespaces = {name for (kind, _, name) in index if kind == "Namespace"}
    pods = []  # (src, deployment, pod labels, containers)
    for src, o in objs:
        kind, ns, name = _key(o)
        where = f"{src}: {kind} {ns + '/' if ns else ''}{name}"
        if ns and ns not in namespaces:
            out.append(f"{where}: namespace {ns!r} is not created by any example")
        if kind in ("ClusterRoleBinding", "RoleBinding"):
            ref = o.get("roleRef", {})
            rk, rn = ref.get("kind"), ref.get("name")
            if ref.get("apiGroup") != "rbac.authorization.k8s.io":
                out.append(f"{where}: roleRef.apiGroup must be rbac.authorization.k8s.io")
            if rk == "ClusterRole":
                if not have("ClusterRole", "", rn) and rn not in BUILTIN_CLUSTER_ROLES:
                    out.append(f"{where}: roleRef ClusterRole {rn!r} does not exist")
            elif rk == "Role":
                if kind == "ClusterRoleBinding":
                    out.append(f"{where}: a ClusterRoleBinding can only reference a ClusterRole")
                elif not have("Role", ns, rn):
                    out.append(f"{where}: roleRef Role {ns}/{rn} does not exist")
            else:
                out.append(f"{where}: roleRef.kind must be ClusterRole or Role")
            for s in o.get("subjects") or []:
                if s.get("kind") == "ServiceAccount":
                    sns = s.get("namespace") or (ns if kind == "RoleBinding" else "")
                    if not sns:
                        out.append(f"{where}: ServiceAccount subject needs a namespace")
                    elif not have("ServiceAccount", sns, s.get("name")):
                        out.append(f"{where}: ServiceAccount {sns}/{s.get('name')} does not exist")
                elif s.get("kind") in ("User", "Group") and s.get("apiGroup") != "rbac.authorization.k8s.io":
                    out.append(f"{where}: {s.get('kind')} subjects need apiGroup rbac.authorization.k8s.io")
        if kind in ("ClusterRole", "Role"):
            for i, r in enumerate(o.get("rules") or []):
                if "*" in (r.get("verbs") or []) or "*" in (r.get("resources") or []):
                    out.append(f"{where}: rules[{i}] uses '*'; grant kubegate exactly what it needs")
        if kind == "Secret" and o.get("type") == "kubernetes.io/service-account-token":
            sa = ((o.get("metadata") or {}).get("annotations") or {}).get("kubernetes.io/service-account.name")
            if not sa:
                out.append(f"{where}: a service-account-token Secret needs the annotation "
                           "kubernetes.io/service-account.name")
            elif not have("ServiceAccount", ns, sa):
                out.append(f"{where}: ServiceAccount {ns}/{sa} does not exist")
        if kind == "Deployment":
            spec = o.get("spec") or {}
            tmpl = spec.get("template") or {}
            labels = (tmpl.get("metadata") or {}).get("labels") or {}
            sel = (spec.get("selector") or {}).get("matchLabels") or {}
            if not _labels_match(sel, labels):
                out.append(f"{where}: spec.selector does not match the pod template labels")
            pspec = tmpl.get("spec") or {}
            san = pspec.get("serviceAccountName")
            if san and not have("ServiceAccount", ns, san):
                out.append(f"{where}: serviceAccountName {san!r} does not exist in {ns}")
            for c in pspec.get("containers") or []:
                for e in c.get("env") or []:
                    ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                    if not ref:
                        continue
                    skey = ("Secret", ns, ref.get("name"))
                    if skey not in index:
                        out.append(f"{where}: env {e.get('name')}: Secret {ns}/{ref.get('name')} "
                                   "is not in the examples (a Pod reads Secrets of its own namespace only)")
                    else:
                        secret = index[skey][1]
                        keys = set((secret.get("data") or {})) | set((secret.get("stringData") or {}))
                        if secret.get("type") == "kubernetes.io/service-account-token":
                            keys |= SA_TOKEN_KEYS
                        if ref.get("key") not in keys:
                            out.append(f"{where}: env {e.get('name')}: Secret {ref.get('name')} has no key {ref.get('key')!r}")
            pods.append((src, o, labels, pspec.get("containers") or []))

    def selected(selector: dict, ns: str):
        return [p for p in pods if _key(p[1])[1] == ns and _labels_match(selector, p[2])]

    gateways = {}
    for src, o in objs:
        kind, ns, name = _key(o)
        where = f"{src}: {kind} {ns}/{name}"
        spec = o.get("spec") or {}
        if kind == "Gateway":
            gateways[(ns, name)] = o
            if not selected(spec.get("selector") or {}, ns):
                out.append(f"{where}: selector matches no gateway Deployment in {ns}")
            for srv in spec.get("servers") or []:
                if (srv.get("port") or {}).get("protocol") == "HTTPS" and not (srv.get("tls") or {}).get("credentialName"):
                    out.append(f"{where}: HTTPS server without tls.credentialName")
        if kind == "EnvoyFilter":
            labels = (spec.get("workloadSelector") or {}).get("labels") or {}
            if not selected(labels, ns):
                out.append(f"{where}: workloadSelector matches no Deployment in {ns}")
        if kind == "WasmPlugin":
            labels = (spec.get("selector") or {}).get("matchLabels") or {}
            targets = selected(labels, ns)
            if not targets:
                out.append(f"{where}: selector matches no gateway Deployment in {ns}")
            if spec.get("failStrategy", "FAIL_CLOSE") != "FAIL_CLOSE":
                out.append(f"{where}: failStrategy must be FAIL_CLOSE; a broken VM must not pass requests")
            if spec.get("phase") != "AUTHN":
                out.append(f"{where}: phase must be AUTHN, ahead of Istio's own authn/authz filters")
            env = (spec.get("vmConfig") or {}).get("env") or []
            host_env = {e.get("name") for e in env if e.get("valueFrom") == "HOST"}
            inline = {e.get("name") for e in env if e.get("valueFrom", "INLINE") == "INLINE"}
            if kubegate_env_names is not None:
                for n in kubegate_env_names(spec.get("pluginConfig") or {}):
                    if n in inline:
                        out.append(f"{where}: vmConfig.env {n} is INLINE: the token would sit in "
                                   "the WasmPlugin; use valueFrom: HOST")
                    elif n not in host_env:
                        out.append(f"{where}: pluginConfig reads {n} but vmConfig.env does not provide it")
            for src2, dep, _, containers in targets:
                proxy_env = {e.get("name") for c in containers if c.get("name") == "istio-proxy"
                             for e in (c.get("env") or [])}
                for n in sorted(host_env - proxy_env):
                    out.append(f"{where}: vmConfig.env {n} (HOST) is not set on the istio-proxy "
                               f"container of Deployment {_key(dep)[2]}")
    for src, o in objs:
        kind, ns, name = _key(o)
        if kind == "VirtualService":
            for g in (o.get("spec") or {}).get("gateways") or []:
                gns, _, gname = g.rpartition("/")
                if g != "mesh" and (gns or ns, gname) not in gateways:
                    out.append(f"{src}: VirtualService {ns}/{name}: gateway {g!r} does not exist")
    return out
