#!/usr/bin/env python3
"""Fill the ${KUBEGATE_*} names in an envoy-examples/envoy/*.yaml template.

Why not envsubst: envsubst replaces an unset or misspelt name with nothing, and an empty
address or certificate path then shows up as a confusing Envoy start-up error (or, worse, a
listener on an address nobody meant). Here every name must be known and set, and a value may
only hold characters that cannot change the YAML's structure.

Usage: render.py TEMPLATE OUTPUT   (values come from the environment, then from DEFAULTS)
Standard library only: `make envoy` runs it with the system python3.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

NAME = re.compile(r"\$\{(KUBEGATE_[A-Z0-9_]+)\}")
# Paths, host names, addresses, ports and base64: nothing that YAML or the embedded JSON
# string would read as syntax (no quotes, colons-space, '#', braces, newlines).
SAFE_VALUE = re.compile(r"^[A-Za-z0-9._/+=@-][A-Za-z0-9._/+=@:-]*$")

REPO = Path(__file__).resolve().parents[3]

# Defaults per example (the template file's stem). The service-account token is not here:
# it reaches Envoy as an environment variable and the VM through host_env_keys.
_LOCAL = {
    "KUBEGATE_WASM": str(REPO / "target/wasm32-wasip1/release/kubegate.wasm"),
    "KUBEGATE_LISTEN_ADDRESS": "127.0.0.1",
    "KUBEGATE_LISTEN_PORT": "8443",
    "KUBEGATE_TLS_CERT": str(REPO / "build/envoy/tls/listener.crt"),
    "KUBEGATE_TLS_KEY": str(REPO / "build/envoy/tls/listener.key"),
    "KUBEGATE_UPSTREAM_ADDRESS": "127.0.0.1",
    "KUBEGATE_UPSTREAM_PORT": "6443",
    "KUBEGATE_UPSTREAM_SAN": "localhost",
    "KUBEGATE_ADMIN_PORT": "9901",
}
DEFAULTS: dict[str, dict[str, str]] = {
    "local-standin": dict(_LOCAL),
    "local-standin-skip-verify": dict(_LOCAL),
    "in-cluster": {
        "KUBEGATE_WASM": "/etc/kubegate/kubegate.wasm",
        "KUBEGATE_LISTEN_ADDRESS": "0.0.0.0",
        "KUBEGATE_LISTEN_PORT": "8443",
        "KUBEGATE_TLS_CERT": "/etc/kubegate/tls/tls.crt",
        "KUBEGATE_TLS_KEY": "/etc/kubegate/tls/tls.key",
        "KUBEGATE_UPSTREAM_ADDRESS": "kubernetes.default.svc",
        "KUBEGATE_UPSTREAM_PORT": "443",
        "KUBEGATE_UPSTREAM_CA": "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt",
        "KUBEGATE_JWKS_ADDRESS": "k8s.localhost.pomerium.io",
        "KUBEGATE_JWKS_PORT": "443",
        "KUBEGATE_JWKS_CA": "/etc/ssl/certs/ca-certificates.crt",
        "KUBEGATE_ADMIN_PORT": "9901",
    },
}


class RenderError(ValueError):
    pass


def names(text: str) -> list[str]:
    """The template names used in `text`, in order of first use."""
    seen: dict[str, None] = {}
    for m in NAME.finditer(text):
        seen.setdefault(m.group(1), None)
    return list(seen)


def render(text: str, values: dict[str, str]) -> str:
    missing = [n for n in names(text) if n not in values]
    if missing:
        raise RenderError("unset template names: " + ", ".join(missing))
    for n in names(text):
        v = values[n]
        if not SAFE_VALUE.match(v):
            raise RenderError(f"{n}={v!r}: only letters, digits and ._/+=@:- are allowed")
    return NAME.sub(lambda m: values[m.group(1)], text)


def values_for(example: str, env: dict[str, str] | None = None) -> dict[str, str]:
    env = os.environ if env is None else env
    vals = dict(DEFAULTS.get(example, {}))
    vals.update({k: v for k, v in env.items() if k.startswith("KUBEGATE_")})
    return vals


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    template, output = Path(argv[1]), Path(argv[2])
    try:
        out = render(template.read_text(), values_for(template.stem))
    except RenderError as e:
        print(f"render {template}: {e}", file=sys.stderr)
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
