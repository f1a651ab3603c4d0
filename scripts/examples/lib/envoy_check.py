"""Check an Envoy v3 bootstrap the way Envoy would, without Envoy.

Three layers, each catching what the one before cannot:
1. Strict proto parsing: PyPI xds-protos holds the generated classes of Envoy's v3 API, and
   json_format.ParseDict rejects unknown fields and wrong types, as Envoy's own loader does.
   Every message type that an "@type" names must be imported first, or Any fields cannot
   resolve; we import the whole proto package of each named type.
2. Envoy's declarative field rules (protoc-gen-validate annotations carried in the protos'
   descriptors: min_len on names, required messages and oneofs, enum defined_only, numeric
   ranges, ...). ParseDict ignores them; Envoy enforces them at load time. Deprecated fields
   are refused too, so the examples keep working as Envoy removes them.
3. kubegate's own wiring rules: the Wasm filter (V8, local file, fail closed, a StringValue
   configuration holding a JSON object, the token's environment variable exposed to the VM),
   the router last, upgrades for exec/port-forward, clusters that exist, TLS on both sides.
"""
from __future__ import annotations

import importlib
import ipaddress
import pkgutil
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

from google.protobuf import any_pb2, descriptor, json_format, message_factory, symbol_database
from google.protobuf.descriptor import FieldDescriptor as FD

from envoy.config.bootstrap.v3 import bootstrap_pb2
from validate import validate_pb2

from yamlutil import strict_json

WASM_FILTER = "envoy.extensions.filters.http.wasm.v3.Wasm"
ROUTER = "envoy.extensions.filters.http.router.v3.Router"
HCM = "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
UPSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
DOWNSTREAM_TLS = "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
HTTP_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
STRING_VALUE = "google.protobuf.StringValue"
KUBEGATE_TOP_LEVEL = {"routes", "jwt", "max_token_bytes", "token_cache_entries", "realm",
                      "decision_log", "strip_request_headers", "reserved_name_prefixes"}
KEY_SOURCES = ("jwks", "pem", "hmac", "remote")


