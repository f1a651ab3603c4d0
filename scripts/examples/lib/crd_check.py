"""Validate custom resources against their CRD the way kube-apiserver does, offline.

Plain JSON Schema is not enough for a CRD's openAPIV3Schema. The API server also:
- evaluates x-kubernetes-validations CEL rules with `self` bound to the value at the rule's
  node (and `oldSelf` to the previous value on update: such transition rules are skipped on
  create, as the API server does);
- enforces x-kubernetes-list-type: map (every item has the x-kubernetes-list-map-keys, no
  two items share them) and set (no duplicates);
- honours x-kubernetes-preserve-unknown-fields, x-kubernetes-int-or-string and nullable;
- with kubectl's default strict field validation, rejects unknown fields.
Messages follow the API server's wording ("spec.url in body should be at least 1 chars
long", "Duplicate value", "Required value", the rule's own message), so tests can compare
them with Istio's expected errors.

CEL comes from cel-python; the Kubernetes CEL library functions the Istio CRD uses (isURL,
url(...).getScheme() and friends) are implemented here on a port of Go's
net/url.ParseRequestURI, because their results depend on Go's URL grammar.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import celpy
from celpy import celtypes

# ---- Go's net/url.ParseRequestURI ---------------------------------------------------

_HOST_OK = set("!$&'()*+,;=:[]<>\"-_.~")
_USERINFO_OK = set("-._:~!$&'()*+,;=%@")


class GoURLError(ValueError):
    pass


@dataclass
class GoURL:
    scheme: str = ""
    opaque: str = ""
    user: str | None = None
    host: str = ""
    path: str = ""
    raw_query: str = ""

    def hostname(self) -> str:
        h = self.host
        if h.startswith("["):
            return h[1:h.find("]")] if "]" in h else h[1:]
        i = h.rfind(":")
        return h[:i] if i >= 0 and _valid_port(h[i:]) else h

    def port(self) -> str:
        h = self.host
        if h.startswith("["):
            j = h.find("]")
            rest = h[j + 1:] if j >= 0 else ""
            return rest[1:] if rest.startswith(":") else ""
        i = h.rfind(":")
        return h[i + 1:] if i >= 0 and _valid_port(h[i:]) else ""


def _ishex(c: str) -> bool:
    return c in "0123456789abcdefABCDEF"


def _is_alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _valid_port(colon_port: str) -> bool:
    if colon_port == "":
        return True
    return colon_port[0] == ":" and all(c in "0123456789" for c in colon_port[1:])


def _unescape(s: str, host: bool) -> None:
    """Go's url.unescape, for validation only (the decoded value is not needed here)."""
    i = 0
    while i < len(s):
        c = s[i]
        if c == "%":
            if i + 2 >= len(s) or not (_ishex(s[i + 1]) and _ishex(s[i + 2])):
                raise GoURLError(f"invalid URL escape {s[i:i + 3]!r}")
            if host and int(s[i + 1], 16) < 8 and s[i:i + 3] != "%25":
                raise GoURLError(f"invalid URL escape {s[i:i + 3]!r}")
            i += 3
            continue
        if host and ord(c) < 0x80 and not (_is_alnum(c) or c in _HOST_OK):
            raise GoURLError(f"invalid character {c!r} in host name")
        i += 1


def _parse_host(host: str) -> str:
    if host.startswith("["):
        i = host.rfind("]")
        if i < 0:
            raise GoURLError("missing ']' in host")
        if not _valid_port(host[i + 1:]):
            raise GoURLError(f"invalid port {host[i + 1:]!r} after host")
    else:
        i = host.rfind(":")
        if i != -1 and not _valid_port(host[i:]):
            raise GoURLError(f"invalid port {host[i:]!r} after host")
    _unescape(host, host=True)
    return host


def _get_scheme(raw: str) -> tuple[str, str]:
    for i, c in enumerate(raw):
        if c.isascii() and c.isalpha():
            continue
        if c.isascii() and (c.isdigit() or c in "+-."):
            if i == 0:
                return "", raw
            continue
        if c == ":":
            if i == 0:
                raise GoURLError("missing protocol scheme")
            return raw[:i], raw[i + 1:]
        return "", raw
    return "", raw


