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
GATEWAY_GROUPS = {"gateway.networking.k8s.io", "gateway.envoyproxy.io"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "GatewayClass"}
# Namespaces that exist before the examples are applied: Kubernetes' own, the one Envoy
# Gateway's installation creates and runs the gateway Pods in, and Pomerium's (the examples
# put kubegate behind a Pomerium installed there).
PLATFORM_NAMESPACES = {"default", "envoy-gateway-system", "pomerium"}
# Where Envoy Gateway runs a Gateway's Envoy Pods (its default deployment mode).
ENVOY_GATEWAY_PROXY_NAMESPACE = "envoy-gateway-system"
ENVOY_GATEWAY_CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"


def api_group(obj: dict) -> str:
    av = obj.get("apiVersion", "")
    return av.rpartition("/")[0] if "/" in av else ""


def is_istio(obj: dict) -> bool:
    return api_group(obj) in ISTIO_GROUPS


def is_gateway(obj: dict) -> bool:
    """Gateway API and Envoy Gateway kinds (no schema here but the EnvoyExtensionPolicy CRD)."""
    return api_group(obj) in GATEWAY_GROUPS


def custom_resource_errors(obj: dict) -> list[str]:
    """What can be checked of a custom resource without its CRD."""
    errs = []
    if not isinstance(obj.get("spec"), dict):
        errs.append("spec: Required value")
    if obj.get("kind") not in CLUSTER_SCOPED and not (obj.get("metadata") or {}).get("namespace"):
        errs.append("metadata.namespace: set it explicitly")
    return errs


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
        if ns and ns not in namespaces and ns not in PLATFORM_NAMESPACES:
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
        if kind == "Gateway" and is_istio(o):
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
    out += envoy_gateway_wiring(objs, index, kubegate_env_names)
    for src, o in objs:
        kind, ns, name = _key(o)
        if kind == "VirtualService":
            for g in (o.get("spec") or {}).get("gateways") or []:
                gns, _, gname = g.rpartition("/")
                if g != "mesh" and (gns or ns, gname) not in gateways:
                    out.append(f"{src}: VirtualService {ns}/{name}: gateway {g!r} does not exist")
    return out


def _ref_key(ref: dict, default_kind: str, default_ns: str) -> tuple[str, str, str]:
    return ref.get("kind", default_kind), ref.get("namespace", default_ns), ref.get("name", "")


