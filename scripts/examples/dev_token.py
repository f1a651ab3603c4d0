#!/usr/bin/env python3
"""Mint a short-lived HS256 session JWT for the local Envoy example (local-standin*.yaml).

Development only: the key is the shared secret in build/envoy/dev-hmac.b64 (or
$KUBEGATE_DEV_HMAC_B64), which `make envoy` creates. By default the output is a kubectl
ExecCredential, so this script is itself a kubectl exec credential plugin:

  kubectl config set-credentials via-kubegate-dev \
    --exec-api-version=client.authentication.k8s.io/v1 \
    --exec-command=python3 --exec-arg="$PWD/scripts/examples/dev_token.py" \
    --exec-arg=--email=someuser@example.com --exec-interactive-mode=Never

--raw prints only the token (for curl). Standard library only.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KEY_FILE = REPO / "build/envoy/dev-hmac.b64"
# Must agree with the "jwt" authenticator of envoy-examples/envoy/local-standin*.yaml
# (issuer.url, issuer.audiences, keys.hmac[0].kid).
ISSUER = "https://kubegate.localhost"
AUDIENCE = "k8s.localhost.pomerium.io"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def secret() -> bytes:
    value = os.environ.get("KUBEGATE_DEV_HMAC_B64")
    if not value:
        if not KEY_FILE.exists():
            sys.exit(f"no development key: run `make envoy` once, or set KUBEGATE_DEV_HMAC_B64")
        value = KEY_FILE.read_text().strip()
    return base64.b64decode(value, validate=True)


def mint(key: bytes, email: str, groups: list[str], ttl: int, now: int | None = None) -> str:
    now = int(time.time()) if now is None else now
    header = {"alg": "HS256", "typ": "JWT", "kid": "dev"}
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": email,
        "email": email,
        "groups": groups,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
    }
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    sig = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(sig)}"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--email", default="someuser@example.com")
    p.add_argument("--group", action="append", default=[], help="repeatable")
    p.add_argument("--ttl", type=int, default=300, help="seconds (Pomerium uses 5 minutes)")
    p.add_argument("--raw", action="store_true", help="print only the token")
    args = p.parse_args(argv)
    now = int(time.time())
    token = mint(secret(), args.email, args.group, args.ttl, now)
    if args.raw:
        print(token)
        return 0
    # kubectl caches the credential until expirationTimestamp, then runs the plugin again.
    expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + args.ttl - 30))
    print(json.dumps({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": token, "expirationTimestamp": expiry},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
