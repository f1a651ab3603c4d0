"""Validate everything under envoy-examples/ and extract the kubegate configurations.

  envoy/*.yaml       Envoy v3 bootstraps: parsed strictly against Envoy's API as they stand,
                     and again with make envoy's overrides applied (envoy_check.py, render.py).
  istio/, kubernetes/, envoy-gateway/
                     Kubernetes objects: WasmPlugins against Istio's CRD schema and
                     EnvoyExtensionPolicies against Envoy Gateway's, CEL rules included
                     (crd_check.py), built-in kinds against Kubernetes' own schemas, and the
                     wiring between all of them (k8s_check.py).

Every kubegate configuration found (the Wasm filter's StringValue in a bootstrap, a
WasmPlugin's pluginConfig as Istio hands it over, an EnvoyExtensionPolicy's wasm[].config) is written to build/examples-config/*.json
for kubegate's own parser to check (a Rust test reads them), with a list in
build/examples-config/INDEX.

Run through ../validate.py: [--out DIR] [--quiet]      exit status 1 when anything is wrong
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent

import crd_check  # noqa: E402
import envoy_check  # noqa: E402
import k8s_check  # noqa: E402
import render  # noqa: E402
import yamlutil  # noqa: E402
from envoy.config.listener.v3 import listener_components_pb2  # noqa: E402

REPO = HERE.parents[2]
EXAMPLES = REPO / "envoy-examples"
SCHEMAS = REPO.parent / "shared/testdata/schemas"
WASMPLUGIN_CRD = SCHEMAS / "istio-wasmplugin-crd.yaml"
EXTENSIONPOLICY_CRD = SCHEMAS / "envoy-gateway-envoyextensionpolicies-crd.yaml"
# What Envoy Gateway's API source means for wasm code sha256 (its kubebuilder Pattern marker
# lacks the leading "+", so the generated CRD does not enforce it; the controller only finds a
# wrong digest when it downloads the module).
SHA256_HEX = re.compile(r"^[a-f0-9]{64}$")

# Overrides `make envoy` could apply (render.py), all different from the files' defaults:
# each bootstrap must stay valid with them as well as it stands (the HMAC key is 32 bytes,
# base64).
TEST_VALUES = {
    "KUBEGATE_WASM": "/opt/kubegate/kubegate.wasm",
    "KUBEGATE_LISTEN_ADDRESS": "0.0.0.0",
    "KUBEGATE_LISTEN_PORT": "9443",
    "KUBEGATE_TLS_CERT": "/etc/kubegate/tls/other.crt",
    "KUBEGATE_TLS_KEY": "/etc/kubegate/tls/other.key",
    "KUBEGATE_UPSTREAM_ADDRESS": "10.0.0.1",
    "KUBEGATE_UPSTREAM_PORT": "6444",
    "KUBEGATE_UPSTREAM_CA": "/etc/kubegate/upstream-ca.crt",
    "KUBEGATE_UPSTREAM_SAN": "apiserver.internal",
    "KUBEGATE_JWKS_ADDRESS": "pomerium.pomerium.svc",
    "KUBEGATE_JWKS_PORT": "8443",
    "KUBEGATE_JWKS_CA": "/etc/kubegate/pomerium-ca.crt",
    "KUBEGATE_ADMIN_PORT": "9902",
    "KUBEGATE_DEV_HMAC_B64": "a3ViZWdhdGUtZXhhbXBsZXMtdGVzdC1rZXktMzJieXQ=",
}
PLACEHOLDER = re.compile(r"\$\{[^}]*\}")


@dataclass
class FileReport:
    path: Path
    errors: list[str] = field(default_factory=list)
    # (output name, kubegate configuration)
    configs: list[tuple[str, dict]] = field(default_factory=list)
    objects: list[dict] = field(default_factory=list)


_crd: crd_check.CRD | None = None
_eep_crd: crd_check.CRD | None = None


def wasmplugin_crd() -> crd_check.CRD:
    global _crd
    if _crd is None:
        _crd = crd_check.CRD(yamlutil.load_one(WASMPLUGIN_CRD.read_text()))
    return _crd


def extensionpolicy_crd() -> crd_check.CRD:
    global _eep_crd
    if _eep_crd is None:
        _eep_crd = crd_check.CRD(yamlutil.load_one(EXTENSIONPOLICY_CRD.read_text()))
    return _eep_crd


def check_extensionpolicy(obj: dict) -> tuple[list[str], list[tuple[str, dict]]]:
    """An Envoy Gateway EnvoyExtensionPolicy: the CRD's schema and CEL rules, then what kubegate
    needs of each Wasm entry that carries its configuration. Returns (errors, configurations)."""
    errs = extensionpolicy_crd().validate(obj)
    confs: list[tuple[str, dict]] = []
    name = (obj.get("metadata") or {}).get("name", "")
    wasm = (obj.get("spec") or {}).get("wasm")
    entries = [w for w in wasm if isinstance(w, dict)] if isinstance(wasm, list) else []
    if not entries:
        errs.append("spec.wasm: kubegate needs a Wasm entry")
    for i, w in enumerate(entries):
        at = f"spec.wasm[{i}]"
        conf = w.get("config")
        if not isinstance(conf, dict):
            errs.append(f"{at}.config: kubegate needs its configuration (a JSON object)")
            continue
        if w.get("failOpen") is True:
            errs.append(f"{at}.failOpen: true lets requests through unauthenticated when the "
                        "module fails; leave it false")
        code = w.get("code") if isinstance(w.get("code"), dict) else {}
        source = code.get({"HTTP": "http", "Image": "image"}.get(code.get("type"), ""), None)
        if isinstance(source, dict):
            digest = source.get("sha256")
            if digest is None:
                errs.append(f"{at}.code: pin the module with sha256; without it Envoy Gateway "
                            "runs whatever the URL serves")
            elif not isinstance(digest, str) or not SHA256_HEX.match(digest):
                errs.append(f"{at}.code sha256: {digest!r} is not 64 lower-case hex digits")
            url = source.get("url", "")
            if code.get("type") == "HTTP" and isinstance(url, str) and not url.startswith("https://"):
                errs.append(f"{at}.code.http.url: fetch the module over https")
        hosts = (w.get("env") or {}).get("hostKeys") if isinstance(w.get("env"), dict) else None
        exposed = set(hosts) if isinstance(hosts, list) else set()
        errs += [f"{at}.config: {e}" for e in envoy_check.config_errors(conf, exposed, clusters=None)]
        suffix = f"-{i}" if len(entries) > 1 else ""
        confs.append((f"envoy-gateway-{name}{suffix}.json", json.loads(json.dumps(conf))))
    return errs, confs


def token_env_names(conf: dict) -> list[str]:
    """The environment variables a kubegate configuration reads: the routes' service-account
    tokens and the authenticators' HMAC secrets (keys.hmac[].secret_env)."""
    if not isinstance(conf, dict):
        return []
    routes = conf.get("routes")
    names = [r["kubernetes_service_account_token_env"] for r in routes or []
             if isinstance(r, dict) and isinstance(r.get("kubernetes_service_account_token_env"), str)]
    jwt = conf.get("jwt")
    for entry in jwt if isinstance(jwt, list) else []:
        keys = entry.get("keys") if isinstance(entry, dict) else None
        hmac = keys.get("hmac") if isinstance(keys, dict) else None
        names += [s["secret_env"] for s in (hmac if isinstance(hmac, list) else [])
                  if isinstance(s, dict) and isinstance(s.get("secret_env"), str)]
    return names


