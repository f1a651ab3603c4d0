#!/usr/bin/env python3
"""Regenerates fuzz/seeds/ from the shared test vectors and filter-config/ (run from fuzz/).

The seeds stay small on purpose: a few dozen files per target. libFuzzer reads them as a
read-only corpus next to the working corpus in fuzz/corpus/ (not committed). Each target's
folder is replaced as a whole, so seeds of configurations that changed shape do not linger.
"""
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TESTDATA = os.path.join(os.path.dirname(ROOT), "shared", "testdata")
if len(sys.argv) > 1:
    TESTDATA = sys.argv[1]


# target -> {file name: bytes}; written at the end, once every input has been read.
SEEDS = {}


def write(target, data):
    if isinstance(data, str):
        data = data.encode()
    name = hashlib.sha1(data).hexdigest()[:16]
    SEEDS.setdefault(target, {})[name] = data


def flush():
    for target, files in sorted(SEEDS.items()):
        folder = os.path.join(HERE, target)
        os.makedirs(folder, exist_ok=True)
        for old in os.listdir(folder):
            if old not in files:
                os.remove(os.path.join(folder, old))
        for name, data in files.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)


def load(*path):
    with open(os.path.join(TESTDATA, *path)) as f:
        return json.load(f)


# jwt: mode byte 0 + token text, 2 + claims JSON.
signature = load("wycheproof", "json_web_signature_test.json")
tokens = []
for group in signature["testGroups"]:
    for test in group["tests"]:
        if isinstance(test.get("jws"), str):
            tokens.append(test["jws"])
tokens = sorted(set(tokens), key=lambda t: (len(t), t))[:24]
for example in load("rfc7515", "rfc7515_appendix_a.json")["examples"]:
    if isinstance(example.get("compact"), str):
        tokens.append(example["compact"])
for token in tokens:
    write("jwt", b"\x00" + token.encode())
for claims in [
    {"iss": "https://issuer.example", "aud": "k8s.example.com", "email": "a@example.com",
     "exp": 1700000300, "iat": 1700000000},
    {"iss": "https://issuer.example", "aud": ["x", "k8s.example.com"], "email": "a@example.com",
     "exp": 1700000300, "iat": 1700000000, "nbf": 1699999999, "groups": ["dev"]},
    {"exp": "1700000300", "iat": 1.5, "aud": 7},
]:
    write("jwt", b"\x02" + json.dumps(claims).encode())
write("jwt", b"\x01" + b'{"alg":"HS256","kid":"fuzz"}' + b"\xff" + b'{"exp":1700000300}')

# jwks: Wycheproof's JWK sets and single keys as JWKS documents.
keys = load("wycheproof", "json_web_key_test.json")
for group in keys["testGroups"][:6]:
    private = group.get("private")
    if isinstance(private, dict) and "keys" in private:
        public = {"keys": [{k: v for k, v in key.items() if k not in ("d", "p", "q", "dp", "dq", "qi", "k")}
                           for key in private["keys"]]}
        write("jwks", json.dumps(public))
for group in signature["testGroups"]:
    key = group.get("public") or group.get("private")
    if isinstance(key, dict):
        write("jwks", json.dumps({"keys": [key]}))

# config: the example configurations.
configs = sorted(os.listdir(os.path.join(ROOT, "filter-config")))
for name in configs:
    with open(os.path.join(ROOT, "filter-config", name), "rb") as f:
        write("config", f.read())

# policy: each example route's policy with a few request facts.
for name in configs:
    with open(os.path.join(ROOT, "filter-config", name)) as f:
        config = json.load(f)
    for route in config.get("routes", []):
        policy = json.dumps(route["policy"]).encode()
        for method, path in [(b"GET", b"/api/v1/namespaces/default/pods"),
                             (b"DELETE", b"/api/v1/namespaces/kube-system/secrets/x")]:
            write("policy", b"\x00".join([policy, b'{"sub":"u1","email":"a@example.com","groups":["dev"]}',
                                          method, path, b"a@example.com", b"dev,ops"]))

flush()
