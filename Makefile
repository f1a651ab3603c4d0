# kubegate: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
WASM_TARGET := wasm32-wasip1
WASM := target/$(WASM_TARGET)/release/kubegate.wasm
# The second module, with the CEL interpreter (cargo feature cel), from its own cargo
# profile so that neither build overwrites the other's output.
WASM_CEL := target/$(WASM_TARGET)/release-cel/kubegate-cel.wasm

.PHONY: all setup ci-setup build test test-native test-wasm lint run wasm-opt bench

# wasm-bindgen-test's runner must match the wasm-bindgen version in Cargo.lock.
WASM_BINDGEN_VERSION := $(shell awk '/^name = "wasm-bindgen"$$/{getline; gsub(/[^0-9.]/,""); print; exit}' Cargo.lock)

all: build

# Toolchain pieces the build and tests need; safe to run repeatedly.
setup:
	rustup target add $(WASM_TARGET) wasm32-unknown-unknown
	rustup component add clippy rustfmt
	@if [ "$$(wasm-bindgen-test-runner --version 2>/dev/null | awk '{print $$2}')" != "$(WASM_BINDGEN_VERSION)" ]; then \
	  echo "installing wasm-bindgen-cli $(WASM_BINDGEN_VERSION)"; \
	  $(CARGO) install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION); \
	fi
	@command -v node >/dev/null || { echo "node is needed for the wasm32 tests (apt-get install nodejs)"; exit 1; }
	@command -v kubectl >/dev/null || { echo "kubectl is needed for the end-to-end tests"; exit 1; }

# The first of the README's two commands: kubegate.wasm in our host on https://localhost:8443
# in front of the Kubernetes API stand-in, a kubeconfig (dev credential helper) in
# build/demo/, and the kubectl commands to try. CONFIG= picks another file from
# filter-config/; UPSTREAM=https://host:6443 (token in KUBEGATE_SA_TOKEN, and UPSTREAM_CA=FILE
# or UPSTREAM_SKIP_VERIFY=1) puts a real API server behind it.
CONFIG ?= filter-config/dev.json
LISTEN ?= 127.0.0.1:8443
run: build
	$(CARGO) build -p kubegate-demo --bins
	target/debug/kubegate-demo --wasm $(WASM) --config $(CONFIG) --listen $(LISTEN) --out build/demo \
	  $(if $(UPSTREAM),--upstream $(UPSTREAM)) $(if $(UPSTREAM_CA),--upstream-ca $(UPSTREAM_CA)) \
	  $(if $(UPSTREAM_SKIP_VERIFY),--upstream-skip-verify)

# Everything a fresh CI machine lacks.
ci-setup: setup
	@command -v wasm-opt >/dev/null || { apt-get update -qq && apt-get install -y -qq binaryen; }

# The filter as Envoy/Istio load it: kubegate.wasm, and kubegate-cel.wasm for
# configurations with CEL expressions (a CEL interpreter does not fit the first one's
# 1 MiB budget).
build:
	rustup target add $(WASM_TARGET) >/dev/null 2>&1 || true
	$(CARGO) build --release --target $(WASM_TARGET) -p kubegate
	@$(MAKE) --no-print-directory wasm-opt
	$(CARGO) build --profile release-cel --target $(WASM_TARGET) -p kubegate --features cel
	@$(MAKE) --no-print-directory wasm-opt WASM_OPT_IN=$(WASM_CEL_CARGO_OUT) WASM_OPT_OUT=$(WASM_CEL)
	@ls -l $(WASM) $(WASM_CEL)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p kubegate --target $(WASM_TARGET) -- -D warnings
	$(CARGO) clippy -p kubegate --features cel --lib --tests -- -D warnings
	$(CARGO) clippy -p kubegate --features cel --target $(WASM_TARGET) -- -D warnings

# The host's compiled-module cache for the test suites (wasmtime's code cache, keyed by the
# module's bytes and the engine's settings): each build of a module is compiled once for all
# the suites instead of once per plugin they load.
COMPILE_CACHE := $(CURDIR)/target/wasmtime-cache

