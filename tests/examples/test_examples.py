"""Tests for envoy-examples/ and the validators in scripts/examples/ (`make validate-examples`).

Each validator is shown to accept the real examples AND to reject broken input, so a green run
means something: Istio's own valid/invalid WasmPlugin objects, deliberately broken copies of
each kind of file (tests/examples/broken/), and targeted mutations of the real examples.
"""
from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import hmac
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

import crd_check
import envoy_check
import examples_check as ec
import k8s_check
import render
import yamlutil

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "envoy-examples"
BROKEN = Path(__file__).resolve().parent / "broken"
SCHEMAS = REPO.parent / "shared/testdata/schemas"
SCRIPTS = REPO / "scripts/examples"
sys.path.insert(0, str(SCRIPTS))  # oci.py and dev_token.py (stdlib-only CLIs)
import dev_token  # noqa: E402
import oci  # noqa: E402

sys.path.remove(str(SCRIPTS))


def bootstrap(name: str) -> dict:
    """A bootstrap as Envoy loads it: the file as it stands."""
    return yamlutil.load_one((EXAMPLES / "envoy" / name).read_text())


def errors_of(doc: dict, skip_verify: bool = False) -> list[str]:
    return envoy_check.check(doc, allow_skip_verify=skip_verify).errors


def wasm_filter(doc: dict) -> dict:
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.wasm")


def hcm_of(doc: dict) -> dict:
    return doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def kubegate_conf(doc: dict) -> dict:
    return json.loads(wasm_filter(doc)["typed_config"]["config"]["configuration"]["value"])


def set_conf(doc: dict, conf: dict) -> None:
    wasm_filter(doc)["typed_config"]["config"]["configuration"]["value"] = json.dumps(conf)


def cluster(doc: dict, name: str) -> dict:
    return next(c for c in doc["static_resources"]["clusters"] if c["name"] == name)


def has(errors: list[str], needle: str) -> bool:
    return any(needle in e for e in errors)


# ---- the real examples ------------------------------------------------------------------

def test_every_example_file_is_valid_and_wired():
    reports, wiring = ec.check_all(ec.example_files())
    assert len(reports) >= 10
    bad = {str(r.path.name): r.errors for r in reports if r.errors}
    assert not bad, bad
    assert not wiring, wiring


def test_configurations_are_extracted_for_the_rust_parser(tmp_path):
    assert ec.main(["--out", str(tmp_path), "--quiet"]) == 0
    files = sorted(p.name for p in tmp_path.glob("*.json"))
    assert files == ["envoy-gateway-kubegate.json", "envoy-in-cluster.json",
                     "envoy-local-standin-skip-verify.json", "envoy-local-standin.json",
                     "istio-wasmplugin-kubegate.json"]
    index = (tmp_path / "INDEX").read_text().splitlines()
    assert sorted(line.split("\t")[0] for line in index) == files
    for f in files:
        conf = json.loads((tmp_path / f).read_text())
        assert set(conf) <= envoy_check.KUBEGATE_TOP_LEVEL
        assert isinstance(conf["jwt"], list) and conf["jwt"]
        assert conf["routes"][0]["kubernetes_service_account_token_env"] == "KUBEGATE_SA_TOKEN"
    # The Istio, Envoy Gateway and in-cluster Envoy configurations differ only in the JWKS
    # cluster name.
    envoy_conf = json.loads((tmp_path / "envoy-in-cluster.json").read_text())
    istio_conf = json.loads((tmp_path / "istio-wasmplugin-kubegate.json").read_text())
    eg_conf = json.loads((tmp_path / "envoy-gateway-kubegate.json").read_text())
    assert istio_conf["jwt"][0]["keys"]["remote"].pop("cluster") == "outbound|443||k8s.localhost.pomerium.io"
    assert envoy_conf["jwt"][0]["keys"]["remote"].pop("cluster") == "pomerium"
    assert eg_conf["jwt"][0]["keys"]["remote"].pop("cluster") == "httproute/kubegate-system/pomerium-jwks/rule/0"
    # ...and so is the API server's cluster, the only place the service-account token goes.
    assert istio_conf["routes"][0].pop("upstream_clusters") == ["outbound|443||kubernetes.default.svc.cluster.local"]
    assert envoy_conf["routes"][0].pop("upstream_clusters") == ["kube_apiserver"]
    assert eg_conf["routes"][0].pop("upstream_clusters") == ["httproute/kubegate-system/kubernetes-api/rule/0"]
    assert istio_conf == envoy_conf == eg_conf


def test_seed_pomerium_route_is_mirrored():
    doc = bootstrap("in-cluster.yaml")
    conf = kubegate_conf(doc)
    route = conf["routes"][0]
    assert route["from"] == "https://k8s.localhost.pomerium.io"
    assert route["policy"] == [{"allow": {"or": [{"domain": {"is": "pomerium.com"}}]}}]
    # kubegate behind Pomerium, as filter-config/pomerium.json: Pomerium's assertion header,
    # iss and aud the route host, keys from /.well-known/pomerium/jwks.json on the route host
    # through the cluster `pomerium`.
    (authn,) = conf["jwt"]
    model = json.loads((REPO / "filter-config/pomerium.json").read_text())["jwt"][0]
    for key in ("issuer", "issuer_host_only", "from"):
        assert authn[key] == model[key], key
    assert authn["issuer"] == {"url": "k8s.localhost.pomerium.io", "audiences": ["k8s.localhost.pomerium.io"]}
    remote = authn["keys"]["remote"]
    assert (remote["cluster"], remote["path"]) == (model["keys"]["remote"]["cluster"], model["keys"]["remote"]["path"])
    assert "authority" not in remote  # the default: the issuer's host, which is the route host
    tls = cluster(doc, "pomerium")["transport_socket"]["typed_config"]
    assert tls["sni"] == "k8s.localhost.pomerium.io"


