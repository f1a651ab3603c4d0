#!/usr/bin/env python3
"""Validate envoy-examples/ and extract the kubegate configurations: see lib/examples_check.py.

Run with the venv that `make validate-examples` installs (build/examples-venv). The checking
code lives in lib/ because this script's own name would otherwise shadow the `validate`
package that Envoy's generated protos import (protoc-gen-validate's rules).
"""
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE / "lib"))

import examples_check  # noqa: E402

if __name__ == "__main__":
    sys.exit(examples_check.main(sys.argv[1:]))
