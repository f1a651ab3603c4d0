#!/usr/bin/env python3
"""Pack kubegate.wasm (or kubegate-cel.wasm) as a Wasm OCI image that Istio's WasmPlugin can
pull (no docker needed).

Istio's image fetcher (pkg/wasm/imagefetcher.go) accepts three layouts:
- "compat" variant, OCI flavour (the default here): exactly one layer of media type
  application/vnd.oci.image.layer.v1.tar+gzip, a tar holding `plugin.wasm`; the manifest
  carries the annotation module.wasm.image/variant=compat (solo-io/wasm spec-compat.md).
  Any registry and tool (skopeo, crane, oras, docker) handles it like a normal image.
- "oci" variant (--variant oci): exactly two layers, the runtime configuration
  (application/vnd.module.wasm.config.v1+json) and the raw module
  (application/vnd.module.wasm.content.layer.v1+wasm). Some registries refuse such custom
  media types, which is why compat is the default.
- the Docker-manifest flavour of compat, which needs docker's manifest types: not built here.

Output (deterministic: same .wasm, same digests): an OCI image-layout directory
build/oci/<name>-<variant>/ and the same as a tarball build/oci/<name>-<variant>.tar
(an "oci-archive"), where <name> is --name (kubegate, or kubegate-cel for the module with
the CEL interpreter). Push with, for example:
  skopeo copy oci-archive:build/oci/kubegate-compat.tar docker://REGISTRY/kubegate:TAG
  crane push build/oci/kubegate-compat REGISTRY/kubegate:TAG
Standard library only.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import shutil
import sys
import tarfile
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_TGZ = "application/vnd.oci.image.layer.v1.tar+gzip"
WASM_CONFIG = "application/vnd.module.wasm.config.v1+json"
WASM_CONTENT = "application/vnd.module.wasm.content.layer.v1+wasm"
VARIANT_ANNOTATION = "module.wasm.image/variant"
WASM_MAGIC = b"\0asm"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _canonical(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def _tar(files: dict[str, bytes]) -> bytes:
    """A reproducible tar: fixed owner, mode and time, entries in the given order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _gzip(data: bytes) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(data)
    return buf.getvalue()


def _descriptor(media_type: str, data: bytes, annotations: dict | None = None) -> dict:
    d = {"mediaType": media_type, "digest": sha256(data), "size": len(data)}
    if annotations:
        d["annotations"] = annotations
    return d


def build(wasm: bytes, variant: str = "compat", ref_name: str = "latest",
          source: str = "", name: str = "kubegate") -> tuple[dict[str, bytes], dict]:
    """Returns (blobs by digest, manifest descriptor for index.json)."""
    if not wasm.startswith(WASM_MAGIC):
        raise ValueError("not a WebAssembly module (missing \\0asm magic)")
    blobs: dict[str, bytes] = {}

    def put(data: bytes) -> None:
        blobs[sha256(data)] = data

    annotations = {"org.opencontainers.image.title": name}
    if source:
        annotations["org.opencontainers.image.source"] = source
    if variant == "compat":
        layer_tar = _tar({"plugin.wasm": wasm})
        layer = _gzip(layer_tar)
        config = _canonical({
            "architecture": "wasm",
            "os": "wasip1",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [sha256(layer_tar)]},
        })
        put(layer)
        put(config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor(OCI_CONFIG, config),
            "layers": [_descriptor(OCI_LAYER_TGZ, layer)],
            "annotations": {VARIANT_ANNOTATION: "compat", **annotations},
        }
    elif variant == "oci":
        runtime = _canonical({"type": "envoy_proxy", "abiVersions": ["v0.2.1"],
                              "config": {"rootIds": ["kubegate"]}})  # the filter's root id, either module
        put(runtime)
        put(wasm)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor(WASM_CONFIG, runtime),
            "layers": [
                _descriptor(WASM_CONFIG, runtime, {"org.opencontainers.image.title": "runtime-config.json"}),
                _descriptor(WASM_CONTENT, wasm, {"org.opencontainers.image.title": "plugin.wasm"}),
            ],
            "annotations": annotations,
        }
    else:
        raise ValueError(f"unknown variant {variant!r} (compat or oci)")
    manifest_bytes = _canonical(manifest)
    put(manifest_bytes)
    desc = _descriptor(OCI_MANIFEST, manifest_bytes, {"org.opencontainers.image.ref.name": ref_name})
    return blobs, desc


def write_layout(out: Path, blobs: dict[str, bytes], manifest_desc: dict) -> None:
    if out.exists():
        shutil.rmtree(out)
    (out / "blobs/sha256").mkdir(parents=True)
    for digest, data in blobs.items():
        (out / "blobs/sha256" / digest.split(":", 1)[1]).write_bytes(data)
    (out / "oci-layout").write_bytes(_canonical({"imageLayoutVersion": "1.0.0"}))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [manifest_desc]}
    (out / "index.json").write_bytes(_canonical(index))


def write_archive(layout: Path, archive: Path) -> None:
    files = {}
    for p in sorted(layout.rglob("*")):
        if p.is_file():
            files[p.relative_to(layout).as_posix()] = p.read_bytes()
    archive.write_bytes(_tar(files))


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wasm", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("build/oci"))
    ap.add_argument("--variant", choices=("compat", "oci"), default="compat")
    ap.add_argument("--tag", default="latest", help="org.opencontainers.image.ref.name")
    ap.add_argument("--source", default="", help="org.opencontainers.image.source annotation")
    ap.add_argument("--name", default="kubegate",
                    help="image title and output names (kubegate-cel for kubegate-cel.wasm)")
    args = ap.parse_args(argv)
    if not args.wasm.is_file():
        print(f"{args.wasm}: not found; run `make build` first", file=sys.stderr)
        return 1
    wasm = args.wasm.read_bytes()
    try:
        blobs, desc = build(wasm, args.variant, args.tag, args.source, args.name)
    except ValueError as e:
        print(f"{args.wasm}: {e}", file=sys.stderr)
        return 1
    layout = args.out / f"{args.name}-{args.variant}"
    archive = args.out / f"{args.name}-{args.variant}.tar"
    write_layout(layout, blobs, desc)
    write_archive(layout, archive)
    print(f"OCI image layout: {layout}")
    print(f"OCI archive:      {archive}")
    print(f"variant:          {args.variant}")
    print(f"manifest digest:  {desc['digest']}   (WasmPlugin spec.sha256 for an oci:// url: the hex part)")
    print(f"module sha256:    {sha256(wasm)}   (spec.sha256 for a file:// or https:// url)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
