# kubegate: the two commands a newcomer needs are `make run` and `make test`.
SHELL := /bin/bash
CARGO ?= cargo
WASM_TARGET := wasm32-wasip1
WASM := target/$(WASM_TARGET)/release/kubegate.wasm

.PHONY: all setup build test lint run clean-wasm

all: build

# Toolchain pieces the build needs; safe to run repeatedly.
setup:
	rustup target add $(WASM_TARGET) wasm32-unknown-unknown
	rustup component add clippy rustfmt

# The filter as Envoy/Istio load it.
build: setup
	$(CARGO) build --release --target $(WASM_TARGET) -p kubegate
	@ls -l $(WASM)

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p kubegate --target $(WASM_TARGET) -- -D warnings

test: build lint
	KUBEGATE_WASM=$(CURDIR)/$(WASM) $(CARGO) test --workspace