def parse_request_uri(raw: str) -> GoURL:
    """Go's url.ParseRequestURI: an absolute URI or an absolute path; no fragment."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in raw):
        raise GoURLError("invalid control character in URL")
    if raw == "":
        raise GoURLError("empty url")
    if raw == "*":
        return GoURL(path="*")
    scheme, rest = _get_scheme(raw)
    u = GoURL(scheme=scheme.lower())
    if rest.endswith("?") and rest.count("?") == 1:
        rest = rest[:-1]
    elif "?" in rest:
        rest, u.raw_query = rest.split("?", 1)
    if not rest.startswith("/"):
        if u.scheme:
            u.opaque = rest
            return u
        raise GoURLError("invalid URI for request")
    if u.scheme and rest.startswith("//"):
        authority, rest = rest[2:], ""
        j = authority.find("/")
        if j >= 0:
            authority, rest = authority[:j], authority[j:]
        k = authority.rfind("@")
        if k >= 0:
            userinfo = authority[:k]
            if not all(_is_alnum(c) or c in _USERINFO_OK for c in userinfo):
                raise GoURLError("net/url: invalid userinfo")
            _unescape(userinfo, host=False)
            u.user = userinfo
        u.host = _parse_host(authority[k + 1:] if k >= 0 else authority)
    _unescape(rest, host=False)
    u.path = rest
    return u


# ---- the Kubernetes CEL URL library on cel-python ---------------------------------------

class CelURL:
    """The value of url(string) in Kubernetes CEL; methods are bound below."""

    def __init__(self, u: GoURL):
        self.u = u


def _cel_is_url(s) -> celtypes.BoolType:
    try:
        parse_request_uri(str(s))
        return celtypes.BoolType(True)
    except GoURLError:
        return celtypes.BoolType(False)


def _cel_url(s) -> CelURL:
    try:
        return CelURL(parse_request_uri(str(s)))
    except GoURLError as e:
        raise ValueError(f"URL parse error during conversion from string: {e}")


CEL_FUNCTIONS = {
    "isURL": _cel_is_url,
    "url": _cel_url,
    "getScheme": lambda u: celtypes.StringType(u.u.scheme),
    "getHost": lambda u: celtypes.StringType(u.u.host),
    "getHostname": lambda u: celtypes.StringType(u.u.hostname()),
    "getPort": lambda u: celtypes.StringType(u.u.port()),
    "getEscapedPath": lambda u: celtypes.StringType(u.u.path),
}

_env = celpy.Environment()
_programs: dict[str, Any] = {}


def eval_rule(rule: str, self_value: Any, old_value: Any = None) -> bool:
    prg = _programs.get(rule)
    if prg is None:
        prg = _env.program(_env.compile(rule), functions=CEL_FUNCTIONS)
        _programs[rule] = prg
    act = {"self": celpy.json_to_cel(self_value)}
    if old_value is not None:
        act["oldSelf"] = celpy.json_to_cel(old_value)
    result = prg.evaluate(act)
    if isinstance(result, Exception):
        raise result
    if not isinstance(result, (bool, celtypes.BoolType)):
        raise TypeError(f"rule did not evaluate to a bool: {result!r}")
    return bool(result)


def is_transition_rule(rule: str) -> bool:
    return re.search(r"\boldSelf\b", rule) is not None


# ---- the structural schema walk ---------------------------------------------------------

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool}
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _go_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    if isinstance(v, list):
        return "array"
    return "object"


def _type_ok(v: Any, t: str) -> bool:
    if t == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if t == "number":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    return isinstance(v, _TYPES[t])


def _go_repr(v: Any) -> str:
    return json.dumps(v, separators=(",", ":"), sort_keys=True)


class Validator:
    def __init__(self, schema: dict, strict_fields: bool = True):
        self.schema = schema
        self.strict = strict_fields

    def validate(self, value: Any, old: Any = None) -> list[str]:
        errors: list[str] = []
        self._walk(value, self.schema, "", old, errors)
        return errors

    def _walk(self, v: Any, s: dict, path: str, old: Any, errors: list[str]) -> None:
        p = path or "<root>"
        if v is None:
            if not s.get("nullable"):
                t = s.get("type", "object")
                errors.append(f'{p}: Invalid value: "null": {p} in body must be of type {t}: "null"')
            return
        if s.get("x-kubernetes-int-or-string"):
            if not (isinstance(v, str) or _type_ok(v, "integer")):
                errors.append(f'{p}: Invalid value: "{_go_type(v)}": {p} in body must be of type integer,string')
                return
        elif "type" in s and not _type_ok(v, s["type"]):
            errors.append(f'{p}: Invalid value: "{_go_type(v)}": {p} in body must be of type {s["type"]}: "{_go_type(v)}"')
            return
        for sub in s.get("allOf", []):
            # Each must hold; kubebuilder emits one per enum marker (type: HTTP|Image twice).
            self._walk(v, sub, path, old, errors)
        if "anyOf" in s and not s.get("x-kubernetes-int-or-string"):
            if not any(not Validator(sub).validate(v) for sub in s["anyOf"]):
                errors.append(f"{p}: Invalid value: {_go_repr(v)}: must validate at least one schema (anyOf)")
        if "enum" in s and v not in s["enum"]:
            allowed = ", ".join(f'"{e}"' for e in s["enum"])
            errors.append(f'{p}: Unsupported value: {_go_repr(v)}: supported values: {allowed}')
        if isinstance(v, str):
            if "minLength" in s and len(v) < s["minLength"]:
                errors.append(f'{p}: Invalid value: {_go_repr(v)}: {p} in body should be at least {s["minLength"]} chars long')
            if "maxLength" in s and len(v) > s["maxLength"]:
                errors.append(f'{p}: Too long: may not be more than {s["maxLength"]} bytes')
            if "pattern" in s and not re.search(s["pattern"], v):
                errors.append(f"{p}: Invalid value: {_go_repr(v)}: {p} in body should match '{s['pattern']}'")
            if s.get("format") == "date-time" and not _DATE_TIME.match(v):
                errors.append(f'{p}: Invalid value: {_go_repr(v)}: {p} in body must be of type date-time')
        if _type_ok(v, "number") and not isinstance(v, str):
            if "minimum" in s and v < s["minimum"]:
                errors.append(f'{p}: Invalid value: {v}: {p} in body should be greater than or equal to {s["minimum"]}')
            if "maximum" in s and v > s["maximum"]:
                errors.append(f'{p}: Invalid value: {v}: {p} in body should be less than or equal to {s["maximum"]}')
            if s.get("format") == "int32" and not (-2**31 <= v < 2**31):
                errors.append(f"{p}: Invalid value: {v}: {p} in body must be of type int32")
        if isinstance(v, list):
            self._array(v, s, path, old, errors)
        if isinstance(v, dict):
            self._object(v, s, path, old, errors)
        for rule in s.get("x-kubernetes-validations", []):
            self._rule(rule, v, path, old, errors)

    def _rule(self, rule: dict, v: Any, path: str, old: Any, errors: list[str]) -> None:
        expr = rule["rule"]
        if is_transition_rule(expr) and old is None and not rule.get("optionalOldSelf"):
            return  # transition rules run only on update, when an old value correlates
        p = path or "<root>"
        if rule.get("fieldPath"):
            p = p + rule["fieldPath"]
        try:
            ok = eval_rule(expr, v, old)
        except Exception as e:  # evaluation errors reject, as in the API server
            errors.append(f'{p}: Invalid value: "{_go_type(v)}": rule evaluation error: {expr}: {e}')
            return
        if not ok:
            msg = rule.get("message") or f"failed rule: {expr}"
            errors.append(f'{p}: Invalid value: "{_go_type(v)}": {msg}')

    def _array(self, v: list, s: dict, path: str, old: Any, errors: list[str]) -> None:
        p = path or "<root>"
        if "maxItems" in s and len(v) > s["maxItems"]:
            errors.append(f'{p}: Too many: {len(v)}: must have at most {s["maxItems"]} items')
        if "minItems" in s and len(v) < s["minItems"]:
            errors.append(f'{p}: Invalid value: {len(v)}: {p} in body should have at least {s["minItems"]} items')
        items = s.get("items", {})
        list_type = s.get("x-kubernetes-list-type", "atomic")
        keys = s.get("x-kubernetes-list-map-keys", [])
        old_by_key: dict = {}
        if list_type == "map" and isinstance(old, list):
            for o in old:
                if isinstance(o, dict):
                    old_by_key[tuple(_go_repr(o.get(k)) for k in keys)] = o
        seen: dict = {}
        for i, item in enumerate(v):
            ipath = f"{path}[{i}]"
            item_old = None
            if list_type == "map" and isinstance(item, dict):
                key = tuple(_go_repr(self._key_value(item, k, items)) for k in keys)
                missing = [k for k in keys if self._key_value(item, k, items) is None]
                if not missing:
                    if key in seen:
                        shown = {k: item.get(k) for k in keys}
                        errors.append(f"{ipath}: Duplicate value: map[string]interface {{}}{_go_repr(shown)}")
                    seen[key] = i
                    item_old = old_by_key.get(key)
            elif list_type == "set":
                key = _go_repr(item)
                if key in seen:
                    errors.append(f"{ipath}: Duplicate value: {key}")
                seen[key] = i
            # atomic lists do not correlate: transition rules below them see no oldSelf
            self._walk(item, items, ipath, item_old, errors)

    @staticmethod
    def _key_value(item: dict, key: str, items: dict) -> Any:
        if key in item:
            return item[key]
        return items.get("properties", {}).get(key, {}).get("default")

    def _object(self, v: dict, s: dict, path: str, old: Any, errors: list[str]) -> None:
        p = path or "<root>"
        props = s.get("properties", {})
        addl = s.get("additionalProperties")
        for name in s.get("required", []):
            if name not in v:
                errors.append(f"{path + '.' if path else ''}{name}: Required value")
        if "maxProperties" in s and len(v) > s["maxProperties"]:
            errors.append(f'{p}: Too many: {len(v)}: must have at most {s["maxProperties"]} items')
        old_d = old if isinstance(old, dict) else {}
        for name, value in v.items():
            cpath = f"{path}.{name}" if path else name
            if name in props:
                self._walk(value, props[name], cpath, old_d.get(name), errors)
            elif isinstance(addl, dict):
                self._walk(value, addl, cpath, old_d.get(name), errors)
            elif addl is True or s.get("x-kubernetes-preserve-unknown-fields"):
                continue
            elif self.strict:
                errors.append(f'unknown field "{cpath}"')


# ---- a whole custom resource -------------------------------------------------------------

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_META_FIELDS = {"name", "generateName", "namespace", "labels", "annotations", "finalizers",
                "ownerReferences", "uid", "resourceVersion", "generation",
                "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                "managedFields", "selfLink"}


class CRD:
    def __init__(self, crd: dict):
        spec = crd["spec"]
        self.group = spec["group"]
        self.kind = spec["names"]["kind"]
        self.namespaced = spec.get("scope") == "Namespaced"
        self.versions = {
            v["name"]: Validator(v["schema"]["openAPIV3Schema"])
            for v in spec["versions"] if v.get("served", True)
        }

    def validate(self, obj: Any, old: Any = None) -> list[str]:
        if not isinstance(obj, dict):
            return ["the object is not a mapping"]
        errors: list[str] = []
        api_version = obj.get("apiVersion", "")
        group, _, version = api_version.rpartition("/")
        if group != self.group or version not in self.versions:
            served = ", ".join(f"{self.group}/{v}" for v in self.versions)
            return [f"apiVersion {api_version!r}: this CRD serves {served}"]
        if obj.get("kind") != self.kind:
            return [f"kind {obj.get('kind')!r}: expected {self.kind}"]
        errors += self._metadata(obj.get("metadata"))
        for k in obj:
            if k not in ("apiVersion", "kind", "metadata", "spec", "status"):
                errors.append(f'unknown field "{k}"')
        body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind", "metadata")}
        old_body = None
        if isinstance(old, dict):
            old_body = {k: v for k, v in old.items() if k not in ("apiVersion", "kind", "metadata")}
        errors += self.versions[version].validate(body, old_body)
        return errors

    def _metadata(self, meta: Any) -> list[str]:
        if not isinstance(meta, dict):
            return ["metadata: Required value"]
        out = []
        name = meta.get("name")
        if not name:
            if not meta.get("generateName"):
                out.append("metadata.name: Required value: name or generateName is required")
        elif not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
            out.append(f"metadata.name: Invalid value: {_go_repr(name)}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.'")
        ns = meta.get("namespace")
        if ns is not None and (not isinstance(ns, str) or not _DNS_LABEL.match(ns) or len(ns) > 63):
            out.append(f"metadata.namespace: Invalid value: {_go_repr(ns)}: a lowercase RFC 1123 label")
        for k in meta:
            if k not in _META_FIELDS:
                out.append(f'unknown field "metadata.{k}"')
        for field in ("labels", "annotations"):
            m = meta.get(field)
            if m is not None and (not isinstance(m, dict) or not all(isinstance(x, str) for x in m.values())):
                out.append(f"metadata.{field}: must be a map of strings")
        return out
