"""Makes scripts/examples/lib importable (without scripts/examples itself, whose validate.py
would shadow the `validate` package that Envoy's generated protos import)."""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "scripts/examples/lib"
if str(LIB) not in sys.path:
    sys.path.insert(0, str(LIB))
