#!/usr/bin/env python3
"""Write a copy of an envoy-examples/envoy/*.yaml bootstrap with some of its defaults replaced.

The bootstraps are complete, loadable files: Envoy does not expand ${VAR} in a bootstrap, so
they hold concrete defaults, and each value a user may want to change carries a trailing
comment naming it:

    port_value: 9901  # KUBEGATE_ADMIN_PORT

A KUBEGATE_<NAME> environment variable replaces the value on every line marked with its name.
One value cannot carry a comment because it sits inside the kubegate configuration (a JSON
string in the YAML): the development HMAC key, KUBEGATE_DEV_HMAC_B64, which replaces the
`"secret_base64"` value there.

Why not envsubst or sed: a misspelt name must not be silently ignored (an override that does
not apply leaves a default the user meant to change), and a value may only hold characters that
cannot change the YAML's structure. So an override whose name is close to a known one is an
error, as is a value with quotes, spaces, '#', braces or newlines.

Usage: render.py BOOTSTRAP OUTPUT   (overrides come from the environment)
Standard library only: `make envoy` runs it with the system python3.
"""
from __future__ import annotations

import difflib
import os
import re
import sys
from pathlib import Path

# `key: value  # KUBEGATE_NAME` (also `- key: value ...`); the value is a plain scalar.
MARKED = re.compile(
    r"^(?P<lead>\s*(?:-\s+)?[A-Za-z0-9_.\"]+:\s+)(?P<value>[^\s#{}\[\],'\"]+)"
    r"(?P<gap>\s+#\s*)(?P<name>KUBEGATE_[A-Z0-9_]+)\b(?P<rest>.*)$"
)
# Values kept inside the embedded kubegate JSON: name -> the JSON field holding it.
JSON_FIELDS = {"KUBEGATE_DEV_HMAC_B64": "secret_base64"}
# Paths, host names, addresses, ports and base64: nothing that YAML or the embedded JSON
# string would read as syntax (no quotes, colons-space, '#', braces, newlines).
SAFE_VALUE = re.compile(r"^[A-Za-z0-9._/+=@-][A-Za-z0-9._/+=@:-]*$")
# KUBEGATE_* variables that are not settings of a bootstrap (run_envoy.sh and the tests use them).
NOT_SETTINGS = {"KUBEGATE_SA_TOKEN", "KUBEGATE_SA_TOKEN_FILE", "KUBEGATE_EXAMPLES_CONFIG",
                "KUBEGATE_REQUIRE_STANDIN"}


class RenderError(ValueError):
    pass


def _json_field(name: str) -> re.Pattern:
    return re.compile(r'("' + re.escape(JSON_FIELDS[name]) + r'"\s*:\s*")([^"\\]*)(")')


def settings(text: str) -> dict[str, list[str]]:
    """The settings a bootstrap marks, each with its default value(s), in order of first use."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = MARKED.match(line)
        if m:
            found.setdefault(m.group("name"), []).append(m.group("value"))
    for name in JSON_FIELDS:
        values = [m.group(2) for m in _json_field(name).finditer(text)]
        if values:
            found.setdefault(name, []).extend(values)
    return found


def render(text: str, overrides: dict[str, str]) -> str:
    """`text` with each marked value replaced by its override; unmarked names are refused."""
    known = settings(text)
    for name, value in overrides.items():
        if name not in known:
            raise RenderError(f"{name} is not a setting of this bootstrap (settings: {', '.join(known)})")
        if not SAFE_VALUE.match(value):
            raise RenderError(f"{name}={value!r}: only letters, digits and ._/+=@:- are allowed")
        if name in JSON_FIELDS and len(known[name]) != 1:
            raise RenderError(f"{name}: expected exactly one {JSON_FIELDS[name]!r} in the configuration")
    out = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        m = MARKED.match(body)
        if m and m.group("name") in overrides:
            body = (m.group("lead") + overrides[m.group("name")] + m.group("gap")
                    + m.group("name") + m.group("rest"))
            line = body + line[len(line.rstrip("\r\n")):]
        out.append(line)
    result = "".join(out)
    for name in JSON_FIELDS:
        if name in overrides:
            result = _json_field(name).sub(lambda m: m.group(1) + overrides[name] + m.group(3), result)
    return result


def overrides_for(text: str, env: dict[str, str] | None = None,
                  elsewhere: set[str] | frozenset[str] = frozenset()) -> dict[str, str]:
    """The KUBEGATE_* environment variables that are settings of this bootstrap. A name that
    is none but close to one (a typo) is an error; settings of the other bootstraps
    (`elsewhere`) and other KUBEGATE_* names are not this one's business."""
    env = os.environ if env is None else env
    known = settings(text)
    out = {}
    for name, value in env.items():
        if not name.startswith("KUBEGATE_") or name in NOT_SETTINGS or (
                name in elsewhere and name not in known):
            continue
        if name in known:
            out[name] = value
            continue
        close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.85)
        if close:
            raise RenderError(f"{name} is not a setting of this bootstrap; did you mean {close[0]}?")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    source, output = Path(argv[1]), Path(argv[2])
    text = source.read_text()
    elsewhere = {n for sibling in source.parent.glob("*.yaml") if sibling != source
                 for n in settings(sibling.read_text())}
    try:
        out = render(text, overrides_for(text, elsewhere=elsewhere))
    except RenderError as e:
        print(f"render {source}: {e}", file=sys.stderr)
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
