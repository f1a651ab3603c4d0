"""Validate everything under envoy-examples/ and extract the kubegate configurations.

  envoy/*.yaml       Envoy v3 bootstraps (templates): rendered with test values, then parsed
                     strictly against Envoy's API (envoy_check.py).
  istio/, kubernetes/ Kubernetes objects: WasmPlugins against Istio's CRD schema with its CEL
                     rules (crd_check.py), built-in kinds against Kubernetes' own schemas, and
                     the wiring between all of them (k8s_check.py).

Every kubegate configuration found (the Wasm filter's StringValue in a bootstrap, a
WasmPlugin's pluginConfig as Istio hands it over) is written to build/examples-config/*.json
for kubegate's own parser to check (a Rust test reads them), with a list in
build/examples-config/INDEX.

Run through ../validate.py: [--out DIR] [--quiet]      exit status 1 when anything is wrong
"""
from __future__ import annotations

import argparse
import json
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

# Values the templates are rendered with for validation: realistic, and valid for every
# check (the HMAC key is 32 bytes, base64).
TEST_VALUES = {
    "KUBEGATE_WASM": "/opt/kubegate/kubegate.wasm",
    "KUBEGATE_LISTEN_ADDRESS": "0.0.0.0",
    "KUBEGATE_LISTEN_PORT": "8443",
    "KUBEGATE_TLS_CERT": "/etc/kubegate/tls/tls.crt",
    "KUBEGATE_TLS_KEY": "/etc/kubegate/tls/tls.key",
    "KUBEGATE_UPSTREAM_ADDRESS": "127.0.0.1",
    "KUBEGATE_UPSTREAM_PORT": "6443",
    "KUBEGATE_UPSTREAM_CA": "/etc/kubegate/upstream-ca.crt",
    "KUBEGATE_UPSTREAM_SAN": "localhost",
    "KUBEGATE_JWKS_ADDRESS": "k8s.localhost.pomerium.io",
    "KUBEGATE_JWKS_PORT": "443",
    "KUBEGATE_JWKS_CA": "/etc/ssl/certs/ca-certificates.crt",
    "KUBEGATE_ADMIN_PORT": "9901",
    "KUBEGATE_DEV_HMAC_B64": "a3ViZWdhdGUtZXhhbXBsZXMtdGVzdC1rZXktMzJieXQ=",
}


@dataclass
class FileReport:
    path: Path
    errors: list[str] = field(default_factory=list)
    # (output name, kubegate configuration)
    configs: list[tuple[str, dict]] = field(default_factory=list)
    objects: list[dict] = field(default_factory=list)


_crd: crd_check.CRD | None = None


def wasmplugin_crd() -> crd_check.CRD:
    global _crd
    if _crd is None:
        _crd = crd_check.CRD(yamlutil.load_one(WASMPLUGIN_CRD.read_text()))
    return _crd


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
    rep = FileReport(path)
    try:
        doc = yamlutil.load_one(render.render(text, TEST_VALUES))
    except (ValueError, render.RenderError) as e:
        rep.errors.append(str(e))
        return rep
    res = envoy_check.check(doc, allow_skip_verify="skip-verify" in path.name)
    rep.errors += res.errors
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