def envoy_gateway_wiring(objs: list[tuple[str, dict]], index: dict, kubegate_env_names=None) -> list[str]:
    """Envoy Gateway: the policy reaches a Gateway of Envoy Gateway's class, the proxy's
    environment holds what the policy hands the VM, the API server route has no timeout,
    upgrades, HTTP/1.1 and verified TLS, and cross-namespace references are granted."""
    out: list[str] = []
    # Istio has a Gateway kind too: look Gateway API and Envoy Gateway kinds up among their own.
    own = {_key(o): o for _, o in objs if is_gateway(o)}

    def get(kind, ns, name):
        if (kind, ns, name) in own:
            return own[(kind, ns, name)]
        found = index.get((kind, ns, name), (None, None))[1]
        return None if found is not None and is_istio(found) else found

    def where(src, o):
        kind, ns, name = _key(o)
        return f"{src}: {kind} {ns + '/' if ns else ''}{name}"

    def envoyproxy_for(gw: dict):
        ns = _key(gw)[1]
        ref = ((gw.get("spec") or {}).get("infrastructure") or {}).get("parametersRef") or {}
        if ref.get("kind") == "EnvoyProxy":
            return get("EnvoyProxy", ns, ref.get("name"))
        gc = get("GatewayClass", "", (gw.get("spec") or {}).get("gatewayClassName"))
        ref = ((gc or {}).get("spec") or {}).get("parametersRef") or {}
        if ref.get("kind") == "EnvoyProxy":
            return get("EnvoyProxy", ref.get("namespace", ""), ref.get("name"))
        return None

    def granted(from_kind, from_ns, to_kind, to_ns, to_name):
        for _, g in objs:
            k, gns, _ = _key(g)
            if k != "ReferenceGrant" or gns != to_ns:
                continue
            spec = g.get("spec") or {}
            if any(f.get("kind") == from_kind and f.get("namespace") == from_ns for f in spec.get("from") or []) and \
               any(t.get("kind") == to_kind and t.get("name", to_name) == to_name for t in spec.get("to") or []):
                return True
        return False

    def targeted_by(kind, target_kind, ns, name):
        return [o for _, o in objs if _key(o)[0] == kind and _key(o)[1] == ns and any(
            r.get("kind") == target_kind and r.get("name") == name
            for r in (o.get("spec") or {}).get("targetRefs") or [])]

    for src, o in objs:
        kind, ns, name = _key(o)
        spec = o.get("spec") or {}
        w = where(src, o)
        if kind == "Gateway" and api_group(o) == "gateway.networking.k8s.io":
            gc = get("GatewayClass", "", spec.get("gatewayClassName"))
            if gc is None:
                out.append(f"{w}: GatewayClass {spec.get('gatewayClassName')!r} does not exist")
            elif (gc.get("spec") or {}).get("controllerName") != ENVOY_GATEWAY_CONTROLLER:
                out.append(f"{w}: its GatewayClass is not Envoy Gateway's ({ENVOY_GATEWAY_CONTROLLER})")
            for li in spec.get("listeners") or []:
                if li.get("protocol") == "HTTPS" and not (li.get("tls") or {}).get("certificateRefs"):
                    out.append(f"{w}: HTTPS listener {li.get('name')!r} without tls.certificateRefs")
                if li.get("protocol") == "HTTP":
                    out.append(f"{w}: listener {li.get('name')!r} is plain HTTP; kubectl sends bearer tokens")
            if envoyproxy_for(o) is None:
                out.append(f"{w}: no EnvoyProxy (infrastructure.parametersRef) puts the token into the proxy's environment")
        if kind == "HTTPRoute":
            for ref in spec.get("parentRefs") or []:
                if get("Gateway", ref.get("namespace", ns), ref.get("name")) is None:
                    out.append(f"{w}: parent Gateway {ref.get('name')!r} does not exist")
            for ri, rule in enumerate(spec.get("rules") or []):
                for b in rule.get("backendRefs") or []:
                    bkind, bns, bname = _ref_key(b, "Service", ns)
                    if bns != ns and not granted("HTTPRoute", ns, bkind, bns, bname):
                        out.append(f"{w}: rules[{ri}] uses {bkind} {bns}/{bname} without a ReferenceGrant in {bns}")
                    tls = targeted_by("BackendTLSPolicy", bkind, bns, bname)
                    if not tls:
                        out.append(f"{w}: rules[{ri}]: no BackendTLSPolicy for {bkind} {bns}/{bname}; "
                                   "the service-account token would travel in plaintext")
                    for t in tls:
                        v = (t.get("spec") or {}).get("validation") or {}
                        if not v.get("hostname") or not (v.get("caCertificateRefs") or v.get("wellKnownCACertificates")):
                            out.append(f"{where('', t).lstrip(': ')}: validation needs a hostname and CA certificates")
                    if (bkind, bns, bname) == ("Service", "default", "kubernetes"):
                        timeout = (rule.get("timeouts") or {}).get("request")
                        if timeout not in ("0s", "0"):
                            out.append(f"{w}: rules[{ri}].timeouts.request: set 0s; a deadline cuts off "
                                       "watches, logs -f and exec sessions")
                        tls_hosts = {((t.get("spec") or {}).get("validation") or {}).get("hostname") for t in tls}
                        if tls and "kubernetes.default.svc" not in tls_hosts:
                            out.append(f"{w}: the API server's BackendTLSPolicy must verify the name kubernetes.default.svc")
                        btps = targeted_by("BackendTrafficPolicy", "HTTPRoute", ns, name)
                        upgrades = {(u.get("type") or "").lower() for p in btps
                                    for u in (p.get("spec") or {}).get("httpUpgrade") or []}
                        for needed in ("websocket", "spdy/3.1"):
                            if needed not in upgrades:
                                out.append(f"{w}: no BackendTrafficPolicy httpUpgrade {needed!r} (kubectl exec/port-forward)")
                        if not any((p.get("spec") or {}).get("useClientProtocol") for p in btps):
                            out.append(f"{w}: SPDY/3.1 needs HTTP/1.1 to the API server: a BackendTrafficPolicy "
                                       "with useClientProtocol: true")
        if kind == "EnvoyExtensionPolicy":
            gateways = []
            for ref in spec.get("targetRefs") or []:
                target = get(ref.get("kind"), ns, ref.get("name"))
                if target is None:
                    out.append(f"{w}: target {ref.get('kind')} {ref.get('name')!r} does not exist in {ns}")
                elif ref.get("kind") == "Gateway":
                    gateways.append(target)
                elif ref.get("kind") == "HTTPRoute":
                    gateways += [g for r in (target.get("spec") or {}).get("parentRefs") or []
                                 if (g := get("Gateway", r.get("namespace", ns), r.get("name"))) is not None]
            for wi, entry in enumerate(spec.get("wasm") or []):
                hosts = set(((entry or {}).get("env") or {}).get("hostKeys") or [])
                if kubegate_env_names is not None:
                    for n in kubegate_env_names((entry or {}).get("config") or {}):
                        if n not in hosts:
                            out.append(f"{w}: wasm[{wi}].config reads {n} but env.hostKeys does not provide it")
                for gw in gateways:
                    proxy = envoyproxy_for(gw)
                    container = ((((proxy or {}).get("spec") or {}).get("provider") or {}).get("kubernetes") or {})
                    env = ((container.get("envoyDeployment") or {}).get("container") or {}).get("env") or []
                    names = {e.get("name") for e in env}
                    for n in sorted(hosts - names):
                        out.append(f"{w}: wasm[{wi}].env.hostKeys {n} is not set on the proxy container "
                                   f"(EnvoyProxy of Gateway {_key(gw)[2]})")
        if kind == "EnvoyProxy":
            dep = (((spec.get("provider") or {}).get("kubernetes") or {}).get("envoyDeployment") or {})
            for e in ((dep.get("container") or {}).get("env") or []):
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if not ref:
                    continue
                pns = ENVOY_GATEWAY_PROXY_NAMESPACE
                secret = get("Secret", pns, ref.get("name"))
                if secret is None:
                    out.append(f"{w}: env {e.get('name')}: Secret {pns}/{ref.get('name')} is not in the examples "
                               f"(the proxy Pods run in {pns} and read Secrets of their own namespace only)")
                else:
                    keys = set(secret.get("data") or {}) | set(secret.get("stringData") or {})
                    if secret.get("type") == "kubernetes.io/service-account-token":
                        keys |= SA_TOKEN_KEYS
                    if ref.get("key") not in keys:
                        out.append(f"{w}: env {e.get('name')}: Secret {ref.get('name')} has no key {ref.get('key')!r}")
    return out