@dataclass
class Result:
    errors: list[str] = field(default_factory=list)
    # (filter path, kubegate configuration as a JSON object) for every kubegate filter.
    configs: list[tuple[str, dict]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


# ---- 1. @type resolution and strict parsing ------------------------------------------

def type_urls(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "@type" and isinstance(v, str):
                yield v
            else:
                yield from type_urls(v)
    elif isinstance(node, list):
        for v in node:
            yield from type_urls(v)


_imported: set[str] = set()


def import_type(type_url: str) -> str | None:
    """Imports every *_pb2 module of the proto package that defines `type_url`'s message.
    Returns an error message, or None when the type is now known to the descriptor pool."""
    if not type_url.startswith("type.googleapis.com/"):
        return f"@type {type_url!r}: Envoy expects type.googleapis.com/<message name>"
    full_name = type_url.split("/", 1)[1]
    package = full_name.rsplit(".", 1)[0]
    if package not in _imported:
        _imported.add(package)
        try:
            pkg = importlib.import_module(package)
            for info in pkgutil.iter_modules(pkg.__path__):
                if info.name.endswith("_pb2"):
                    importlib.import_module(f"{package}.{info.name}")
        except ImportError:
            pass
    try:
        symbol_database.Default().pool.FindMessageTypeByName(full_name)
    except KeyError:
        return f"@type {type_url!r}: no such message in Envoy's v3 API"
    return None


def parse(doc: Any, message_type=bootstrap_pb2.Bootstrap) -> tuple[Any, list[str]]:
    if not isinstance(doc, dict):
        return None, ["the document is not a mapping"]
    errors = [e for e in (import_type(u) for u in sorted(set(type_urls(doc)))) if e]
    if errors:
        return None, errors
    msg = message_type()
    try:
        json_format.ParseDict(doc, msg, ignore_unknown_fields=False)
    except json_format.ParseError as e:
        return None, [f"not a valid {message_type.DESCRIPTOR.full_name}: {e}"]
    return msg, []


# ---- 2. protoc-gen-validate rules ----------------------------------------------------

def _message_class(desc: descriptor.Descriptor):
    return message_factory.GetMessageClass(desc)


def unpack_any(any_msg: any_pb2.Any):
    desc = symbol_database.Default().pool.FindMessageTypeByName(any_msg.TypeName())
    inner = _message_class(desc)()
    any_msg.Unpack(inner)
    return inner


_HEADER_NAME = re.compile(r"^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$")
_HEADER_VALUE_STRICT = re.compile(r"^[^\x00-\x08\x0A-\x1F\x7F]*$")
_HEADER_VALUE_LOOSE = re.compile(r"^[^\x00\n\r]*$")
_HEADER_LOOSE = re.compile(r"^[^\x00\n\r]+$")  # PGV's non-strict header rules: no NUL, CR, LF
_WRAPPERS = {
    "google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value",
    "google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value",
    "google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue",
}


def _duration_ns(d) -> int:
    return d.seconds * 1_000_000_000 + d.nanos


def _range_errors(v, r, fmt=str) -> list[str]:
    """PGV numeric semantics: const, in/not_in, and gt/gte with lt/lte, where a lower bound
    above the upper bound means 'outside the range'."""
    out = []
    has = r.HasField if hasattr(r, "HasField") else (lambda n: False)

    def get(n):
        v_ = getattr(r, n)
        return _duration_ns(v_) if hasattr(v_, "seconds") else v_

    if has("const") and v != get("const"):
        out.append(f"value must equal {fmt(get('const'))}")
    ins = [(_duration_ns(x) if hasattr(x, "seconds") else x) for x in getattr(r, "in", [])]
    if ins and v not in ins:
        out.append(f"value must be in {ins}")
    nins = [(_duration_ns(x) if hasattr(x, "seconds") else x) for x in getattr(r, "not_in", [])]
    if v in nins:
        out.append(f"value must not be in {nins}")
    lo = ("gt", get("gt")) if has("gt") else ("gte", get("gte")) if has("gte") else None
    hi = ("lt", get("lt")) if has("lt") else ("lte", get("lte")) if has("lte") else None

    def above(b):
        return v > b[1] if b[0] == "gt" else v >= b[1]

    def below(b):
        return v < b[1] if b[0] == "lt" else v <= b[1]

    if lo and hi:
        if hi[1] > lo[1]:
            if not (above(lo) and below(hi)):
                out.append(f"value must be inside range {lo[0]} {fmt(lo[1])}, {hi[0]} {fmt(hi[1])}")
        elif not (above(lo) or below(hi)):
            out.append(f"value must be outside range {hi[0]} {fmt(hi[1])}, {lo[0]} {fmt(lo[1])}")
    elif lo and not above(lo):
        out.append(f"value must be {'greater than' if lo[0] == 'gt' else 'at least'} {fmt(lo[1])}")
    elif hi and not below(hi):
        out.append(f"value must be {'less than' if hi[0] == 'lt' else 'at most'} {fmt(hi[1])}")
    return out


def _string_errors(v: str, r) -> list[str]:
    if getattr(r, "ignore_empty", False) and v == "":
        return []
    out = []
    n, nb = len(v), len(v.encode())
    if r.HasField("const") and v != r.const:
        out.append(f"value must equal {r.const!r}")
    if r.HasField("len") and n != r.len:
        out.append(f"value length must be {r.len} runes")
    if r.HasField("min_len") and n < r.min_len:
        out.append(f"value length must be at least {r.min_len} runes")
    if r.HasField("max_len") and n > r.max_len:
        out.append(f"value length must be at most {r.max_len} runes")
    if r.HasField("min_bytes") and nb < r.min_bytes:
        out.append(f"value length must be at least {r.min_bytes} bytes")
    if r.HasField("max_bytes") and nb > r.max_bytes:
        out.append(f"value length must be at most {r.max_bytes} bytes")
    if r.HasField("prefix") and not v.startswith(r.prefix):
        out.append(f"value does not have prefix {r.prefix!r}")
    if r.HasField("suffix") and not v.endswith(r.suffix):
        out.append(f"value does not have suffix {r.suffix!r}")
    if r.HasField("contains") and r.contains not in v:
        out.append(f"value does not contain {r.contains!r}")
    if r.HasField("not_contains") and r.not_contains in v:
        out.append(f"value contains {r.not_contains!r}")
    if r.HasField("pattern") and not re.search(r.pattern, v):
        out.append(f"value does not match regex pattern {r.pattern!r}")
    if list(r.__getattribute__("in")) and v not in list(getattr(r, "in")):
        out.append(f"value must be in list {list(getattr(r, 'in'))}")
    if v in list(r.not_in):
        out.append(f"value must not be in list {list(r.not_in)}")
    wk = r.WhichOneof("well_known")
    if wk == "well_known_regex":
        strict = r.strict if r.HasField("strict") else True
        kind = validate_pb2.KnownRegex.Name(r.well_known_regex)
        if kind == "HTTP_HEADER_NAME" and not (_HEADER_NAME if strict else _HEADER_LOOSE).match(v):
            out.append("value does not match regex pattern for an HTTP header name")
        if kind == "HTTP_HEADER_VALUE":
            rx = _HEADER_VALUE_STRICT if strict else _HEADER_VALUE_LOOSE
            if not rx.match(v):
                out.append("value does not match regex pattern for an HTTP header value")
    elif wk in ("ip", "ipv4", "ipv6") and getattr(r, wk):
        try:
            ip = ipaddress.ip_address(v)
            if wk != "ip" and f"ipv{ip.version}" != wk:
                raise ValueError
        except ValueError:
            out.append(f"value must be a valid {wk.upper()} address")
    return out


def _scalar_errors(v: Any, rules, field_desc: FD) -> list[str]:
    kind = rules.WhichOneof("type")
    if kind is None:
        return []
    r = getattr(rules, kind)
    if kind == "string":
        return _string_errors(v, r)
    if kind == "bytes":
        out = []
        if r.HasField("min_len") and len(v) < r.min_len:
            out.append(f"value length must be at least {r.min_len} bytes")
        if r.HasField("max_len") and len(v) > r.max_len:
            out.append(f"value length must be at most {r.max_len} bytes")
        return out
    if kind == "enum":
        out = []
        if r.defined_only and field_desc.enum_type.values_by_number.get(v) is None:
            out.append(f"value must be one of the defined enum values, got {v}")
        if list(getattr(r, "in")) and v not in list(getattr(r, "in")):
            out.append(f"value must be in {list(getattr(r, 'in'))}")
        if v in list(r.not_in):
            out.append(f"value must not be in {list(r.not_in)}")
        return out
    if kind in ("double", "float", "int32", "int64", "uint32", "uint64", "sint32",
                "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64"):
        if getattr(r, "ignore_empty", False) and v == 0:
            return []
        return _range_errors(v, r)
    if kind == "bool":
        return [f"value must equal {r.const}"] if r.HasField("const") and v != r.const else []
    return []


def _message_rule_errors(value, rules, field_desc: FD) -> list[str]:
    kind = rules.WhichOneof("type")
    name = field_desc.message_type.full_name
    if kind == "duration":
        r = rules.duration
        return _range_errors(_duration_ns(value), r, fmt=lambda ns: f"{ns / 1e9:g}s")
    if kind == "any":
        r = rules.any
        url = value.type_url
        if list(getattr(r, "in")) and url not in list(getattr(r, "in")):
            return [f"type URL must be in {list(getattr(r, 'in'))}"]
        if url in list(r.not_in):
            return [f"type URL must not be in {list(r.not_in)}"]
        return []
    if name in _WRAPPERS and kind is not None:
        inner_fd = field_desc.message_type.fields_by_name["value"]
        return _scalar_errors(value.value, rules, inner_fd)
    return []


def _is_required(rules, kind: str) -> bool:
    if rules.HasField("message") and rules.message.required:
        return True
    sub = getattr(rules, kind, None) if kind else None
    return bool(sub is not None and getattr(sub, "required", False))


def pgv_errors(msg, path: str = "") -> list[str]:
    out: list[str] = []
    desc = msg.DESCRIPTOR
    opts = desc.GetOptions()
    if opts.HasExtension(validate_pb2.disabled) and opts.Extensions[validate_pb2.disabled]:
        return out
    if desc.full_name == "google.protobuf.Any":
        if msg.type_url:
            try:
                inner = unpack_any(msg)
            except KeyError:
                return [f"{path}: unknown @type {msg.type_url}"]
            out.extend(pgv_errors(inner, path))
        return out
    for oneof in desc.oneofs:
        o = oneof.GetOptions()
        if o.HasExtension(validate_pb2.required) and o.Extensions[validate_pb2.required]:
            if msg.WhichOneof(oneof.name) is None:
                out.append(f"{path}: one of {[f.name for f in oneof.fields]} is required")
    for fd in desc.fields:
        fpath = f"{path}.{fd.name}" if path else fd.name
        fopts = fd.GetOptions()
        rules = fopts.Extensions[validate_pb2.rules] if fopts.HasExtension(validate_pb2.rules) else None
        kind = rules.WhichOneof("type") if rules is not None else None
        in_oneof = fd.containing_oneof is not None
        is_map = fd.type == FD.TYPE_MESSAGE and fd.message_type.GetOptions().map_entry
        repeated = fd.is_repeated
        if repeated:
            items = getattr(msg, fd.name)
            present = len(items) > 0
        elif fd.type == FD.TYPE_MESSAGE or in_oneof or fd.has_presence:
            present = msg.HasField(fd.name)
        else:
            present = True  # proto3 scalar: rules apply to the default value as well
        if in_oneof and msg.WhichOneof(fd.containing_oneof.name) != fd.name:
            continue
        if present and fopts.deprecated and (repeated or fd.type == FD.TYPE_MESSAGE
                                             or in_oneof or getattr(msg, fd.name) != fd.default_value):
            out.append(f"{fpath}: deprecated field; use its replacement")
        if fd.type == FD.TYPE_MESSAGE and not repeated and not present:
            if rules is not None and _is_required(rules, kind):
                out.append(f"{fpath}: value is required")
            continue
        skip_children = rules is not None and rules.HasField("message") and rules.message.skip
        if is_map:
            entries = getattr(msg, fd.name)
            if rules is not None and kind == "map":
                r = rules.map
                if r.HasField("min_pairs") and len(entries) < r.min_pairs:
                    out.append(f"{fpath}: value must contain at least {r.min_pairs} pair(s)")
                if r.HasField("max_pairs") and len(entries) > r.max_pairs:
                    out.append(f"{fpath}: value must contain no more than {r.max_pairs} pair(s)")
                kfd = fd.message_type.fields_by_name["key"]
                vfd = fd.message_type.fields_by_name["value"]
                for k in entries:
                    if r.HasField("keys"):
                        out += [f"{fpath}[{k!r}] key: {e}" for e in _scalar_errors(k, r.keys, kfd)]
                    if r.HasField("values") and vfd.type != FD.TYPE_MESSAGE:
                        out += [f"{fpath}[{k!r}]: {e}" for e in _scalar_errors(entries[k], r.values, vfd)]
            vfd = fd.message_type.fields_by_name["value"]
            if vfd.type == FD.TYPE_MESSAGE and not skip_children:
                for k in entries:
                    out.extend(pgv_errors(entries[k], f"{fpath}[{k!r}]"))
            continue
        if repeated:
            items = getattr(msg, fd.name)
            item_rules = None
            if rules is not None and kind == "repeated":
                r = rules.repeated
                if not (r.ignore_empty and not items):
                    if r.HasField("min_items") and len(items) < r.min_items:
                        out.append(f"{fpath}: value must contain at least {r.min_items} item(s)")
                    if r.HasField("max_items") and len(items) > r.max_items:
                        out.append(f"{fpath}: value must contain no more than {r.max_items} item(s)")
                    if r.unique and fd.type != FD.TYPE_MESSAGE and len(set(items)) != len(items):
                        out.append(f"{fpath}: repeated value must contain unique items")
                item_rules = r.items if r.HasField("items") else None
            for i, item in enumerate(items):
                ipath = f"{fpath}[{i}]"
                if fd.type == FD.TYPE_MESSAGE:
                    if item_rules is not None:
                        out += [f"{ipath}: {e}" for e in _message_rule_errors(item, item_rules, fd)]
                    if not skip_children and not (item_rules is not None and item_rules.message.skip):
                        out.extend(pgv_errors(item, ipath))
                elif item_rules is not None:
                    out += [f"{ipath}: {e}" for e in _scalar_errors(item, item_rules, fd)]
            continue
        value = getattr(msg, fd.name)
        if fd.type == FD.TYPE_MESSAGE:
            if rules is not None:
                out += [f"{fpath}: {e}" for e in _message_rule_errors(value, rules, fd)]
            if not skip_children:
                out.extend(pgv_errors(value, fpath))
        elif rules is not None:
            out += [f"{fpath}: {e}" for e in _scalar_errors(value, rules, fd)]
    return out


# ---- access logs ------------------------------------------------------------------------

# kubegate sets these with proxy_set_property; Envoy's Wasm filter keeps each as filter state
# "wasm.<name>". :PLAIN prints the string itself (without it Envoy prints the value as a
# serialized protobuf, base64 bytes in JSON).
USER_IN_ACCESS_LOG = "%FILTER_STATE(wasm.kubegate.user:PLAIN)%"
# Request headers that carry credentials: an access log must never print them.
_CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie",
                       "x-pomerium-jwt-assertion", "x-pomerium-authorization")
_HEADER_OPERATOR = re.compile(r"%(?:REQ|REQ_WITHOUT_QUERY|REQUEST_HEADER)\(([^)%]*)\)", re.I)


def format_strings(node: Any) -> list[str]:
    """Every string in an access-log format (text, or the values of a JSON format)."""
    if isinstance(node, str):
        return [node]
    if isinstance(node, dict):
        return [s for v in node.values() for s in format_strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in format_strings(v)]
    return []


def access_log_format_errors(formats: list[str], where: str) -> list[str]:
    """The access log must name the Kubernetes user (kubegate's filter state) and print no
    credential header."""
    out = []
    text = "\n".join(formats)
    if USER_IN_ACCESS_LOG not in text:
        out.append(f"{where}: the access log format does not print {USER_IN_ACCESS_LOG} (the "
                   "Kubernetes user kubegate impersonated)")
    for m in _HEADER_OPERATOR.finditer(text):
        names = [n.strip().lower() for n in m.group(1).split(":")[0].split("?")]
        if any(n in _CREDENTIAL_HEADERS for n in names):
            out.append(f"{where}: {m.group(0)}) prints a credential into the access log")
    if "%REQUEST_HEADERS%" in text.upper():
        out.append(f"{where}: %REQUEST_HEADERS% prints credentials into the access log")
    return out


def _access_log_formats(hcm) -> list[str]:
    formats = []
    for al in hcm.access_log:
        if not al.HasField("typed_config"):
            continue
        cfg = unpack_any(al.typed_config)
        if "log_format" in cfg.DESCRIPTOR.fields_by_name and cfg.HasField("log_format"):
            formats += format_strings(json_format.MessageToDict(cfg.log_format))
    return formats


# ---- 3. kubegate wiring ---------------------------------------------------------------

def _walk(msg, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every message in the tree (Any fields unpacked), with its path."""
    yield path, msg
    if msg.DESCRIPTOR.full_name == "google.protobuf.Any":
        if msg.type_url:
            yield from _walk(unpack_any(msg), path)
        return
    for fd, value in msg.ListFields():
        if fd.type != FD.TYPE_MESSAGE:
            continue
        fpath = f"{path}.{fd.name}" if path else fd.name
        if fd.message_type.GetOptions().map_entry:
            if fd.message_type.fields_by_name["value"].type == FD.TYPE_MESSAGE:
                for k, v in value.items():
                    yield from _walk(v, f"{fpath}[{k!r}]")
        elif fd.is_repeated:
            for i, v in enumerate(value):
                yield from _walk(v, f"{fpath}[{i}]")
        else:
            yield from _walk(value, fpath)


def _typed(any_msg, full_name: str):
    return unpack_any(any_msg) if any_msg.TypeName() == full_name else None


def _tls_context(cluster, type_name: str):
    ts = cluster.transport_socket
    if not ts.HasField("typed_config"):
        return None
    return _typed(ts.typed_config, type_name)


def kubegate_checks(bs, allow_skip_verify: bool) -> Result:
    res = Result()
    err = res.errors.append
    sr = bs.static_resources
    clusters = {}
    for i, c in enumerate(sr.clusters):
        if c.name in clusters:
            err(f"static_resources.clusters[{i}]: duplicate cluster name {c.name!r}")
        clusters[c.name] = c
    listener_names = set()
    for i, l in enumerate(sr.listeners):
        if l.name in listener_names:
            err(f"static_resources.listeners[{i}]: duplicate listener name {l.name!r}")
        listener_names.add(l.name)
    if not sr.listeners:
        err("static_resources.listeners: no listener")

    if bs.HasField("admin") and bs.admin.address.HasField("socket_address"):
        addr = bs.admin.address.socket_address.address
        if addr not in ("127.0.0.1", "::1", "localhost"):
            err(f"admin.address: {addr!r}; the admin interface can dump secrets and stop Envoy, "
                "keep it on loopback")

    api_clusters: set[str] = set()
    jwks_clusters: set[str] = set()
    hcm_count = 0
    for li, listener in enumerate(sr.listeners):
        for ci, chain in enumerate(listener.filter_chains):
            cpath = f"static_resources.listeners[{li}].filter_chains[{ci}]"
            tls = _tls_context(chain, DOWNSTREAM_TLS)
            if tls is None:
                err(f"{cpath}.transport_socket: kubectl sends bearer tokens; the listener must "
                    "terminate TLS (DownstreamTlsContext)")
            elif not tls.common_tls_context.tls_certificates and not tls.common_tls_context.tls_certificate_sds_secret_configs:
                err(f"{cpath}.transport_socket: DownstreamTlsContext without a certificate")
            for fi, f in enumerate(chain.filters):
                if not f.typed_config.TypeName() == HCM:
                    continue
                hcm_count += 1
                hpath = f"{cpath}.filters[{fi}].typed_config"
                hcm = unpack_any(f.typed_config)
                _check_hcm(hcm, hpath, clusters, api_clusters, jwks_clusters, res)
    if hcm_count == 0:
        err("no HTTP connection manager: kubegate is an HTTP filter")

    for name in sorted(api_clusters):
        c = clusters.get(name)
        if c is None:
            continue
        cpath = f"cluster {name!r}"
        tls = _tls_context(c, UPSTREAM_TLS)
        if tls is None:
            err(f"{cpath}: the API server is reached over TLS (UpstreamTlsContext); plaintext "
                "would expose the service-account token")
        else:
            has_validation = tls.common_tls_context.HasField("validation_context") or \
                tls.common_tls_context.HasField("validation_context_sds_secret_config") or \
                tls.common_tls_context.HasField("combined_validation_context")
            if not has_validation and not allow_skip_verify:
                err(f"{cpath}: upstream certificate not verified (no validation_context); that "
                    "is the tls_skip_verify variant and belongs in a file named *skip-verify*")
            vc = tls.common_tls_context.validation_context
            if has_validation and tls.common_tls_context.HasField("validation_context"):
                if not vc.HasField("trusted_ca"):
                    err(f"{cpath}: validation_context without trusted_ca")
                if not vc.match_typed_subject_alt_names:
                    err(f"{cpath}: validation_context without match_typed_subject_alt_names: "
                        "Envoy would accept any certificate the CA signed, for any name")
            if not tls.sni:
                err(f"{cpath}: set sni so the API server presents the right certificate")
        opts = c.typed_extension_protocol_options.get(HTTP_OPTIONS)
        if opts is not None:
            hpo = unpack_any(opts)
            if hpo.HasField("auto_config") or (hpo.HasField("explicit_http_config") and
                                               hpo.explicit_http_config.HasField("http2_protocol_options")):
                err(f"{cpath}: SPDY/3.1 upgrades (kubectl exec fallback) need HTTP/1.1 upstream")
    for name in sorted(jwks_clusters):
        c = clusters.get(name)
        if c is not None and _tls_context(c, UPSTREAM_TLS) is None:
            err(f"cluster {name!r}: signing keys fetched without TLS could be swapped in transit")
    return res


def _check_hcm(hcm, hpath, clusters, api_clusters, jwks_clusters, res: Result) -> None:
    err = res.errors.append
    upgrades = {u.upgrade_type.lower() for u in hcm.upgrade_configs}
    for needed in ("websocket", "spdy/3.1"):
        if needed not in upgrades:
            err(f"{hpath}.upgrade_configs: missing {needed!r} (kubectl exec/port-forward)")
    if not hcm.HasField("route_config"):
        err(f"{hpath}: expected an inline route_config")
    for vi, vh in enumerate(hcm.route_config.virtual_hosts):
        for ri, route in enumerate(vh.routes):
            rpath = f"{hpath}.route_config.virtual_hosts[{vi}].routes[{ri}]"
            if not route.HasField("route"):
                continue
            action = route.route
            targets = [action.cluster] if action.cluster else \
                [w.name for w in action.weighted_clusters.clusters]
            for t in targets:
                if t not in clusters:
                    err(f"{rpath}.route.cluster: no cluster named {t!r}")
                api_clusters.add(t)
            if not action.HasField("timeout") or _duration_ns(action.timeout) != 0:
                err(f"{rpath}.route.timeout: set 0s; Envoy's 15s default cuts off watches, "
                    "logs -f and exec sessions")
    if not hcm.access_log:
        err(f"{hpath}.access_log: none; log each request with the Kubernetes user ({USER_IN_ACCESS_LOG})")
    else:
        res.errors += access_log_format_errors(_access_log_formats(hcm), f"{hpath}.access_log")
    filters = list(hcm.http_filters)
    names = [f.typed_config.TypeName() for f in filters]
    if not names or names[-1] != ROUTER:
        err(f"{hpath}.http_filters: the router must be the last filter")
    wasm_positions = [i for i, n in enumerate(names) if n == WASM_FILTER]
    if not wasm_positions:
        err(f"{hpath}.http_filters: no envoy.filters.http.wasm filter (kubegate)")
    for i in wasm_positions:
        fpath = f"{hpath}.http_filters[{i}]"
        if filters[i].disabled:
            err(f"{fpath}: kubegate is disabled; requests would pass unauthenticated")
        wasm = unpack_any(filters[i].typed_config)
        _check_wasm(wasm, fpath, clusters, jwks_clusters, res)


def _check_wasm(wasm, fpath, clusters, jwks_clusters, res: Result) -> None:
    err = res.errors.append
    cfg = wasm.config
    cpath = f"{fpath}.typed_config.config"
    vm = cfg.vm_config
    if vm.runtime != "envoy.wasm.runtime.v8":
        err(f"{cpath}.vm_config.runtime: {vm.runtime!r}; official Envoy builds ship only "
            "envoy.wasm.runtime.v8")
    if not (vm.code.HasField("local") and vm.code.local.filename):
        err(f"{cpath}.vm_config.code: expected local.filename (the built kubegate.wasm)")
    elif not vm.code.local.filename.endswith(".wasm"):
        err(f"{cpath}.vm_config.code.local.filename: not a .wasm file")
    policy = cfg.failure_policy
    from envoy.extensions.wasm.v3 import wasm_pb2
    if cfg.fail_open or policy == wasm_pb2.FAIL_OPEN:
        err(f"{cpath}: fails open; a crashed VM would let requests through unauthenticated")
    if not cfg.HasField("configuration"):
        err(f"{cpath}.configuration: missing kubegate configuration")
        return
    if cfg.configuration.TypeName() != STRING_VALUE:
        err(f"{cpath}.configuration: @type must be google.protobuf.StringValue (the filter "
            f"receives its bytes), not {cfg.configuration.TypeName()}")
        return
    text = unpack_any(cfg.configuration).value
    try:
        conf = strict_json(text)
    except ValueError as e:
        err(f"{cpath}.configuration.value: not JSON: {e}")
        return
    if not isinstance(conf, dict):
        err(f"{cpath}.configuration.value: must be a JSON object")
        return
    res.configs.append((fpath, conf))
    env = vm.environment_variables
    exposed = set(env.host_env_keys) | set(env.key_values.keys())
    for e in config_errors(conf, exposed, set(clusters), jwks_clusters):
        err(f"{cpath}.configuration: {e}")


def config_errors(conf: dict, exposed_env: set[str], clusters: set[str] | None,
                  jwks_clusters: set[str] | None = None) -> list[str]:
    """Wiring checks on a kubegate configuration against its proxy. The full schema belongs
    to kubegate's own parser (the Rust test reads the extracted files); these are the parts
    that depend on the proxy around it. clusters=None skips the cluster check (Istio)."""
    out = []
    unknown = set(conf) - KUBEGATE_TOP_LEVEL
    if unknown:
        out.append(f"unknown top-level fields {sorted(unknown)}")
    routes = conf.get("routes")
    if not isinstance(routes, list) or not routes:
        out.append("routes: at least one route")
        routes = []
    for i, r in enumerate(routes):
        if not isinstance(r, dict):
            out.append(f"routes[{i}]: must be an object")
            continue
        has_lit = "kubernetes_service_account_token" in r
        env_name = r.get("kubernetes_service_account_token_env")
        if has_lit == (env_name is not None):
            out.append(f"routes[{i}]: set exactly one of kubernetes_service_account_token and "
                       "kubernetes_service_account_token_env")
        if env_name is not None and env_name not in exposed_env:
            out.append(f"routes[{i}].kubernetes_service_account_token_env: {env_name!r} is not "
                       f"handed to the VM (exposed: {sorted(exposed_env)})")
        if len(routes) > 1 and "from" not in r:
            out.append(f"routes[{i}].from: required when there is more than one route")
        # Every example binds the service-account token to the cluster of its API server.
        bound = r.get("upstream_clusters")
        if not isinstance(bound, list) or not bound:
            out.append(f"routes[{i}].upstream_clusters: every example names the Envoy cluster "
                       "of its API server, so the service-account token goes nowhere else")
        elif clusters is not None:
            for name in bound:
                if name not in clusters:
                    out.append(f"routes[{i}].upstream_clusters: no Envoy cluster named {name!r}")
    jwt = conf.get("jwt")
    if not isinstance(jwt, list) or not jwt:
        out.append("jwt: a list of authenticators (one per issuer), at least one")
        return out
    for i, entry in enumerate(jwt):
        at = f"jwt[{i}]"
        if not isinstance(entry, dict):
            out.append(f"{at}: must be an object")
            continue
        keys = entry.get("keys")
        if not isinstance(keys, dict) or not any(k in keys for k in KEY_SOURCES):
            out.append(f"{at}.keys: no key source ({', '.join(KEY_SOURCES)})")
            continue
        hmac = keys.get("hmac")
        for j, secret in enumerate(hmac if isinstance(hmac, list) else []):
            name = secret.get("secret_env") if isinstance(secret, dict) else None
            if name is not None and name not in exposed_env:
                out.append(f"{at}.keys.hmac[{j}].secret_env: {name!r} is not handed to the VM "
                           f"(exposed: {sorted(exposed_env)})")
        remote = keys.get("remote")
        if remote is not None:
            name = remote.get("cluster") if isinstance(remote, dict) else None
            if not name:
                out.append(f"{at}.keys.remote.cluster: required")
            elif clusters is not None and name not in clusters:
                out.append(f"{at}.keys.remote.cluster: no Envoy cluster named {name!r}")
            elif jwks_clusters is not None:
                jwks_clusters.add(name)
    return out


def check(doc: Any, allow_skip_verify: bool = False) -> Result:
    bs, errors = parse(doc)
    if errors:
        return Result(errors=errors)
    res = Result(errors=pgv_errors(bs))
    wiring = kubegate_checks(bs, allow_skip_verify)
    res.errors += wiring.errors
    res.configs = wiring.configs
    return res