def test_bootstraps_are_concrete_and_mark_their_settings():
    for p in (EXAMPLES / "envoy").glob("*.yaml"):
        text = p.read_text()
        assert "${" not in text, p.name  # Envoy expands no variables: nothing to fill in
        marked = render.settings(text)
        assert set(marked) <= set(ec.TEST_VALUES), p.name
        # every value a site changes is marked; secrets never are (they come from the
        # environment), except the public development key of the local examples
        assert {"KUBEGATE_WASM", "KUBEGATE_TLS_CERT", "KUBEGATE_TLS_KEY", "KUBEGATE_LISTEN_PORT",
                "KUBEGATE_UPSTREAM_ADDRESS", "KUBEGATE_ADMIN_PORT"} <= set(marked), p.name
        # each marked name is documented in the file's header
        header = "".join(line for line in text.splitlines(keepends=True) if line.startswith("#"))
        for name in marked:
            assert name.split("_KEY")[0].split("_CERT")[0] in header, (p.name, name)


def test_placeholders_are_refused(tmp_path):
    text = (EXAMPLES / "envoy/local-standin.yaml").read_text().replace(
        "port_value: 9901  # KUBEGATE_ADMIN_PORT", "port_value: ${KUBEGATE_ADMIN_PORT}")
    f = tmp_path / "local-standin.yaml"
    f.write_text(text)
    assert has(ec.check_bootstrap(f, text).errors, "Envoy does not expand variables")


# ---- Istio's own WasmPlugin test objects ------------------------------------------------

def _istio_examples(name: str) -> list[dict]:
    return yamlutil.load_all((SCHEMAS / name).read_text())


@pytest.mark.parametrize("obj", _istio_examples("istio-wasmplugin-examples-valid.yaml"),
                         ids=lambda o: o["metadata"]["name"])
def test_istio_valid_wasmplugins_are_accepted(obj):
    assert ec.wasmplugin_crd().validate(obj) == []


@pytest.mark.parametrize("obj", _istio_examples("istio-wasmplugin-examples-invalid.yaml"),
                         ids=lambda o: o["metadata"]["name"])
def test_istio_invalid_wasmplugins_are_rejected_with_the_api_servers_message(obj):
    obj = dict(obj)
    expected = obj.pop("_err")
    errors = ec.wasmplugin_crd().validate(obj)
    assert has(errors, expected), (expected, errors)


# ---- deliberately broken copies -----------------------------------------------------------

@pytest.mark.parametrize("path", sorted(BROKEN.glob("bootstrap-*.yaml")), ids=lambda p: p.stem)
def test_broken_bootstrap_copies_are_rejected(path):
    expected = [l.split(":", 1)[1].strip() for l in path.read_text().splitlines()
                if l.startswith("# expect:")]
    assert len(expected) == 1
    errors = ec.check_file(path).errors
    assert has(errors, expected[0]), (expected[0], errors)


def _broken_docs(name: str):
    return [pytest.param(d, id=f"{name}#{i}") for i, d in
            enumerate(yamlutil.load_all((BROKEN / name).read_text()))]


@pytest.mark.parametrize("doc", _broken_docs("wasmplugin-broken.yaml") + _broken_docs("rbac-broken.yaml")
                         + _broken_docs("extensionpolicy-broken.yaml"))
def test_broken_manifest_copies_are_rejected(doc, tmp_path):
    doc = dict(doc)
    expected = doc.pop("_err")
    f = tmp_path / "broken.yaml"
    f.write_text(yaml.safe_dump(doc))
    errors = ec.check_file(f).errors
    assert has(errors, expected), (expected, errors)


# ---- Envoy: what ParseDict alone would miss ----------------------------------------------

def test_strict_parsing_rejects_unknown_fields_and_wrong_types():
    doc = bootstrap("local-standin.yaml")
    d = copy.deepcopy(doc)
    cluster(d, "kube_apiserver")["conect_timeout"] = "5s"
    assert has(errors_of(d), 'has no field named "conect_timeout"')
    d = copy.deepcopy(doc)
    cluster(d, "kube_apiserver")["connect_timeout"] = "soon"
    assert has(errors_of(d), "connect_timeout")
    d = copy.deepcopy(doc)
    d["static_resources"]["listeners"][0]["per_connection_buffer_limit_bytes"] = "lots"
    assert has(errors_of(d), "per_connection_buffer_limit_bytes")


def test_unknown_any_type_is_rejected():
    d = bootstrap("local-standin.yaml")
    wasm_filter(d)["typed_config"]["@type"] = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasmm"
    assert has(errors_of(d), "no such message")


def test_envoy_field_rules_are_enforced():
    d = bootstrap("local-standin.yaml")
    hcm_of(d)["stat_prefix"] = ""  # min_len: 1
    assert has(errors_of(d), "stat_prefix: value length must be at least 1")
    d = bootstrap("local-standin.yaml")
    cluster(d, "kube_apiserver")["connect_timeout"] = "0s"  # gt: 0s
    assert has(errors_of(d), "connect_timeout: value must be greater than 0s")
    d = bootstrap("local-standin.yaml")
    route = hcm_of(d)["route_config"]["virtual_hosts"][0]["routes"][0]
    route["request_headers_to_remove"] = ["x-ok", "x-bad\nheader"]  # HTTP_HEADER_NAME
    assert has(errors_of(d), "request_headers_to_remove[1]: value does not match regex pattern for an HTTP header name")
    d = bootstrap("local-standin.yaml")
    hcm_of(d)["route_config"]["virtual_hosts"][0]["routes"][0]["match"]["headers"] = [{"name": "", "present_match": True}]
    assert has(errors_of(d), "headers[0].name: value length must be at least 1")


