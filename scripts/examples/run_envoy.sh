#!/usr/bin/env bash
# Run one envoy-examples/envoy/*.yaml bootstrap with func-e (`make envoy [EXAMPLE=...]`).
#
#   run_envoy.sh --check     only check that func-e is installed (exit 1 with instructions)
#   run_envoy.sh             write build/envoy/$EXAMPLE.yaml (the example with this machine's
#                            paths and any KUBEGATE_* overrides) and exec `func-e run -c` on it
#
# Inputs (environment):
#   EXAMPLE                   local-standin (default) | local-standin-skip-verify | in-cluster
#   KUBEGATE_SA_TOKEN         the service-account token kubegate forwards, or
#   KUBEGATE_SA_TOKEN_FILE    a file holding it (e.g. from `kubectl create token ...`)
#   KUBEGATE_UPSTREAM_CA      for local-standin: the stand-in's CA (kube-apiserver-standin --print-ca F;
#                             default build/standin-ca.crt)
#   any other KUBEGATE_*      replaces the value the bootstrap marks with that name
#                             (scripts/examples/lib/render.py)
#   FUNC_E_ARGS               extra arguments for func-e/Envoy, e.g. "--log-level debug"
# The token is passed to Envoy through its environment only (host_env_keys): it is never
# written into the rendered bootstrap.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
EXAMPLE="${EXAMPLE:-local-standin}"
TEMPLATE="$ROOT/envoy-examples/envoy/$EXAMPLE.yaml"
OUT_DIR="$ROOT/build/envoy"

need_func_e() {
  if command -v func-e >/dev/null 2>&1; then
    return 0
  fi
  cat >&2 <<'MSG'
func-e is not installed. func-e downloads and runs official Envoy builds (which include the
V8 Wasm runtime kubegate needs). Install it with one of:

  curl -fsSL https://func-e.io/install.sh | sh                     # official installer
  go install github.com/tetratelabs/func-e/cmd/func-e@latest        # with a Go toolchain
  brew install func-e                                                # macOS / Linuxbrew

then run `make envoy` again. `func-e use <version>` pins an Envoy version; the examples
need a release recent enough for the Wasm filter's failure_policy field.
MSG
  return 1
}

if [[ "${1:-}" == "--check" ]]; then
  need_func_e
  exit $?
fi
need_func_e

if [[ ! -f "$TEMPLATE" ]]; then
  echo "no such example: $TEMPLATE (EXAMPLE=local-standin, local-standin-skip-verify or in-cluster)" >&2
  exit 1
fi

export KUBEGATE_WASM="${KUBEGATE_WASM:-$ROOT/target/wasm32-wasip1/release/kubegate.wasm}"
if [[ ! -f "$KUBEGATE_WASM" ]]; then
  echo "$KUBEGATE_WASM not found: run \`make build\` first (make envoy does)" >&2
  exit 1
fi

# The service-account token: from the environment or from a file, never from the bootstrap.
if [[ -z "${KUBEGATE_SA_TOKEN:-}" ]]; then
  if [[ -n "${KUBEGATE_SA_TOKEN_FILE:-}" ]]; then
    KUBEGATE_SA_TOKEN="$(tr -d '\r\n' < "$KUBEGATE_SA_TOKEN_FILE")"
  else
    cat >&2 <<'MSG'
Set KUBEGATE_SA_TOKEN (or KUBEGATE_SA_TOKEN_FILE) to the token kubegate should present to the
API server, for example with the manifests in envoy-examples/kubernetes applied:
  kubectl -n kubegate-system get secret kubegate-token -o jsonpath='{.data.token}' | base64 -d > /tmp/kubegate.token
  make envoy KUBEGATE_SA_TOKEN_FILE=/tmp/kubegate.token
(for the local stand-in: the token given to kube-apiserver-standin --token/--token-file).
MSG
    exit 1
  fi
fi
export KUBEGATE_SA_TOKEN

mkdir -p "$OUT_DIR/tls"
chmod 700 "$OUT_DIR"

case "$EXAMPLE" in
  local-standin*)
    # A self-signed listener certificate for k8s.localhost.pomerium.io (kubectl trusts it
    # through --certificate-authority=build/envoy/tls/listener.crt).
    if [[ -z "${KUBEGATE_TLS_CERT:-}" && ! -f "$OUT_DIR/tls/listener.crt" ]]; then
      openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj "/CN=k8s.localhost.pomerium.io" \
        -addext "subjectAltName=DNS:k8s.localhost.pomerium.io,DNS:localhost,IP:127.0.0.1" \
        -keyout "$OUT_DIR/tls/listener.key" -out "$OUT_DIR/tls/listener.crt" 2>/dev/null
      echo "made a self-signed listener certificate: $OUT_DIR/tls/listener.crt"
    fi
    # The development HS256 key shared with scripts/examples/dev_token.py.
    if [[ -z "${KUBEGATE_DEV_HMAC_B64:-}" ]]; then
      if [[ ! -f "$OUT_DIR/dev-hmac.b64" ]]; then
        (umask 077; openssl rand -base64 32 > "$OUT_DIR/dev-hmac.b64")
      fi
      KUBEGATE_DEV_HMAC_B64="$(cat "$OUT_DIR/dev-hmac.b64")"
      export KUBEGATE_DEV_HMAC_B64
    fi
    # The bootstrap's paths are relative to the repository; the copy gets absolute ones.
    export KUBEGATE_TLS_CERT="${KUBEGATE_TLS_CERT:-$OUT_DIR/tls/listener.crt}"
    export KUBEGATE_TLS_KEY="${KUBEGATE_TLS_KEY:-$OUT_DIR/tls/listener.key}"
    if [[ "$EXAMPLE" == "local-standin" ]]; then
      if [[ -z "${KUBEGATE_UPSTREAM_CA:-}" && -f "$ROOT/build/standin-ca.crt" ]]; then
        export KUBEGATE_UPSTREAM_CA="$ROOT/build/standin-ca.crt"
      fi
      if [[ -z "${KUBEGATE_UPSTREAM_CA:-}" ]]; then
        echo "Set KUBEGATE_UPSTREAM_CA to the stand-in's CA (kube-apiserver-standin --print-ca FILE), or use" >&2
        echo "EXAMPLE=local-standin-skip-verify to skip upstream verification (local only)." >&2
        exit 1
      fi
    fi
    ;;
esac

RENDERED="$OUT_DIR/$EXAMPLE.yaml"
python3 "$ROOT/scripts/examples/lib/render.py" "$TEMPLATE" "$RENDERED"
echo "wrote $RENDERED; starting Envoy (admin on 127.0.0.1:${KUBEGATE_ADMIN_PORT:-9901})"
# shellcheck disable=SC2086 # FUNC_E_ARGS is a list of words on purpose
exec func-e run -c "$RENDERED" ${FUNC_E_ARGS:-}