def is_bootstrap(path: Path, text: str) -> bool:
    return path.parent.name == "envoy" or "static_resources:" in text


def check_bootstrap(path: Path, text: str) -> FileReport:
    """The bootstrap as it stands (Envoy loads it so; it expands no ${VAR}), and the copy
    `make envoy` would write with every setting overridden: both must pass."""
    rep = FileReport(path)
    for n, line in enumerate(text.splitlines(), 1):
        if PLACEHOLDER.search(line):
            rep.errors.append(f"line {n}: {PLACEHOLDER.search(line).group(0)}: Envoy does not expand "
                              "variables in a bootstrap; write the concrete default and mark it "
                              "with a `# KUBEGATE_<NAME>` comment (render.py)")
    if rep.errors:
        return rep
    try:
        doc = yamlutil.load_one(text)
        known = render.settings(text)
        overridden = yamlutil.load_one(render.render(
            text, {k: v for k, v in TEST_VALUES.items() if k in known}))
    except (ValueError, render.RenderError) as e:
        rep.errors.append(str(e))
        return rep
    unknown = sorted(set(known) - set(TEST_VALUES))
    if unknown:
        rep.errors.append(f"settings without a test value in examples_check.TEST_VALUES: {unknown}")
    skip = "skip-verify" in path.name
    res = envoy_check.check(doc, allow_skip_verify=skip)
    rep.errors += res.errors
    rep.errors += [f"with make envoy's overrides: {e}"
                   for e in envoy_check.check(overridden, allow_skip_verify=skip).errors]
    for i, (_, conf) in enumerate(res.configs):
        suffix = f"-{i}" if len(res.configs) > 1 else ""
        rep.configs.append((f"envoy-{path.stem}{suffix}.json", conf))
    return rep


def check_envoyfilter(obj: dict) -> list[str]:
    """Each EnvoyFilter patch that carries a typed filter config is parsed strictly too."""
    out = []
    for i, p in enumerate((obj.get("spec") or {}).get("configPatches") or []):
        value = (p.get("patch") or {}).get("value")
        if p.get("applyTo") in ("NETWORK_FILTER", "HTTP_FILTER") and isinstance(value, dict):
            _, errs = envoy_check.parse(value, listener_components_pb2.Filter)
            out += [f"spec.configPatches[{i}].patch.value: {e}" for e in errs]
    return out


