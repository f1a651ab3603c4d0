# kubegate: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
WASM_TARGET := wasm32-wasip1
WASM := target/$(WASM_TARGET)/release/kubegate.wasm

.PHONY: all setup ci-setup build test test-native test-wasm lint run

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

# Everything a fresh CI machine lacks.
ci-setup: setup

# The filter as Envoy/Istio load it.
build:
	rustup target add $(WASM_TARGET) >/dev/null 2>&1 || true
	$(CARGO) build --release --target $(WASM_TARGET) -p kubegate
	@ls -l $(WASM)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p kubegate --target $(WASM_TARGET) -- -D warnings

# Unit, integration and end-to-end tests (the e2e tests run the built .wasm).
test-native: build
	KUBEGATE_WASM=$(CURDIR)/$(WASM) $(CARGO) test --workspace

# The logic's tests compiled to wasm32 and run in node by wasm-bindgen-test.
test-wasm:
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
	  $(CARGO) test -p kubegate --target wasm32-unknown-unknown --lib --test jwt_vectors

test: setup lint test-native test-wasm