# Unit, integration and end-to-end tests (the e2e tests run the built .wasm; the examples'
# kubegate configurations come from validate-examples).
test-native: build validate-examples
	KUBEGATE_WASM=$(CURDIR)/$(WASM) KUBEGATE_CEL_WASM=$(CURDIR)/$(WASM_CEL) \
	  KUBEGATE_EXAMPLES_CONFIG=$(CURDIR)/build/examples-config \
	  KUBEGATE_HOST_COMPILE_CACHE=$(COMPILE_CACHE) \
	  $(CARGO) test --workspace
	$(CARGO) test -p kubegate --features cel --lib

# The logic's tests compiled to wasm32 and run in node by wasm-bindgen-test.
test-wasm:
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
	  $(CARGO) test -p kubegate --target wasm32-unknown-unknown --lib --test jwt_vectors

test: setup lint validate-examples test-native test-wasm

# wasm-opt (Debian's binaryen) shrinks the module rustc wrote; without it the build still
# works, with a warning. The features are the ones rustc enables for wasm32-wasip1 (its
# target_features section goes with the stripped symbols, so they are named here).
WASM_OPT ?= wasm-opt
WASM_OPT_FLAGS := -Oz --enable-bulk-memory --enable-sign-ext --enable-mutable-globals \
  --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue
WASM_CARGO_OUT := target/$(WASM_TARGET)/release/deps/kubegate.wasm
WASM_CEL_CARGO_OUT := target/$(WASM_TARGET)/release-cel/deps/kubegate.wasm
# What `make wasm-opt` reads and writes: kubegate.wasm unless told otherwise (build passes
# the CEL module's pair too).
WASM_OPT_IN ?= $(WASM_CARGO_OUT)
WASM_OPT_OUT ?= $(WASM)
WASM_OPT_CACHE := target/wasm-opt-cache/$(basename $(notdir $(WASM_OPT_OUT)))

# Cargo links its output to target/.../kubegate.wasm on every build; this puts the
# optimised module at $(WASM_OPT_OUT) instead. The result is kept under the input's hash,
# one cache per module, so an unchanged build costs no rerun.
wasm-opt:
	@if ! command -v $(WASM_OPT) >/dev/null; then \
	  echo "warning: wasm-opt not found (apt-get install binaryen): $(WASM_OPT_OUT) is not size-optimised"; \
	  if [ -f $(WASM_OPT_IN) ]; then cp $(WASM_OPT_IN) $(WASM_OPT_OUT).$$$$ && mv -f $(WASM_OPT_OUT).$$$$ $(WASM_OPT_OUT); fi; \
	elif [ ! -f $(WASM_OPT_IN) ]; then \
	  echo "warning: $(WASM_OPT_IN) missing: $(WASM_OPT_OUT) is not size-optimised"; \
	else \
	  cached=$(WASM_OPT_CACHE)/$$(sha256sum $(WASM_OPT_IN) | cut -c1-32).wasm; \
	  if [ ! -f $$cached ]; then \
	    mkdir -p $(WASM_OPT_CACHE); \
	    if $(WASM_OPT) $(WASM_OPT_FLAGS) $(WASM_OPT_IN) -o $$cached.$$$$; then \
	      find $(WASM_OPT_CACHE) -name '*.wasm' -delete; mv -f $$cached.$$$$ $$cached; \
	    else \
	      rm -f $$cached.$$$$; echo "warning: wasm-opt failed: $(WASM_OPT_OUT) is not size-optimised"; \
	      cp $(WASM_OPT_IN) $(WASM_OPT_OUT).$$$$ && mv -f $(WASM_OPT_OUT).$$$$ $(WASM_OPT_OUT); exit 0; \
	    fi; \
	  fi; \
	  cp $$cached $(WASM_OPT_OUT).$$$$ && mv -f $(WASM_OPT_OUT).$$$$ $(WASM_OPT_OUT); \
	fi