def test_deprecated_fields_are_refused():
    d = bootstrap("local-standin.yaml")
    cfg = wasm_filter(d)["typed_config"]["config"]
    del cfg["failure_policy"]
    cfg["fail_open"] = True
    errors = errors_of(d)
    assert has(errors, "fail_open: deprecated field")
    assert has(errors, "fails open")


def test_duplicate_yaml_keys_are_refused():
    text = "node: {id: a}\nnode: {id: b}\n"
    with pytest.raises(yamlutil.DuplicateKeyError):
        yamlutil.load_one(text)


@pytest.mark.parametrize("mutate,needle", [
    (lambda d: wasm_filter(d)["typed_config"]["config"]["vm_config"].update(runtime="envoy.wasm.runtime.wamr"),
     "official Envoy builds ship only envoy.wasm.runtime.v8"),
    (lambda d: wasm_filter(d)["typed_config"]["config"].update(configuration={
        "@type": "type.googleapis.com/google.protobuf.Struct", "value": {"routes": []}}),
     "@type must be google.protobuf.StringValue"),
    (lambda d: wasm_filter(d)["typed_config"]["config"]["configuration"].update(value="[1, 2]"),
     "must be a JSON object"),
    (lambda d: wasm_filter(d)["typed_config"]["config"]["configuration"].update(value='{"routes": [], "routes": []}'),
     "duplicate JSON key"),
    (lambda d: wasm_filter(d)["typed_config"]["config"]["vm_config"]["environment_variables"].update(host_env_keys=["OTHER"]),
     "'KUBEGATE_SA_TOKEN' is not handed to the VM"),
    (lambda d: hcm_of(d).update(upgrade_configs=[{"upgrade_type": "websocket"}]), "missing 'spdy/3.1'"),
    (lambda d: hcm_of(d)["http_filters"].reverse(), "the router must be the last filter"),
    (lambda d: hcm_of(d)["route_config"]["virtual_hosts"][0]["routes"][0]["route"].pop("timeout"),
     "route.timeout: set 0s"),
    (lambda d: hcm_of(d)["route_config"]["virtual_hosts"][0]["routes"][0]["route"].update(cluster="nowhere"),
     "no cluster named 'nowhere'"),
    (lambda d: cluster(d, "kube_apiserver").pop("transport_socket"), "the API server is reached over TLS"),
    (lambda d: cluster(d, "kube_apiserver")["transport_socket"]["typed_config"]["common_tls_context"]
     ["validation_context"].pop("match_typed_subject_alt_names"), "without match_typed_subject_alt_names"),
    (lambda d: cluster(d, "kube_apiserver")["typed_extension_protocol_options"]
     ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["explicit_http_config"].update(
        http_protocol_options=None, http2_protocol_options={}) or
     cluster(d, "kube_apiserver")["typed_extension_protocol_options"]
     ["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]["explicit_http_config"].pop("http_protocol_options"),
     "need HTTP/1.1 upstream"),
    (lambda d: d["static_resources"]["listeners"][0]["filter_chains"][0].pop("transport_socket"),
     "the listener must terminate TLS"),
    (lambda d: d["admin"]["address"]["socket_address"].update(address="0.0.0.0"), "keep it on loopback"),
    (lambda d: d["static_resources"]["clusters"].append(copy.deepcopy(d["static_resources"]["clusters"][0])),
     "duplicate cluster name"),
    (lambda d: wasm_filter(d).update(disabled=True), "kubegate is disabled"),
    (lambda d: hcm_of(d).pop("access_log"), "access_log: none"),
    (lambda d: hcm_of(d)["access_log"][0]["typed_config"]["log_format"]["json_format"].pop("kubernetes_user"),
     "does not print %FILTER_STATE(wasm.kubegate.user:PLAIN)%"),
    (lambda d: hcm_of(d)["access_log"][0]["typed_config"]["log_format"]["json_format"].update(
        kubernetes_user="%FILTER_STATE(wasm.kubegate.user)%"), "does not print %FILTER_STATE(wasm.kubegate.user:PLAIN)%"),
    (lambda d: hcm_of(d)["access_log"][0]["typed_config"]["log_format"]["json_format"].update(
        auth="%REQ(Authorization)%"), "prints a credential"),
    (lambda d: hcm_of(d)["access_log"][0]["typed_config"]["log_format"]["json_format"].update(
        a="%REQ(X-POMERIUM-JWT-ASSERTION:40)%"), "prints a credential"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_kubegate_wiring_rules(mutate, needle):
    d = bootstrap("local-standin.yaml")
    mutate(d)
    errors = errors_of(d)
    assert has(errors, needle), (needle, errors)


def test_remote_keys_cluster_must_exist_and_use_tls():
    d = bootstrap("in-cluster.yaml")
    conf = kubegate_conf(d)
    conf["jwt"][0]["keys"]["remote"]["cluster"] = "idp"
    set_conf(d, conf)
    assert has(errors_of(d), "jwt[0].keys.remote.cluster: no Envoy cluster named 'idp'")
    d = bootstrap("in-cluster.yaml")
    cluster(d, "pomerium").pop("transport_socket")
    assert has(errors_of(d), "signing keys fetched without TLS")


def test_every_authenticator_is_checked():
    d = bootstrap("in-cluster.yaml")
    conf = kubegate_conf(d)
    second = copy.deepcopy(conf["jwt"][0])
    second["issuer"] = {"url": "https://idp.example.com", "audiences": ["kubernetes"]}
    second.pop("issuer_host_only")
    second["keys"] = {"remote": {"cluster": "idp"}}
    conf["jwt"].append(second)
    set_conf(d, conf)
    assert has(errors_of(d), "jwt[1].keys.remote.cluster: no Envoy cluster named 'idp'")


@pytest.mark.parametrize("mutate,needle", [
    (lambda c: c.update(jwt=c["jwt"][0]), "jwt: a list of authenticators"),
    (lambda c: c.update(jwt=[]), "jwt: a list of authenticators"),
    (lambda c: c.update(identity={"user_claim": "email"}), "unknown top-level fields ['identity']"),
    (lambda c: c["jwt"][0].update(keys={}), "jwt[0].keys: no key source"),
    (lambda c: c["jwt"][0]["keys"].update(hmac=[{"kid": "dev", "alg": "HS256", "secret_env": "DEV_HMAC"}]),
     "jwt[0].keys.hmac[0].secret_env: 'DEV_HMAC' is not handed to the VM"),
    (lambda c: c["routes"][0].pop("upstream_clusters"), "routes[0].upstream_clusters: every example names"),
    (lambda c: c["routes"][0].update(upstream_clusters=["elsewhere"]),
     "routes[0].upstream_clusters: no Envoy cluster named 'elsewhere'"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_kubegate_configuration_shape(mutate, needle):
    d = bootstrap("local-standin.yaml")
    conf = kubegate_conf(d)
    assert envoy_check.config_errors(conf, {"KUBEGATE_SA_TOKEN"}, None) == []
    mutate(conf)
    set_conf(d, conf)
    errors = errors_of(d)
    assert has(errors, needle), (needle, errors)


def test_skip_verify_is_only_accepted_in_its_own_file():
    d = bootstrap("local-standin-skip-verify.yaml")
    assert errors_of(d, skip_verify=True) == []
    assert has(errors_of(d, skip_verify=False), "upstream certificate not verified")


def test_envoyfilter_patch_is_parsed_strictly():
    docs = yamlutil.load_all((EXAMPLES / "istio/gateway.yaml").read_text())
    ef = next(d for d in docs if d["kind"] == "EnvoyFilter")
    assert ec.check_envoyfilter(ef) == []
    bad = copy.deepcopy(ef)
    bad["spec"]["configPatches"][0]["patch"]["value"]["typed_config"]["upgrade_config"] = []
    assert has(ec.check_envoyfilter(bad), 'has no field named "upgrade_config"')


# ---- Kubernetes and Istio wiring -----------------------------------------------------------

def _all_objects() -> list[tuple[str, dict]]:
    reports, _ = ec.check_all(ec.example_files())
    return [(r.path.name, o) for r in reports for o in r.objects]


def _find(objs, kind, name=None):
    """The first such object outside Envoy Gateway's examples (Istio's Gateway, not Gateway API's)."""
    return next(o for _, o in objs if o["kind"] == kind and not k8s_check.is_gateway(o)
                and (name is None or o["metadata"]["name"] == name))


@pytest.mark.parametrize("mutate,needle", [
    (lambda objs: _find(objs, "ClusterRoleBinding", "kubegate-impersonation")["roleRef"].update(name="kubegate-impersonator"),
     "roleRef ClusterRole 'kubegate-impersonator' does not exist"),
    (lambda objs: _find(objs, "ClusterRoleBinding", "kubegate-impersonation")["subjects"][0].update(namespace="default"),
     "ServiceAccount default/kubegate does not exist"),
    (lambda objs: _find(objs, "Secret")["metadata"]["annotations"].clear(),
     "needs the annotation kubernetes.io/service-account.name"),
    (lambda objs: _find(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["env"][0]
     ["valueFrom"]["secretKeyRef"].update(key="tokn"), "has no key 'tokn'"),
    (lambda objs: _find(objs, "ClusterRole", "kubegate-impersonation")["rules"][0].update(verbs=["*"]),
     "uses '*'"),
    (lambda objs: _find(objs, "WasmPlugin")["spec"]["selector"]["matchLabels"].update(istio="ingressgateway"),
     "selector matches no gateway Deployment"),
    (lambda objs: _find(objs, "WasmPlugin")["spec"].update(failStrategy="FAIL_OPEN"), "failStrategy must be FAIL_CLOSE"),
    (lambda objs: _find(objs, "WasmPlugin")["spec"].update(phase="STATS"), "phase must be AUTHN"),
    (lambda objs: _find(objs, "WasmPlugin")["spec"]["vmConfig"].update(env=[{"name": "KUBEGATE_SA_TOKEN", "value": "t"}]),
     "is INLINE"),
    (lambda objs: _find(objs, "Deployment")["spec"]["template"]["spec"]["containers"][0].pop("env"),
     "(HOST) is not set on the istio-proxy container"),
    (lambda objs: _find(objs, "VirtualService")["spec"].update(gateways=["istio-system/ingressgateway"]),
     "gateway 'istio-system/ingressgateway' does not exist"),
    (lambda objs: _find(objs, "Gateway")["spec"]["servers"][0]["tls"].pop("credentialName"),
     "HTTPS server without tls.credentialName"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_cross_object_wiring(mutate, needle):
    objs = copy.deepcopy(_all_objects())
    assert k8s_check.wiring_errors(objs, ec.token_env_names) == []
    mutate(objs)
    errors = k8s_check.wiring_errors(objs, ec.token_env_names)
    assert has(errors, needle), (needle, errors)


def _eg(objs, kind, name=None):
    return next(o for _, o in objs if o["kind"] == kind and k8s_check.is_gateway(o)
                and (name is None or o["metadata"]["name"] == name))


def _api_rule(objs):
    return _eg(objs, "HTTPRoute", "kubernetes-api")["spec"]["rules"][0]


@pytest.mark.parametrize("mutate,needle", [
    (lambda objs: _eg(objs, "EnvoyProxy")["spec"]["provider"]["kubernetes"]["envoyDeployment"]["container"].pop("env"),
     "env.hostKeys KUBEGATE_SA_TOKEN is not set on the proxy container"),
    (lambda objs: _eg(objs, "EnvoyExtensionPolicy")["spec"]["wasm"][0]["env"].update(hostKeys=[]),
     "config reads KUBEGATE_SA_TOKEN but env.hostKeys does not provide it"),
    (lambda objs: _eg(objs, "EnvoyExtensionPolicy")["spec"]["targetRefs"][0].update(name="other"),
     "target Gateway 'other' does not exist"),
    (lambda objs: _eg(objs, "EnvoyProxy")["spec"]["provider"]["kubernetes"]["envoyDeployment"]["container"]["env"][0]
     ["valueFrom"]["secretKeyRef"].update(name="kubegate-token"),
     "Secret envoy-gateway-system/kubegate-token is not in the examples"),
    (lambda objs: _api_rule(objs).pop("timeouts"), "timeouts.request: set 0s"),
    (lambda objs: _eg(objs, "BackendTrafficPolicy")["spec"].update(httpUpgrade=[{"type": "websocket"}]),
     "no BackendTrafficPolicy httpUpgrade 'spdy/3.1'"),
    (lambda objs: _eg(objs, "BackendTrafficPolicy")["spec"].pop("useClientProtocol"), "useClientProtocol: true"),
    (lambda objs: _eg(objs, "BackendTLSPolicy", "kubernetes-api")["spec"]["validation"].update(hostname="kubernetes"),
     "must verify the name kubernetes.default.svc"),
    (lambda objs: _eg(objs, "BackendTLSPolicy", "kubernetes-api")["spec"]["targetRefs"][0].update(name="other"),
     "no BackendTLSPolicy for Service default/kubernetes"),
    (lambda objs: _eg(objs, "ReferenceGrant", "kubegate-to-kubernetes-api")["spec"]["from"][0].update(namespace="x"),
     "without a ReferenceGrant in default"),
    (lambda objs: _eg(objs, "GatewayClass")["spec"].update(controllerName="istio.io/gateway-controller"),
     "is not Envoy Gateway's"),
    (lambda objs: _eg(objs, "Gateway")["spec"].pop("infrastructure"), "no EnvoyProxy"),
    (lambda objs: _eg(objs, "Gateway")["spec"]["listeners"][0]["tls"].pop("certificateRefs"),
     "HTTPS listener 'https' without tls.certificateRefs"),
    (lambda objs: _eg(objs, "HTTPRoute", "pomerium-jwks")["spec"]["parentRefs"][0].update(name="nope"),
     "parent Gateway 'nope' does not exist"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_envoy_gateway_wiring(mutate, needle):
    objs = copy.deepcopy(_all_objects())
    assert k8s_check.wiring_errors(objs, ec.token_env_names) == []
    mutate(objs)
    errors = k8s_check.wiring_errors(objs, ec.token_env_names)
    assert has(errors, needle), (needle, errors)


def test_envoyproxy_access_log_names_the_user_and_no_credential():
    proxy = yamlutil.load_one((EXAMPLES / "envoy-gateway/envoyproxy.yaml").read_text())
    assert ec.envoyproxy_errors(proxy) == []
    fmt = proxy["spec"]["telemetry"]["accessLog"]["settings"][0]["format"]["json"]
    bad = copy.deepcopy(proxy)
    bad["spec"]["telemetry"]["accessLog"]["settings"][0]["format"]["json"].pop("kubernetes_user")
    assert has(ec.envoyproxy_errors(bad), "does not print %FILTER_STATE(wasm.kubegate.user:PLAIN)%")
    bad = copy.deepcopy(proxy)
    bad["spec"]["telemetry"]["accessLog"]["settings"][0]["format"]["json"]["cookie"] = "%REQ(cookie)%"
    assert has(ec.envoyproxy_errors(bad), "prints a credential")
    bad = copy.deepcopy(proxy)
    bad["spec"].pop("telemetry")
    assert has(ec.envoyproxy_errors(bad), "log each request with the Kubernetes user")
    # the same fields as the bootstraps' access logs
    envoy_fmt = hcm_of(bootstrap("in-cluster.yaml"))["access_log"][0]["typed_config"]["log_format"]["json_format"]
    assert {k: v for k, v in fmt.items() if k != "upstream_cluster"} == envoy_fmt


def test_extension_policy_is_checked_against_envoy_gateways_crd_with_its_cel_rules():
    crd = ec.extensionpolicy_crd()
    rules = []

    def collect(node):
        if isinstance(node, dict):
            rules.extend(r["rule"] for r in node.get("x-kubernetes-validations", []))
            for v in node.values():
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)
    collect(yamlutil.load_one(ec.EXTENSIONPOLICY_CRD.read_text()))
    assert len(rules) >= 20  # the CRD's CEL rules, all compiled by cel-python
    for rule in rules:
        crd_check._env.compile(rule)
    policy = yamlutil.load_one((EXAMPLES / "envoy-gateway/extension-policy.yaml").read_text())
    assert crd.validate(policy) == []
    errors, confs = ec.check_extensionpolicy(policy)
    assert errors == [] and [n for n, _ in confs] == ["envoy-gateway-kubegate.json"]
    # failOpen may be left out (false is the default)
    policy["spec"]["wasm"][0].pop("failOpen")
    assert ec.check_extensionpolicy(policy)[0] == []


def test_kubernetes_schema_rejects_unknown_fields_and_wrong_types():
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "a", "namespace": "b"}}
    assert k8s_check.schema_errors(sa) == []
    assert has(k8s_check.schema_errors({**sa, "secrets": "x"}), "is not of type 'array'")
    assert has(k8s_check.schema_errors({**sa, "imagePullSecret": []}), "'imagePullSecret' was unexpected")


# ---- CRD semantics beyond plain JSON Schema --------------------------------------------------

TRANSITION_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "x-kubernetes-validations": [
            {"rule": "self == oldSelf", "message": "id is immutable"}]},
        "items": {
            "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "required": ["name"],
                      "properties": {"name": {"type": "string"}, "size": {"type": "integer"}},
                      "x-kubernetes-validations": [
                          {"rule": "self.size >= oldSelf.size", "message": "size may only grow"}]},
        },
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
    },
}


def test_transition_rules_run_on_update_only_and_correlate_list_map_items():
    v = crd_check.Validator(TRANSITION_SCHEMA)
    new = {"id": "a", "items": [{"name": "x", "size": 1}]}
    assert v.validate(new) == []  # create: no oldSelf, rules skipped
    assert v.validate(new, old={"id": "a", "items": [{"name": "x", "size": 1}]}) == []
    assert has(v.validate({**new, "id": "b"}, old=new), "id is immutable")
    shrunk = {"id": "a", "items": [{"name": "x", "size": 0}]}
    assert has(v.validate(shrunk, old=new), "size may only grow")
    # an item with a new key has no old counterpart: its transition rule does not run
    assert v.validate({"id": "a", "items": [{"name": "y", "size": 0}]}, old=new) == []
    assert has(v.validate({"tags": ["a", "a"]}), "Duplicate value")
    assert has(v.validate({"items": [{"size": 1}]}), "items[0].name: Required value")


@pytest.mark.parametrize("url,ok,scheme", [
    ("http://test", True, "http"), ("oci://ghcr.io/a/b:1.0", True, "oci"),
    ("file:///opt/filters/x.wasm", True, "file"), ("HTTPS://Example.com/x", True, "https"),
    ("test", False, None), ("#%blah$#@", False, None), ("http://#%blah$#@", False, None),
    ("http://host:port/", False, None), ("http://a b/", False, None), ("/just/a/path", True, ""),
    ("http://h/%zz", False, None), ("mailto:someone@example.com", True, "mailto"), ("", False, None),
])
def test_go_parse_request_uri(url, ok, scheme):
    if ok:
        assert crd_check.parse_request_uri(url).scheme == scheme
    else:
        with pytest.raises(crd_check.GoURLError):
            crd_check.parse_request_uri(url)


# ---- OCI image ------------------------------------------------------------------------------

def _wasm_bytes() -> bytes:
    built = REPO / "target/wasm32-wasip1/release/kubegate.wasm"
    return built.read_bytes() if built.is_file() else b"\0asm\x01\0\0\0" + b"\0" * 64


def _layout_blobs(layout: Path) -> tuple[dict, dict]:
    index = json.loads((layout / "index.json").read_text())
    blobs = {}
    for p in (layout / "blobs/sha256").iterdir():
        data = p.read_bytes()
        assert hashlib.sha256(data).hexdigest() == p.name  # content-addressed
        blobs["sha256:" + p.name] = data
    return index, blobs


def _istio_extract(manifest: dict, blobs: dict) -> bytes:
    """The rules of Istio's pkg/wasm/imagefetcher.go for an OCI (non-Docker) manifest:
    first the compat variant (one tar+gzip layer holding plugin.wasm), else the oci variant
    (exactly two layers, one of them the raw module)."""
    layers = manifest["layers"]
    if len(layers) == 1 and layers[0]["mediaType"] == oci.OCI_LAYER_TGZ:
        data = blobs[layers[0]["digest"]]
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tar:
            for member in tar:
                if Path(member.name).name == "plugin.wasm":
                    return tar.extractfile(member).read()
        raise AssertionError("plugin.wasm not in the layer")
    assert len(layers) == 2, "oci variant needs exactly two layers"
    wasm_layer = next(l for l in layers if l["mediaType"] == oci.WASM_CONTENT)
    return blobs[wasm_layer["digest"]]


@pytest.mark.parametrize("variant", ["compat", "oci"])
def test_oci_image_is_what_istio_can_pull(variant, tmp_path):
    wasm = _wasm_bytes()
    out = tmp_path / "oci"
    (tmp_path / "k.wasm").write_bytes(wasm)
    r = subprocess.run([sys.executable, str(SCRIPTS / "oci.py"), "--wasm", str(tmp_path / "k.wasm"),
                        "--out", str(out), "--variant", variant], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    layout = out / f"kubegate-{variant}"
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index, blobs = _layout_blobs(layout)
    (mdesc,) = index["manifests"]
    manifest_bytes = blobs[mdesc["digest"]]
    assert len(manifest_bytes) == mdesc["size"]
    manifest = json.loads(manifest_bytes)
    assert manifest["schemaVersion"] == 2 and manifest["mediaType"] == oci.OCI_MANIFEST
    for desc in [manifest["config"], *manifest["layers"]]:
        assert len(blobs[desc["digest"]]) == desc["size"]
    assert _istio_extract(manifest, blobs) == wasm
    if variant == "compat":
        assert manifest["annotations"][oci.VARIANT_ANNOTATION] == "compat"
        assert manifest["config"]["mediaType"] == oci.OCI_CONFIG
        config = json.loads(blobs[manifest["config"]["digest"]])
        layer_tar = gzip.decompress(blobs[manifest["layers"][0]["digest"]])
        assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]
    # the archive holds the same layout
    with tarfile.open(out / f"kubegate-{variant}.tar") as tar:
        names = set(tar.getnames())
    assert {"oci-layout", "index.json"} <= names
    assert {f"blobs/sha256/{d.split(':')[1]}" for d in blobs} <= names
    assert mdesc["digest"].split(":")[1] in r.stdout  # the digest to pin in the WasmPlugin


def test_oci_build_is_reproducible_and_refuses_non_wasm():
    wasm = _wasm_bytes()
    assert oci.build(wasm) == oci.build(wasm)
    with pytest.raises(ValueError):
        oci.build(b"MZ not wasm")


# ---- helpers: renderer, dev token, make envoy ---------------------------------------------

def test_render_replaces_marked_values_only_and_refuses_typos_and_unsafe_values():
    text = (EXAMPLES / "envoy/local-standin.yaml").read_text()
    out = render.render(text, {"KUBEGATE_UPSTREAM_SAN": "apiserver.internal",
                               "KUBEGATE_DEV_HMAC_B64": ec.TEST_VALUES["KUBEGATE_DEV_HMAC_B64"]})
    doc = yamlutil.load_one(out)
    tls = cluster(doc, "kube_apiserver")["transport_socket"]["typed_config"]
    assert tls["sni"] == "apiserver.internal"
    assert tls["common_tls_context"]["validation_context"]["match_typed_subject_alt_names"][0]["matcher"] == {
        "exact": "apiserver.internal"}
    conf = kubegate_conf(doc)
    assert conf["jwt"][0]["keys"]["hmac"][0]["secret_base64"] == ec.TEST_VALUES["KUBEGATE_DEV_HMAC_B64"]
    # everything else as it was: the kubegate configuration apart from the key, the rest of the file
    original = kubegate_conf(bootstrap("local-standin.yaml"))
    original["jwt"][0]["keys"]["hmac"][0]["secret_base64"] = ec.TEST_VALUES["KUBEGATE_DEV_HMAC_B64"]
    assert conf == original
    assert len(out.splitlines()) == len(text.splitlines())
    assert render.render(text, {}) == text
    with pytest.raises(render.RenderError, match="not a setting of this bootstrap"):
        render.render(text, {"KUBEGATE_JWKS_CA": "/x.crt"})
    with pytest.raises(render.RenderError, match="only letters"):
        render.render(text, {"KUBEGATE_ADMIN_PORT": "1 }\nevil: yes"})
    with pytest.raises(render.RenderError, match="did you mean KUBEGATE_UPSTREAM_CA"):
        render.overrides_for(text, {"KUBEGATE_UPSTREM_CA": "/x.crt"})
    # run_envoy.sh's own variables and other bootstraps' settings are not this one's business
    assert render.overrides_for(text, {"KUBEGATE_SA_TOKEN_FILE": "t", "KUBEGATE_JWKS_CA": "/c"},
                                elsewhere={"KUBEGATE_JWKS_CA"}) == {}


def test_dev_token_is_a_valid_hs256_jwt_for_the_local_example():
    key = base64.b64decode(ec.TEST_VALUES["KUBEGATE_DEV_HMAC_B64"])
    token = dev_token.mint(key, "someuser@example.com", ["dev"], 300, now=1_700_000_000)
    head, body, sig = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
    expect = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(pad(sig)) == expect
    claims = json.loads(base64.urlsafe_b64decode(pad(body)))
    conf = kubegate_conf(bootstrap("local-standin.yaml"))
    (authn,) = conf["jwt"]
    assert claims["iss"] == authn["issuer"]["url"]
    assert claims["aud"] in authn["issuer"]["audiences"]
    assert json.loads(base64.urlsafe_b64decode(pad(head)))["kid"] == authn["keys"]["hmac"][0]["kid"]
    assert claims["email"].endswith("@example.com")  # the local policy: domain is example.com
    assert claims["exp"] - claims["iat"] == 300
    assert json.loads(base64.urlsafe_b64decode(pad(head)))["alg"] == "HS256"


def _run_envoy(tmp_path: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["/bin/bash", str(SCRIPTS / "run_envoy.sh"), *args], capture_output=True,
                          text=True, env=env, cwd=REPO, timeout=60)


def test_make_envoy_without_func_e_explains_how_to_get_it(tmp_path):
    bin_dir = tmp_path / "bin"  # the script's tools, but no func-e
    bin_dir.mkdir()
    for tool in ("dirname", "cat"):
        (bin_dir / tool).symlink_to(subprocess.run(["/bin/sh", "-c", f"command -v {tool}"],
                                                   capture_output=True, text=True).stdout.strip())
    r = _run_envoy(tmp_path, {"PATH": str(bin_dir), "HOME": str(tmp_path)}, "--check")
    assert r.returncode != 0
    assert "func-e.io/install.sh" in r.stderr and "go install" in r.stderr


def test_make_envoy_renders_and_hands_the_token_through_the_environment(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    seen = tmp_path / "seen"
    fake = bin_dir / "func-e"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {seen}.args\n'
                    f'printf "%s" "$KUBEGATE_SA_TOKEN" > {seen}.token\ncp "$3" {seen}.yaml\n')
    fake.chmod(0o755)
    wasm = tmp_path / "kubegate.wasm"
    wasm.write_bytes(_wasm_bytes())
    token = "sa-token-" + "x" * 40
    (tmp_path / "token").write_text(token + "\n")
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(tmp_path),
        "EXAMPLE": "local-standin-skip-verify", "KUBEGATE_WASM": str(wasm),
        "KUBEGATE_SA_TOKEN_FILE": str(tmp_path / "token"),
        "KUBEGATE_TLS_CERT": str(tmp_path / "c.crt"), "KUBEGATE_TLS_KEY": str(tmp_path / "c.key"),
        "KUBEGATE_DEV_HMAC_B64": ec.TEST_VALUES["KUBEGATE_DEV_HMAC_B64"],
    }
    r = _run_envoy(tmp_path, env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "seen.args").read_text().split() == ["run", "-c", str(REPO / "build/envoy/local-standin-skip-verify.yaml")]
    assert (tmp_path / "seen.token").read_text() == token
    text = (tmp_path / "seen.yaml").read_text()
    assert token not in text and "${" not in text
    doc = yamlutil.load_one(text)
    assert errors_of(doc, skip_verify=True) == []
    assert wasm_filter(doc)["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"] == str(wasm)
    # the copy verifies tokens with the key make envoy made, not the public one in git
    assert kubegate_conf(doc)["jwt"][0]["keys"]["hmac"][0]["secret_base64"] == ec.TEST_VALUES["KUBEGATE_DEV_HMAC_B64"]
    # without a token it refuses, and says how to get one
    env.pop("KUBEGATE_SA_TOKEN_FILE")
    r = _run_envoy(tmp_path, env)
    assert r.returncode != 0 and "kubegate-token" in r.stderr


# ---- the RBAC manifests against the API-server stand-in (tests/apiserver) ---------------------

# Where cargo put it: CARGO_TARGET_DIR when set (make validate-examples builds it there too).
STANDIN = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "debug/kube-apiserver-standin"


@pytest.fixture
def standin(tmp_path):
    """The stand-in, loaded with our manifests, caller = kubegate's service account."""
    if not STANDIN.is_file():
        message = "kube-apiserver-standin not built (cargo build -p kube-apiserver-standin)"
        if os.environ.get("KUBEGATE_REQUIRE_STANDIN"):  # `make validate-examples` builds it
            pytest.fail(message)
        pytest.skip(message)
    import socket
    import time
    import urllib.request
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ca = tmp_path / "ca.crt"
    k8s = EXAMPLES / "kubernetes"

    def start(*manifests: str) -> tuple[str, subprocess.Popen]:
        args = [str(STANDIN), "--listen", f"127.0.0.1:{port}", "--token", "sa-token",
                "--service-account", "kubegate-system/kubegate", "--print-ca", str(ca)]
        for m in manifests:
            args += ["--manifest", str(k8s / m)]
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for _ in range(100):
            if ca.exists() and ca.stat().st_size:
                return f"https://localhost:{port}", proc
            time.sleep(0.05)
        proc.kill()
        raise AssertionError(proc.stdout.read().decode())

    procs = []

    def run(*manifests):
        url, proc = start(*manifests)
        procs.append(proc)
        return url

    yield run, ca
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


def _call(base: str, ca: Path, path: str, method: str = "GET", headers: dict | None = None) -> int:
    import ssl
    import urllib.error
    import urllib.request
    ctx = ssl.create_default_context(cafile=str(ca))
    req = urllib.request.Request(base + path, method=method, data=b"{}" if method == "POST" else None,
                                 headers={"Authorization": "Bearer sa-token",
                                          "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_rbac_manifests_grant_impersonation_and_nothing_else(standin):
    run, ca = standin
    base = run("namespace.yaml", "service-account.yaml", "rbac.yaml", "user-binding.yaml")
    pods = "/api/v1/namespaces/default/pods"
    someuser = {"Impersonate-User": "someuser@example.com"}
    assert _call(base, ca, pods, headers=someuser) == 200             # view, via user-binding.yaml
    assert _call(base, ca, pods, "POST", headers=someuser) == 403     # view is read-only
    assert _call(base, ca, pods, headers={"Impersonate-User": "nobody@example.com"}) == 403
    assert _call(base, ca, pods) == 403                               # the SA itself: no access
    # uid/extra impersonation needs the optional role
    assert _call(base, ca, pods, headers={**someuser, "Impersonate-Uid": "1"}) == 403


def test_uid_and_extra_impersonation_with_the_optional_role(standin):
    run, ca = standin
    base = run("namespace.yaml", "service-account.yaml", "rbac.yaml", "rbac-uid-extra.yaml",
               "user-binding.yaml")
    headers = {"Impersonate-User": "someuser@example.com", "Impersonate-Uid": "1",
               "Impersonate-Extra-acme.com%2Fproject": "p"}
    assert _call(base, ca, "/api/v1/namespaces/default/pods", headers=headers) == 200