def check_manifests(path: Path, text: str) -> FileReport:
    rep = FileReport(path)
    try:
        docs = yamlutil.load_all(text)
    except (ValueError, Exception) as e:  # yaml errors
        rep.errors.append(f"YAML: {e}")
        return rep
    for n, obj in enumerate(docs):
        if not isinstance(obj, dict):
            rep.errors.append(f"document {n}: not a mapping")
            continue
        kind, ns, name = k8s_check._key(obj)
        label = f"document {n} ({kind} {name})"
        if kind == "WasmPlugin":
            errs = wasmplugin_crd().validate(obj)
            conf = (obj.get("spec") or {}).get("pluginConfig")
            if isinstance(conf, dict):
                # Istio turns pluginConfig (a protobuf Struct) into JSON for on_configure.
                errs += [f"spec.pluginConfig: {e}" for e in envoy_check.config_errors(
                    conf, set(token_env_names(conf)), clusters=None)]
                rep.configs.append((f"istio-wasmplugin-{name}.json", json.loads(json.dumps(conf))))
            else:
                errs.append("spec.pluginConfig: kubegate needs its configuration")
        elif kind == "EnvoyExtensionPolicy":
            errs, confs = check_extensionpolicy(obj)
            rep.configs += confs
        elif kind == "EnvoyProxy":
            errs = k8s_check.custom_resource_errors(obj)
            errs += envoyproxy_errors(obj)
        elif k8s_check.is_gateway(obj):
            errs = k8s_check.custom_resource_errors(obj)
        elif k8s_check.is_istio(obj):
            errs = []
            if not isinstance(obj.get("spec"), dict):
                errs.append("spec: Required value")
            if not (obj.get("metadata") or {}).get("namespace"):
                errs.append("metadata.namespace: set it explicitly")
            if kind == "EnvoyFilter":
                errs += check_envoyfilter(obj)
        else:
            errs = k8s_check.schema_errors(obj)
        rep.errors += [f"{label}: {e}" for e in errs]
        rep.objects.append(obj)
    return rep


def envoyproxy_errors(obj: dict) -> list[str]:
    """The proxy's access log must print the Kubernetes user and no credential."""
    settings = (((obj.get("spec") or {}).get("telemetry") or {}).get("accessLog") or {}).get("settings")
    if not isinstance(settings, list) or not settings:
        return [f"spec.telemetry.accessLog.settings: log each request with the Kubernetes user "
                f"({envoy_check.USER_IN_ACCESS_LOG})"]
    formats = []
    for s in settings:
        fmt = (s or {}).get("format") or {}
        formats += envoy_check.format_strings(fmt.get("json") if fmt.get("type") == "JSON" else fmt.get("text"))
    return envoy_check.access_log_format_errors(formats, "spec.telemetry.accessLog")


def check_file(path: Path) -> FileReport:
    text = path.read_text()
    return check_bootstrap(path, text) if is_bootstrap(path, text) else check_manifests(path, text)


def example_files(root: Path = EXAMPLES) -> list[Path]:
    return sorted(p for p in root.rglob("*.yaml") if p.is_file())


def check_all(files: list[Path]) -> tuple[list[FileReport], list[str]]:
    reports = [check_file(p) for p in files]
    objs = [(str(r.path.relative_to(REPO)) if r.path.is_relative_to(REPO) else str(r.path), o)
            for r in reports for o in r.objects]
    wiring = k8s_check.wiring_errors(objs, token_env_names) if objs else []
    return reports, wiring


def write_configs(reports: list[FileReport], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.json"):
        old.unlink()
    written, index = [], []
    for r in reports:
        for name, conf in r.configs:
            target = out_dir / name
            if target.exists():
                raise SystemExit(f"two configurations map to {target}")
            target.write_text(json.dumps(conf, indent=2, sort_keys=False) + "\n")
            written.append(target)
            src = r.path.relative_to(REPO) if r.path.is_relative_to(REPO) else r.path
            index.append(f"{name}\t{src}")
    (out_dir / "INDEX").write_text("".join(line + "\n" for line in index))
    return written


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "build/examples-config")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    files = example_files()
    reports, wiring = check_all(files)
    failed = 0
    for r in reports:
        rel = r.path.relative_to(REPO)
        if r.errors:
            failed += 1
            print(f"FAIL {rel}")
            for e in r.errors:
                print(f"     {e.splitlines()[0]}")
        elif not args.quiet:
            print(f"ok   {rel}")
    if wiring:
        failed += 1
        print("FAIL wiring between the example objects")
        for e in wiring:
            print(f"     {e}")
    if failed:
        print(f"examples: {len(files)} files, {failed} failing checks")
        return 1
    written = write_configs(reports, args.out)
    print(f"kubegate configurations extracted for the Rust parser ({args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}):")
    for w in written:
        print(f"     {w.name}")
    print(f"examples: {len(files)} files valid, {len(written)} configurations extracted")
    return 0