# Per-request time and wasm instructions (fuel) through the host with the real module,
# the same decisions natively, the module size, and a load run against a pass-through
# filter: one table (tests/bench). Best run on an otherwise idle machine.
bench: build
	$(CARGO) run --profile bench -p kubegate-bench -- --wasm $(CURDIR)/$(WASM)

# Fuzzing the request-path logic with cargo-fuzz (libFuzzer): token extraction, JWT, JWKS,
# configuration, policy, header plan, path judging, the request-info resolver and
# gate::decide. Each target runs for FUZZ_SECONDS (default 20, so three minutes in all);
# fuzz/run.sh prints executions and coverage per target. cargo-fuzz is installed if missing; the stable toolchain runs it with
# RUSTC_BOOTSTRAP=1 (set by the script).
FUZZ_SECONDS ?= 20
.PHONY: fuzz fuzz-ci
fuzz:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	FUZZ_SECONDS=$(FUZZ_SECONDS) CARGO=$(CARGO) fuzz/run.sh

# What CI runs after the tests: every target over its committed seeds, then 15 s of search
# each, so a stale invariant or a crash fails the build instead of waiting for `make fuzz`.
fuzz-ci:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	FUZZ_SECONDS=15 FUZZ_SEEDS_ONLY=1 CARGO=$(CARGO) fuzz/run.sh

# ---- Envoy / Istio / Kubernetes examples (envoy-examples/) -------------------------------
# Python tooling for the examples lives in its own venv under build/, pinned by
# scripts/examples/requirements.txt and re-installed when that file changes.
EXAMPLES_PYTHON ?= python3
EXAMPLES_VENV := build/examples-venv
EXAMPLE ?= local-standin

$(EXAMPLES_VENV)/.installed: scripts/examples/requirements.txt
	rm -rf $(EXAMPLES_VENV)
	$(EXAMPLES_PYTHON) -m venv $(EXAMPLES_VENV)
	$(EXAMPLES_VENV)/bin/pip install --quiet --disable-pip-version-check --no-input -r scripts/examples/requirements.txt
	touch $@

.PHONY: validate-examples envoy oci
# Envoy bootstraps parsed against Envoy's v3 API (as they stand and with make envoy's
# overrides), WasmPlugins against Istio's CRD and EnvoyExtensionPolicies against Envoy
# Gateway's (CEL rules included), Kubernetes manifests against Kubernetes' schemas, and the
# wiring between all of them; kubegate configurations are
# extracted to build/examples-config/ for tests/examples_config.rs. Then the validators' own
# tests, some of which load the RBAC manifests into the API stand-in (built here).
validate-examples: $(EXAMPLES_VENV)/.installed
	$(EXAMPLES_VENV)/bin/python scripts/examples/validate.py --quiet
	$(CARGO) build -q -p kube-apiserver-standin
	KUBEGATE_REQUIRE_STANDIN=1 $(EXAMPLES_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/examples

# Run an example bootstrap with func-e: make envoy [EXAMPLE=local-standin|local-standin-skip-verify|in-cluster]
# (needs KUBEGATE_SA_TOKEN or KUBEGATE_SA_TOKEN_FILE; see envoy-examples/README.md). The copy it
# runs, build/envoy/$(EXAMPLE).yaml, is the example with KUBEGATE_* overrides applied.
envoy:
	@scripts/examples/run_envoy.sh --check
	$(MAKE) build
	EXAMPLE=$(EXAMPLE) scripts/examples/run_envoy.sh

# kubegate.wasm and kubegate-cel.wasm as Wasm OCI images (Istio's compat variant) under
# build/oci/: for each an image-layout directory and an oci-archive tarball
# (kubegate-compat, kubegate-cel-compat). OCI_VARIANT=oci builds the two-layer variant instead.
OCI_VARIANT ?= compat
oci: build
	$(EXAMPLES_PYTHON) scripts/examples/oci.py --wasm $(WASM) --name kubegate --out build/oci --variant $(OCI_VARIANT)
	$(EXAMPLES_PYTHON) scripts/examples/oci.py --wasm $(WASM_CEL) --name kubegate-cel --out build/oci --variant $(OCI_VARIANT)
