#!/usr/bin/env python3
"""Cross-check the compose files against the Rust source. Standard library only.

`docker compose config -q` proves compose.yaml is valid Compose. It cannot
know that `QDRANT_ULR` is a typo, that two services race to export one image
tag, or that a profile starts a backend nothing sends to: Compose accepts all
three, and the user finds out on a clean machine. This script resolves every
combination a user can start and fails when the compose files, the Rust source
and the OpenTelemetry SDK disagree.

Combinations: compose.yaml alone and with every subset of the overlay files
in the repository root (compose.*.yaml), each with every subset of the
profiles those files define. Each is resolved with `config --format json`, an
empty env file and a scrubbed environment, so your .env and shell do not
change the result: what is checked is what one `--profile` or `-f` flag gives
a user who has not edited .env. Each finding is printed once, with the first
combination it appears in and how many more share it.

Errors (exit 1):
  * environment: a service is given a variable it never reads (a typo, or a
    setting that has no effect). RUST_LOG is allowed everywhere.
  * OTEL_* passthrough: a service is not given an OTEL_* variable that its
    code or the OpenTelemetry SDK reads (SDK_READS). Where telemetry goes and
    how (endpoint, headers, protocol, timeout, sampling) is configured by
    these alone, so a setting in .env that compose does not pass silently
    does nothing. Shared code counts for every service here: every service
    runs shared::telemetry. OTEL_SERVICE_NAME is exempt (NOT_PASSED). So is
    Cargo.lock pinning another SDK than the one SDK_READS was made from.
  * shared build tag: two services in one combination both have `build:`
    and the same `image:`. Compose v2.40+ builds through Bake, which builds
    and exports both in parallel, and the second export fails on a clean
    machine (`image "docker.io/library/ragtrace:local": already exists`,
    docker/buildx#3576). Build the image in one service and let the others
    name only `image:`, or give each service its own tag.
  * backend nothing sends to: every service that a flag adds (a service with
    `profiles:`, or one an overlay file adds to compose.yaml's) must be fed
    by the other services of the same combination; otherwise the flag starts
    a container that shows nothing (`--profile phoenix` used to start an
    empty Phoenix while every span went to Jaeger). Fed means:
      - push: another service names it as HOST:PORT or //HOST (or an
        environment value is exactly HOST) in its environment, command,
        entrypoint, or a file mounted into it (bind volume or `configs:`).
        In a mounted OpenTelemetry Collector config, an exporter counts only
        if a pipeline in the service's mounted configs lists it; or
      - pull: a mounted config of its own has `scrape_configs` (Prometheus)
        naming a service that runs in the combination.
    Not a reference: depends_on, a healthcheck, a comment, or anything a
    setup job says. A setup job is a service another one depends on with
    `condition: service_completed_successfully` (ollama-pull): it runs once,
    is not a backend, and needs no sender itself.
  * wiring: LISTEN_ADDR is not 0.0.0.0:PORT, the health probe polls another
    port, a service URL (http://retrieval:8080) names the wrong port, a
    `service_healthy` dependency has no healthcheck, a binary the compose
    files run is not built by the Dockerfile, or a service other than the
    gateway and the trace and metrics UIs publishes a port (or publishes
    beyond 127.0.0.1);
  * a secret-looking variable (*_API_KEY, *_SECRET*, *_TOKEN, *_PASSWORD,
    *_HEADERS) has a value written in a compose file instead of coming from
    .env or the shell;
  * .env.example does not mention a variable the compose files pass or
    interpolate, or documents a setting (`#NAME=value`) that has no effect.
Warnings:
  * a variable the code reads (other than OTEL_*) that compose does not pass:
    the service default applies and .env cannot change it. A variable read
    only in a shared crate warns only when no service gets it: shared helpers
    such as the OPENAI_API_KEY fallback run only in the services that call
    them. `--strict` makes warnings errors.
  * a service names (as above) a service that does not run in that
    combination: what it sends there fails, noisily, until it does.

Which variables a service's code reads: every string literal that looks like
an environment variable name (`"QDRANT_URL"`) and is the first argument of a
function call in the service's crate or in the workspace crates it depends on
(shared/, otlp-fast/), so `env_or("X", ..)`, `env_string("X", ..)`,
`env_millis("X", ..)`, `env_opt("X")`, `std::env::var("X")`, `var_os("X")`,
`api_key("X")` all count, as does a `const NAME: &str = "X"` passed the same
way; a call to `listen_addr(` reads LISTEN_ADDR. Any string literal that is
exactly an OTEL_* name counts too, wherever it stands (`var("OTEL_A",
"OTEL_B")`), since such a name is never anything but a variable. Comments and
items under `#[cfg(test)]` are skipped. A service is a compose service whose
entrypoint is /app/NAME with a NAME/Cargo.toml in the workspace.

Usage:
  tools/check_compose_env.py [--compose CMD]      resolves every combination
  tools/check_compose_env.py --list-combinations  prints each one's compose args
  tools/check_compose_env.py --config-json FILE   one saved `config --format json`
  tools/check_compose_env.py --self-test          proves the checks can fail

CMD defaults to $DOCKER_COMPOSE, else `docker-compose` on PATH; it may be
two words ("docker compose"). A saved FILE should be made with every profile
on (`--profile '*'`), an empty env file and no overlay; only the rules that
need no other combination are meaningful for it.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE_FILE = "compose.yaml"
OVERLAY_GLOB = "compose.*.yaml"

# Read by tracing-subscriber's filter as well as by our source: allowed on
# every service.
ALLOWED_EVERYWHERE = {"RUST_LOG"}
# Read, but deliberately not passed by compose, with why.
NOT_PASSED = {
    "OTEL_SERVICE_NAME": "each service names itself; one value for all would merge them",
}
# Only these may publish ports on the host, and only on loopback: the gateway
# and the trace and metrics UIs.
MAY_PUBLISH = {"gateway", "jaeger", "phoenix", "prometheus"}
# Compose's own variables may be documented in .env.example.
COMPOSE_CLI_PREFIXES = ("COMPOSE_", "DOCKER_")

# What the pinned OpenTelemetry crates read themselves, for traces and
# metrics exported over OTLP http/protobuf, http/json or grpc, as
# shared::telemetry builds them (a BatchSpanProcessor, a PeriodicReader, the
# exporters' builders, Resource::builder()). Made with
#   grep -rhoE '"OTEL_[A-Z0-9_]+"' ~/.cargo/registry/src/*/<crate>-<version>/src | sort -u
# on the versions in SDK_PINNED, keeping what those code paths read. Left out:
# OTEL_EXPORTER_OTLP_LOGS_* and OTEL_BLRP_* (no log exporter) and
# OTEL_BSP_MAX_CONCURRENT_EXPORTS (only the experimental async-runtime
# processor uses it). check_sdk_pin fails when Cargo.lock moves to another
# minor version, so that the list is made again.
SDK_PINNED = {"opentelemetry-otlp": "0.32.0", "opentelemetry_sdk": "0.32.1"}
SDK_READS = frozenset({
    # opentelemetry-otlp 0.32.0: span and metric exporters, http and grpc
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT", "OTEL_EXPORTER_OTLP_COMPRESSION",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
    "OTEL_EXPORTER_OTLP_METRICS_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
    # opentelemetry_sdk 0.32.1: sampler and span limits (trace::Config), the
    # batch span processor, the periodic metric reader, the resource
    "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_SPAN_EVENT_COUNT_LIMIT", "OTEL_SPAN_LINK_COUNT_LIMIT",
    "OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_EXPORT_TIMEOUT", "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_RESOURCE_ATTRIBUTES", "OTEL_SERVICE_NAME",
})
SDK_NAME = "the OpenTelemetry SDK (" + ", ".join(f"{c} {v}" for c, v in SDK_PINNED.items()) + ")"

SECRET_RE = re.compile(r"(API_KEY|SECRET|TOKEN|PASSWORD|_HEADERS)$|_SECRET_|_TOKEN_")
ENV_NAME_RE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")  # at least one underscore: "POST" is not a variable
# "X" as the first argument of a call: foo("X", bar::baz::<T>("X"
CALL_LITERAL_RE = re.compile(
    r"\b[A-Za-z_][A-Za-z0-9_]*\s*(?:::\s*<[^<>()]*>)?\s*\(\s*\"([A-Z][A-Z0-9_]*)\""
)
# foo(NAME) / foo(module::NAME, ..) where NAME is a const holding a variable name
CALL_CONST_RE = re.compile(
    r"\b[A-Za-z_][A-Za-z0-9_]*\s*\(\s*(?:[A-Za-z_][A-Za-z0-9_]*::)*([A-Z][A-Z0-9_]*)\s*[,)]"
)
CONST_DEF_RE = re.compile(
    r"\b(?:const|static)\s+([A-Z][A-Z0-9_]*)\s*:\s*&\s*(?:'static\s+)?str\s*=\s*\"([A-Z][A-Z0-9_]*)\""
)
LISTEN_ADDR_CALL_RE = re.compile(r"\blisten_addr\s*\(")
# env_pair("A", "B"): two variables read together (shared::config::env_pair)
ENV_PAIR_RE = re.compile(r"\benv_pair\s*\(\s*\"([A-Z][A-Z0-9_]*)\"\s*,\s*\"([A-Z][A-Z0-9_]*)\"")
# "OTEL_X" as a whole string literal, wherever it stands
OTEL_LITERAL_RE = re.compile(r"\"(OTEL_[A-Z0-9_]+)\"")
# ${NAME...} in a compose file, not the $${...} escape
INTERPOLATION_RE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")
# `#NAME=value` or `NAME=value` at the start of a line: a documented setting
DOC_ASSIGNMENT_RE = re.compile(r"^#?([A-Z][A-Z0-9_]*)=", re.MULTILINE)
SERVICE_URL_RE = re.compile(r"^https?://([a-z0-9][a-z0-9-]*):(\d+)(?:/|$)")
# HOST:PORT or //HOST, with HOST not part of a longer name
HOST_REF = r"(?<![\w.-]){host}:\d|//{host}(?![\w.-])"
YAML_COMMENT_RE = re.compile(r"(^|\s)#.*$")
YAML_KEY_RE = re.compile(r"^\s*([\w./-]+)\s*:(?:\s|$)")
MAX_MOUNTED_BYTES = 1_000_000
# In a mounted directory, only these are read as configuration (a corpus of
# documents mentioning jaeger:4317 sends nothing).
CONFIG_SUFFIXES = {".yaml", ".yml", ".json", ".toml", ".conf", ".ini", ".env"}


@dataclass
class Report:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def error(self, msg: str) -> None:
        self.errors.append(msg)

    def warn(self, msg: str) -> None:
        self.warnings.append(msg)


# --------------------------------------------------------------------------
# Rust side
# --------------------------------------------------------------------------


def _load_toml(path: Path) -> dict:
    try:
        import tomllib  # Python 3.11+
    except ImportError:  # pragma: no cover - older Pythons: no dependency walk
        return {}
    with path.open("rb") as fh:
        return tomllib.load(fh)


def workspace_path_deps(root: Path) -> dict[str, Path]:
    """`[workspace.dependencies]` entries with a `path`: name -> crate dir."""
    manifest = root / "Cargo.toml"
    if not manifest.is_file():
        return {}
    deps = _load_toml(manifest).get("workspace", {}).get("dependencies", {})
    return {
        name: (root / spec["path"]).resolve()
        for name, spec in deps.items()
        if isinstance(spec, dict) and "path" in spec
    }


def dependency_tables(crate: Path) -> list[dict]:
    """The crate's normal dependency tables (plain and per target)."""
    manifest = crate / "Cargo.toml"
    if not manifest.is_file():
        return []
    data = _load_toml(manifest)
    tables = [data.get("dependencies", {})]
    tables.extend(t.get("dependencies", {}) for t in data.get("target", {}).values())
    return tables


def crate_closure(root: Path, crate_dir: Path) -> list[Path]:
    """The crate and every workspace crate it depends on (normal deps)."""
    ws = workspace_path_deps(root)
    seen: list[Path] = []
    todo = [crate_dir.resolve()]
    while todo:
        crate = todo.pop()
        if crate in seen:
            continue
        seen.append(crate)
        for table in dependency_tables(crate):
            for name, spec in table.items():
                if isinstance(spec, dict) and "path" in spec:
                    todo.append((crate / spec["path"]).resolve())
                elif isinstance(spec, dict) and spec.get("workspace") and name in ws:
                    todo.append(ws[name])
    # Without tomllib the walk sees nothing: shared/ is a dependency of all four.
    shared = (root / "shared").resolve()
    if len(seen) == 1 and shared.is_dir() and shared != seen[0]:
        seen.append(shared)
    return seen


def uses_otel_sdk(crates: list[Path]) -> bool:
    """Whether one of `crates` depends on the OpenTelemetry SDK directly."""
    return any(name in table for crate in crates for table in dependency_tables(crate)
               for name in SDK_PINNED)


_SKIP_RE = re.compile(
    r"//[^\n]*"                      # line comment
    r"|/\*.*?\*/"                     # block comment
    r"|r(#*)\".*?\"\1"                # raw string
    r"|b?\"(?:\\.|[^\\\"])*\""         # string
    r"|b?'(?:\\.|[^\\'\n])'",         # char literal (not a lifetime)
    re.DOTALL,
)


def strip_comments(text: str) -> str:
    """`text` with its comments blanked, strings kept."""
    return _SKIP_RE.sub(lambda m: " " if m.group(0).startswith("/") else m.group(0), text)


def strip_cfg_test(text: str) -> str:
    """`text` without the items under `#[cfg(test)]` (unit tests set and read
    variables of their own; they are not the service's configuration)."""
    out = []
    pos = 0
    attr = re.compile(r"#\[cfg\(test\)\]")
    while (m := attr.search(text, pos)) is not None:
        out.append(text[pos : m.start()])
        i, depth = m.end(), 0
        while i < len(text):
            skip = _SKIP_RE.match(text, i)
            if skip:
                i = skip.end()
                continue
            ch = text[i]
            i += 1
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    break
            elif ch == ";" and depth == 0:
                break
        pos = i
    out.append(text[pos:])
    return "".join(out)


def vars_read_in(crates: list[Path]) -> set[str]:
    """Variable names the Rust source of `crates` reads (see the module doc)."""
    names: set[str] = set()
    texts = []
    for crate in crates:
        src = crate / "src"
        if src.is_dir():
            texts.extend(strip_cfg_test(p.read_text(encoding="utf-8", errors="replace"))
                         for p in sorted(src.rglob("*.rs")))
    consts: dict[str, str] = {}
    for text in texts:
        consts.update(CONST_DEF_RE.findall(text))
    for text in texts:
        names.update(CALL_LITERAL_RE.findall(text))
        for pair in ENV_PAIR_RE.findall(text):
            names.update(pair)
        names.update(consts[c] for c in CALL_CONST_RE.findall(text) if c in consts)
        names.update(OTEL_LITERAL_RE.findall(strip_comments(text)))
        if LISTEN_ADDR_CALL_RE.search(text):
            names.add("LISTEN_ADDR")
    return {n for n in names if ENV_NAME_RE.match(n)}


@dataclass(frozen=True)
class Source:
    """What one service's crates read."""
    where: str           # "gateway, shared, otlp-fast"
    own: frozenset       # read by the service's own crate
    code: frozenset      # read by any crate of its closure
    reads: frozenset     # code, plus SDK_READS when it uses the SDK
    sdk: bool


@functools.lru_cache(maxsize=None)
def source_of(root: Path, crate: Path) -> Source:
    closure = crate_closure(root, crate)
    code = frozenset(vars_read_in(closure))
    sdk = uses_otel_sdk(closure)
    return Source(
        where=", ".join(p.name for p in closure),
        own=frozenset(vars_read_in([closure[0]])),
        code=code,
        reads=code | SDK_READS if sdk else code,
        sdk=sdk,
    )


def check_sdk_pin(root: Path, rep: Report) -> None:
    """SDK_READS is a snapshot of what the pinned SDK reads: it must be made
    again when Cargo.lock moves to another minor version."""
    lock = read_optional(root / "Cargo.lock")
    if lock is None:
        return
    for crate, made_from in SDK_PINNED.items():
        versions = re.findall(rf'name = "{re.escape(crate)}"\nversion = "([^"]+)"', lock)
        minor = made_from.rsplit(".", 1)[0]
        for version in versions:
            if version.rsplit(".", 1)[0] != minor:
                rep.error(f"Cargo.lock has {crate} {version}, but SDK_READS in tools/check_compose_env.py "
                          f"lists what {crate} {made_from} reads: grep the new version's src/ for "
                          f"\"OTEL_ and update SDK_READS and SDK_PINNED")


# --------------------------------------------------------------------------
# Compose side: one resolved configuration
# --------------------------------------------------------------------------


def rust_services(config: dict, root: Path) -> dict[str, Path]:
    """Compose service name -> crate dir, for services running /app/<crate>."""
    found = {}
    for name, svc in sorted(config.get("services", {}).items()):
        entry = svc.get("entrypoint") or []
        if isinstance(entry, str):
            entry = shlex.split(entry)
        if entry and entry[0].startswith("/app/"):
            crate = root / entry[0][len("/app/") :]
            if (crate / "Cargo.toml").is_file():
                found[name] = crate.resolve()
    return found


def port_of(addr: str | None) -> str | None:
    if not addr or ":" not in addr:
        return None
    return addr.rsplit(":", 1)[1]


def check_environment(config: dict, ours: dict[str, Path], root: Path, strict: bool,
                      rep: Report) -> None:
    """Every variable a service is given is read by it; every OTEL_* variable
    it reads is given to it (see the module doc for why)."""
    services = config["services"]
    passed_anywhere = {v for n in ours for v in (services[n].get("environment") or {})}
    for name, crate in ours.items():
        src = source_of(root, crate)
        env = services[name].get("environment") or {}
        searched = src.where + (f" and {SDK_NAME}" if src.sdk else "")
        for var in sorted(env):
            if var not in ALLOWED_EVERYWHERE and var not in src.reads:
                rep.error(f"service '{name}': compose sets {var}, but {name} never reads it "
                          f"(searched {searched}); a typo, or a setting that has no effect")
        for var in sorted(src.reads - set(env)):
            check_missing(name, var, src, var in passed_anywhere, strict, rep)
        rep.notes.append(f"{name}: passes {len(env)} variables; {searched} read {len(src.reads)}")


def check_missing(name: str, var: str, src: Source, passed_elsewhere: bool, strict: bool,
                  rep: Report) -> None:
    """A variable `name` reads and compose does not pass: an error for OTEL_*,
    else a warning unless only shared code reads it and another service gets it
    (e.g. the OPENAI_API_KEY fallback of shared::genai::api_key runs only in
    the services that call it)."""
    if var in ALLOWED_EVERYWHERE or var in NOT_PASSED:
        return
    if var.startswith("OTEL_"):
        reader = f"its source ({src.where})" if var in src.code else SDK_NAME
        rep.error(f"service '{name}': {var} is read by {reader}, but compose does not pass it, "
                  f"so a value in .env never reaches {name} (pass it through: `{var}:`)")
    elif var in src.own or not passed_elsewhere:
        msg = (f"service '{name}': reads {var}, but compose does not pass it "
               f"(the built-in default applies; .env cannot change it)")
        (rep.error if strict else rep.warn)(msg)


def check_wiring(config: dict, ours: dict[str, Path], rep: Report) -> None:
    """Addresses, probes and service URLs agree on each service's port."""
    services = config["services"]
    listen_port: dict[str, str] = {}
    for name in ours:
        addr = (services[name].get("environment") or {}).get("LISTEN_ADDR")
        if addr is None or not re.fullmatch(r"0\.0\.0\.0:\d+", str(addr)):
            rep.error(f"service '{name}': LISTEN_ADDR must be 0.0.0.0:PORT in a container, got {addr!r}")
        else:
            listen_port[name] = port_of(addr)
    for name in ours:
        svc = services[name]
        test = (svc.get("healthcheck") or {}).get("test") or []
        port = listen_port.get(name)
        if isinstance(test, list) and len(test) >= 3 and test[0] == "CMD" and test[1].startswith("/app/"):
            m = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/readyz", str(test[2]))
            if not m or (port and m.group(1) != port):
                rep.error(f"service '{name}': healthcheck polls {test[2]!r}, expected http://127.0.0.1:{port}/readyz")
        else:
            rep.error(f"service '{name}': healthcheck must be [\"CMD\", \"/app/healthcheck\", \"http://127.0.0.1:PORT/readyz\"], got {test!r}")
        for var, value in (svc.get("environment") or {}).items():
            m = SERVICE_URL_RE.match(str(value or ""))
            if m and m.group(1) in listen_port and m.group(2) != listen_port[m.group(1)]:
                rep.error(
                    f"service '{name}': {var}={value} but '{m.group(1)}' listens on port {listen_port[m.group(1)]}"
                )


def check_every_service(config: dict, rep: Report) -> None:
    """Secrets, health dependencies and published ports, on every service."""
    services = config["services"]
    for name, svc in sorted(services.items()):
        for var, value in (svc.get("environment") or {}).items():
            if SECRET_RE.search(var) and value not in (None, ""):
                rep.error(f"service '{name}': {var} has a value written in a compose file; secrets come from .env or the shell (`{var}:` with no value)")
        for dep, spec in (svc.get("depends_on") or {}).items():
            if (spec or {}).get("condition") == "service_healthy" and dep in services:
                hc = services[dep].get("healthcheck") or {}
                if not hc.get("test") or hc.get("disable") or hc.get("test") == ["NONE"]:
                    rep.error(f"service '{name}' waits for '{dep}' to be healthy, but '{dep}' has no healthcheck")
        for p in svc.get("ports") or []:
            host_ip = p.get("host_ip") if isinstance(p, dict) else None
            if name not in MAY_PUBLISH:
                rep.error(f"service '{name}' publishes a port ({p}); only {sorted(MAY_PUBLISH)} may")
            elif host_ip != "127.0.0.1":
                rep.error(f"service '{name}' publishes {p} beyond 127.0.0.1")


# -- shared build tags -------------------------------------------------------


def image_ref(image: str) -> str:
    """The full name Bake exports `image` as (ragtrace:local is
    docker.io/library/ragtrace:local), so that spellings compare equal."""
    if "@" in image:
        return image
    name, tag = image, "latest"
    if ":" in image.rsplit("/", 1)[-1]:
        name, tag = image.rsplit(":", 1)
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    return f"{name}:{tag}"


def join_names(names: list[str]) -> str:
    quoted = [f"'{n}'" for n in names]
    return ", ".join(quoted[:-1]) + " and " + quoted[-1]


def check_build_tags(config: dict, rep: Report) -> None:
    """No two services both build one image tag (docker/buildx#3576: Bake
    exports them in parallel and the second export fails)."""
    builders: dict[str, list[str]] = {}
    for name, svc in sorted(config["services"].items()):
        if svc.get("build") and svc.get("image"):
            builders.setdefault(image_ref(svc["image"]), []).append(name)
    for ref, names in builders.items():
        if len(names) < 2:
            continue
        image = config["services"][names[0]]["image"]
        rep.error(f"services {join_names(names)} {'both' if len(names) == 2 else 'all'} build image "
                  f"{image}: Compose builds them through Bake in parallel and the second export fails "
                  f"(`image \"{ref}\": already exists`, docker/buildx#3576); build it in one service "
                  f"and give the others only `image:`, or give each its own tag")


# -- backends nothing sends to -----------------------------------------------


def hostnames(name: str, svc: dict) -> set[str]:
    """The names other containers reach `svc` by."""
    names = {name} | ({svc["container_name"]} if svc.get("container_name") else set())
    for net in (svc.get("networks") or {}).values():
        names.update((net or {}).get("aliases") or [])
    return names


def names_host(where: str, text: str, hosts: set[str]) -> bool:
    """Whether `text` (found at `where`) addresses one of `hosts`."""
    if where.startswith("environment ") and text.strip() in hosts:
        return True
    return any(re.search(HOST_REF.format(host=re.escape(h)), text) for h in hosts)


def yaml_lines(text: str) -> list[tuple[tuple[str, ...], str]]:
    """(key path, line) for each line of block-style YAML, comments removed:
    just enough to tell which section an endpoint sits in."""
    out, stack = [], []  # stack: (indent, key)
    for raw in text.splitlines():
        line = YAML_COMMENT_RE.sub("", raw).rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        item = line.lstrip().startswith("- ")
        while stack and (stack[-1][0] > indent or (stack[-1][0] == indent and not item)):
            stack.pop()
        path = tuple(k for _, k in stack)
        key = None if item else YAML_KEY_RE.match(line)
        if key:
            stack.append((indent, key.group(1)))
            path += (key.group(1),)
        out.append((path, line))
    return out


def is_collector_config(lines) -> bool:
    top = {path[0] for path, _ in lines if len(path) == 1}
    return {"exporters", "service"} <= top


def pipeline_exporters(lines) -> set[str]:
    """Exporter ids listed by service.pipelines.*.exporters."""
    used = set()
    for path, line in lines:
        if len(path) == 4 and path[:2] == ("service", "pipelines") and path[3] == "exporters":
            value = line.lstrip()[2:] if line.lstrip().startswith("- ") else line.split(":", 1)[1]
            used.update(re.findall(r"[\w./-]+", value))
    return used


def mounted_texts(svc: dict, config: dict, root: Path) -> list[tuple[str, list]]:
    """(label, yaml_lines) of each text file mounted into `svc` from the
    project (bind volumes, `configs:`)."""
    paths = [Path(v["source"]) for v in svc.get("volumes") or []
             if isinstance(v, dict) and v.get("type") == "bind" and v.get("source")]
    texts = []
    for ref in svc.get("configs") or []:
        spec = (config.get("configs") or {}).get(ref.get("source") if isinstance(ref, dict) else ref) or {}
        if spec.get("file"):
            paths.append(Path(spec["file"]))
        elif spec.get("content"):
            texts.append((f"configs: {ref}", yaml_lines(spec["content"])))
    for path in (p for p in paths if p.resolve().is_relative_to(root)):
        members = sorted(p for p in path.rglob("*") if p.suffix in CONFIG_SUFFIXES) if path.is_dir() else [path]
        for file in members:
            if file.is_file() and file.resolve().is_relative_to(root) and file.stat().st_size <= MAX_MOUNTED_BYTES:
                text = file.read_text(encoding="utf-8", errors="replace")
                if "\0" not in text:
                    texts.append((str(file.resolve().relative_to(root)), yaml_lines(text)))
    return texts


def outbound(svc: dict, config: dict, root: Path) -> list[tuple[str, str]]:
    """(where, text) pairs in which `svc` names what it talks to: environment
    values, command, entrypoint and mounted files (a collector's exporters
    only when a pipeline uses them)."""
    out = [(f"environment {k}", str(v)) for k, v in (svc.get("environment") or {}).items() if v is not None]
    for key in ("command", "entrypoint"):
        if svc.get(key):
            value = svc[key]
            out.append((key, " ".join(value) if isinstance(value, list) else str(value)))
    files = mounted_texts(svc, config, root)
    used = set().union(*(pipeline_exporters(lines) for _, lines in files if is_collector_config(lines)))
    for label, lines in files:
        collector = is_collector_config(lines)
        kept = [line for path, line in lines
                if not (collector and len(path) >= 2 and path[0] == "exporters" and path[1] not in used)]
        out.append((label, "\n".join(kept)))
    return out


def setup_jobs(config: dict) -> set[str]:
    """Services another one waits for to complete: one-shot jobs, not backends."""
    return {dep for svc in config["services"].values() for dep, spec in (svc.get("depends_on") or {}).items()
            if (spec or {}).get("condition") == "service_completed_successfully"}


def is_fed(name: str, config: dict, talks: dict[str, list], jobs: set[str], root: Path) -> bool:
    """Pushed to by a service that is not a setup job, or pulling (its own
    mounted scrape_configs) from a service that runs."""
    services = config["services"]
    hosts = hostnames(name, services[name])
    for other, pairs in talks.items():
        if other not in (name, *jobs) and any(names_host(w, t, hosts) for w, t in pairs):
            return True
    for label, lines in mounted_texts(services[name], config, root):
        if any(path[:1] == ("scrape_configs",) for path, _ in lines):
            text = "\n".join(line for _, line in lines)
            if any(names_host(label, text, hostnames(o, s)) for o, s in services.items() if o != name):
                return True
    return False


def check_backends(config: dict, known: dict[str, dict], base_names: set[str] | None, root: Path,
                   rep: Report) -> None:
    """Every service a flag adds is fed (module doc); and (a warning) no
    service names one that does not run in this combination. `known` is every
    service of every combination; `base_names`, compose.yaml's services (None:
    no overlays considered)."""
    services = config["services"]
    jobs = setup_jobs(config)
    talks = {name: outbound(svc, config, root) for name, svc in services.items()}
    for name, svc in sorted(services.items()):
        if svc.get("profiles"):
            origin = "--profile " + "/".join(svc["profiles"])
        elif base_names is not None and name not in base_names:
            origin = "an overlay file"
        else:
            continue
        if name not in jobs and not is_fed(name, config, talks, jobs, root):
            rep.error(f"{origin} starts '{name}', but nothing sends to it: no other service names "
                      f"{name}:PORT or //{name} in its environment, command or mounted config "
                      f"(depends_on, setup jobs and collector exporters outside every pipeline do not count)")
    absent = {n: s for n, s in known.items() if n not in services}
    for name, pairs in sorted(talks.items()):
        for other, svc in sorted(absent.items()):
            where = next((w for w, t in pairs if names_host(w, t, hostnames(other, svc))), None)
            if where:
                rep.warn(f"service '{name}' names '{other}' ({where}), but '{other}' does not run "
                         f"in this combination: what {name} sends there fails until it does")


# --------------------------------------------------------------------------
# Compose side: the whole project
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Combination:
    """Compose files (compose.yaml first) and the profiles switched on."""
    files: tuple[str, ...]
    profiles: tuple[str, ...]

    def args(self) -> list[str]:
        return ([a for f in self.files for a in ("-f", f)]
                + [a for p in self.profiles for a in ("--profile", p)])

    def label(self) -> str:
        return " + ".join(self.files) + "".join(f" --profile {p}" for p in self.profiles)


# A single saved configuration (--config-json, the self-test): no label.
SINGLE = Combination((), ())


class Findings:
    """Messages from many combinations, each kept once with where it appeared."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}
        self.warnings: dict[str, list[str]] = {}
        self.notes: list[str] = []

    def add(self, part: Report, label: str) -> None:
        for msg in part.errors:
            self.errors.setdefault(msg, []).append(label)
        for msg in part.warnings:
            self.warnings.setdefault(msg, []).append(label)
        self.notes.extend(n for n in part.notes if n not in self.notes)

    @staticmethod
    def located(msg: str, labels: list[str]) -> str:
        if not labels[0]:
            return msg
        more = len(labels) - 1
        tail = f", and {more} more combination{'s' if more > 1 else ''}" if more else ""
        return f"{msg} [{labels[0]}{tail}]"

    def into(self, rep: Report) -> None:
        rep.errors.extend(self.located(m, ls) for m, ls in self.errors.items())
        rep.warnings.extend(self.located(m, ls) for m, ls in self.warnings.items())
        rep.notes.extend(self.notes)


def full_combinations(configs: dict[Combination, dict]) -> dict[tuple[str, ...], Combination]:
    """For each set of files, its combination with every profile on."""
    full: dict[tuple[str, ...], Combination] = {}
    for combo in configs:
        if combo.files not in full or len(combo.profiles) > len(full[combo.files].profiles):
            full[combo.files] = combo
    return full


def check_dockerfile(dockerfile: str | None, configs: list[dict], root: Path, rep: Report) -> None:
    """Every binary a service runs or probes with is built by the Dockerfile."""
    if dockerfile is None:
        return
    built = set(re.findall(r"(?:^|\s)-p\s+([A-Za-z0-9_-]+)", dockerfile))
    wanted: dict[str, str] = {}
    for config in configs:
        for name, crate in rust_services(config, root).items():
            wanted.setdefault(crate.name, name)
            test = (config["services"][name].get("healthcheck") or {}).get("test") or []
            if isinstance(test, list) and len(test) >= 2 and str(test[1]).startswith("/app/"):
                wanted.setdefault(str(test[1])[len("/app/") :], f"{name} (health probe)")
    for binary, user in sorted(wanted.items()):
        if binary not in built:
            rep.error(f"Dockerfile: `cargo build` has no `-p {binary}`, but {user} runs /app/{binary}")
        elif not (root / binary / "Cargo.toml").is_file():
            rep.error(f"Dockerfile builds -p {binary}, but {binary}/Cargo.toml is missing from the workspace")


def check_env_example(env_example: str | None, configs: list[dict], compose_texts: list[str],
                      root: Path, rep: Report) -> None:
    """.env.example names every variable a user can set, and only those."""
    interpolated = {v for text in compose_texts for v in INTERPOLATION_RE.findall(text)}
    passed_by_ours, passthrough = set(), set()
    for config in configs:
        services = config["services"]
        passed_by_ours |= {v for n in rust_services(config, root) for v in (services[n].get("environment") or {})}
        passthrough |= {v for svc in services.values()
                        for v, val in (svc.get("environment") or {}).items() if val is None}
    if env_example is None:
        rep.error(".env.example is missing")
        return
    for var in sorted(passed_by_ours | interpolated):
        if not re.search(rf"(?<![A-Z0-9_]){re.escape(var)}(?![A-Z0-9_])", env_example):
            rep.error(f".env.example does not mention {var} (compose passes or interpolates it)")
    settable = interpolated | passthrough
    for var in sorted(set(DOC_ASSIGNMENT_RE.findall(env_example))):
        if var not in settable and not var.startswith(COMPOSE_CLI_PREFIXES):
            rep.error(f".env.example documents {var}=..., but setting it in .env has no effect "
                      f"(the compose files neither interpolate nor pass it through)")


def check_resolved(root: Path, configs: dict[Combination, dict], compose_texts: list[str],
                   env_example: str | None, dockerfile: str | None, strict: bool = False) -> Report:
    """Every rule, on resolved configurations keyed by their combination."""
    root = root.resolve()
    rep, found = Report(), Findings()
    full = full_combinations(configs)
    base = full.get((BASE_FILE,))
    base_names = set(configs[base]["services"]) if base else None
    known: dict[str, dict] = {}
    for combo in full.values():
        for name, svc in configs[combo].setdefault("services", {}).items():
            known.setdefault(name, svc)
    any_ours = False
    for combo, config in configs.items():
        config.setdefault("services", {})
        part = Report()
        if combo in full.values():
            ours = rust_services(config, root)
            any_ours = any_ours or bool(ours)
            check_environment(config, ours, root, strict, part)
            check_wiring(config, ours, part)
            check_every_service(config, part)
        check_build_tags(config, part)
        check_backends(config, known, base_names, root, part)
        found.add(part, combo.label())
    if not any_ours:
        rep.error("no compose service runs a workspace binary (entrypoint /app/<crate>); nothing was checked")
        return rep
    found.into(rep)
    full_configs = [configs[c] for c in full.values()]
    check_dockerfile(dockerfile, full_configs, root, rep)
    check_env_example(env_example, full_configs, compose_texts, root, rep)
    check_sdk_pin(root, rep)
    return rep


def check(config: dict, root: Path, compose_text: str, env_example: str | None,
          dockerfile: str | None, strict: bool = False) -> Report:
    """Every rule on one resolved configuration (all profiles on, no overlay)."""
    return check_resolved(root, {SINGLE: config}, [compose_text], env_example, dockerfile, strict)


# --------------------------------------------------------------------------
# Running compose
# --------------------------------------------------------------------------


def compose_command(arg: str | None) -> list[str]:
    cmd = arg or os.environ.get("DOCKER_COMPOSE") or shutil.which("docker-compose")
    if not cmd:
        sys.exit("check_compose_env: no compose binary: pass --compose, set DOCKER_COMPOSE, "
                 "or run tools/validate_compose.sh (it installs one)")
    return shlex.split(cmd)


def run_compose(cmd: list[str], root: Path, args: list[str]) -> str:
    """stdout of `CMD ARGS` in `root`, with an empty env file and a scrubbed
    environment: the result must not depend on the caller's .env or shell."""
    with tempfile.NamedTemporaryFile("w", suffix=".env") as empty:
        argv = cmd + ["--project-directory", str(root), "--env-file", empty.name] + args
        env = {k: os.environ[k] for k in ("PATH", "HOME", "TMPDIR") if k in os.environ}
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=root)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        sys.exit(f"check_compose_env: `{' '.join(argv)}` failed with exit code {proc.returncode}")
    return proc.stdout


def subsets(items: list[str]) -> list[tuple[str, ...]]:
    """Every subset of `items`, smallest first."""
    return [c for r in range(len(items) + 1) for c in itertools.combinations(items, r)]


def overlay_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob(OVERLAY_GLOB))


def combinations(cmd: list[str], root: Path) -> list[Combination]:
    """compose.yaml with every subset of the overlays, each with every subset
    of the profiles those files define."""
    combos = []
    for overlays in subsets(overlay_files(root)):
        files = (BASE_FILE, *overlays)
        profiles = run_compose(cmd, root, Combination(files, ()).args() + ["config", "--profiles"]).split()
        combos.extend(Combination(files, chosen) for chosen in subsets(sorted(profiles)))
    return combos


def resolve_config(cmd: list[str], root: Path, combo: Combination) -> dict:
    return json.loads(run_compose(cmd, root, combo.args() + ["config", "--format", "json"]))


def read_optional(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def check_project(root: Path, cmd: list[str], strict: bool = False) -> Report:
    """Every rule, on every combination of the project in `root`."""
    configs = {combo: resolve_config(cmd, root, combo) for combo in combinations(cmd, root)}
    texts = [(root / f).read_text(encoding="utf-8") for f in (BASE_FILE, *overlay_files(root))]
    return check_resolved(root, configs, texts, read_optional(root / ".env.example"),
                          read_optional(root / "Dockerfile"), strict)


def print_report(rep: Report, out=sys.stdout) -> None:
    for note in rep.notes:
        print(f"  {note}", file=out)
    for w in rep.warnings:
        print(f"warning: {w}", file=out)
    for e in rep.errors:
        print(f"error: {e}", file=out)


def finish(rep: Report) -> int:
    print_report(rep)
    status = "FAILED" if rep.errors else "ok"
    print(f"check_compose_env: {status}: {len(rep.errors)} errors, {len(rep.warnings)} warnings")
    return 1 if rep.errors else 0


# --------------------------------------------------------------------------
# Self-test: a fake workspace and fake compose configs, each broken one way.
# (tools/test_check_compose_env.py runs the real compose on fixture files.)
# --------------------------------------------------------------------------

_FAKE_FILES = {
    "Cargo.toml": '[workspace]\nmembers = ["shared", "gateway", "worker", "healthcheck"]\n'
                  '[workspace.dependencies]\nshared = { path = "shared" }\n',
    "shared/Cargo.toml": '[package]\nname = "shared"\n',
    "shared/src/config.rs": 'pub fn listen_addr(d: &str) -> u16 { env_or(\n    "LISTEN_ADDR",\n    d) }\n'
                            'fn log() { std::env::var("LOG_FORMAT").ok(); }\n'
                            'fn otel() { std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok();\n'
                            '  either("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"); }\n'
                            '// "OTEL_IN_A_COMMENT" is not read\n',
    "gateway/Cargo.toml": '[package]\nname = "gateway"\n[dependencies]\nshared.workspace = true\n',
    "gateway/src/main.rs": 'const KEY_VAR: &str = "GATEWAY_API_KEY";\n'
                           'fn main() { let _ = config::listen_addr("127.0.0.1:8000");\n'
                           '  let _ = config::env_string("UPSTREAM_URL", "http://127.0.0.1:3000");\n'
                           '  let _ = shared::genai::api_key(KEY_VAR);\n'
                           '  let _ = env_or::<u64>("GATEWAY_LIMIT", 3); }\n',
    "worker/Cargo.toml": '[package]\nname = "worker"\n[dependencies]\nshared = { path = "../shared" }\n',
    "worker/src/main.rs": 'fn main() { let _ = config::listen_addr("127.0.0.1:3000");\n'
                          '  let _ = std::env::var_os("WORK_DIR"); }\n',
    "healthcheck/Cargo.toml": '[package]\nname = "healthcheck"\n',
    "Dockerfile": "RUN cargo build --release --locked --bins -p gateway -p worker -p healthcheck\n",
    "compose.yaml": "x: ${OTEL_EXPORTER_OTLP_ENDPOINT:-http://jaeger:4318}\ny: ${GATEWAY_PORT:-8000}\n",
    ".env.example": "# The gateway's published port.\n#GATEWAY_PORT=8000\n#OTEL_EXPORTER_OTLP_ENDPOINT=http://jaeger:4318\n"
                    "#OTEL_EXPORTER_OTLP_HEADERS=k=v\n#OTEL_EXPORTER_OTLP_TRACES_HEADERS=k=v\n"
                    "#GATEWAY_API_KEY=\n#GATEWAY_LIMIT=3\n#RUST_LOG=info\n#LOG_FORMAT=json\n#COMPOSE_PROFILES=phoenix\n"
                    "# Fixed by compose.yaml: LISTEN_ADDR, UPSTREAM_URL, WORK_DIR.\n",
}


def _fake_config() -> dict:
    def svc(binary: str, port: str, env: dict) -> dict:
        return {
            "entrypoint": [f"/app/{binary}"],
            "environment": {"LISTEN_ADDR": f"0.0.0.0:{port}", "RUST_LOG": None, "LOG_FORMAT": None,
                            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318",
                            "OTEL_EXPORTER_OTLP_HEADERS": None, "OTEL_EXPORTER_OTLP_TRACES_HEADERS": None,
                            **env},
            "healthcheck": {"test": ["CMD", "/app/healthcheck", f"http://127.0.0.1:{port}/readyz"]},
        }
    gateway = svc("gateway", "8000", {"UPSTREAM_URL": "http://worker:3000", "GATEWAY_API_KEY": None,
                                       "GATEWAY_LIMIT": None})
    gateway["ports"] = [{"host_ip": "127.0.0.1", "target": 8000, "published": "8000"}]
    gateway["depends_on"] = {"worker": {"condition": "service_healthy", "required": True}}
    return {"services": {"gateway": gateway, "worker": svc("worker", "3000", {"WORK_DIR": "/data"}),
                         "jaeger": {"image": "jaegertracing/jaeger"}}}


def _self_test_cases() -> list[tuple]:
    cases = []

    def case(name, mutate=None, files=None, expect_fail=True, expect_text=(), expect_warning=(),
             expect_no_warning=False):
        cases.append((name, mutate, files or {}, expect_fail, expect_text, expect_warning, expect_no_warning))

    env_example = _FAKE_FILES[".env.example"]
    case("a correct setup passes", expect_fail=False, expect_no_warning=True)
    case("a typo'd variable fails, naming service and variable",
         lambda c: c["services"]["gateway"]["environment"].update({"UPSTREAM_ULR": "http://worker:3000"}),
         expect_text=("service 'gateway'", "UPSTREAM_ULR"))
    case("a variable read by another service only fails",
         lambda c: c["services"]["gateway"]["environment"].update({"WORK_DIR": "/data"}),
         expect_text=("service 'gateway'", "WORK_DIR"))
    case("a name only mentioned in a doc comment does not count as read",
         lambda c: c["services"]["worker"]["environment"].update({"README_VAR": None}),
         files={"worker/src/lib.rs": '//! `README_VAR` is documented, never read\n'},
         expect_text=("service 'worker'", "README_VAR"))
    case("a variable read only by unit tests does not count as read",
         lambda c: c["services"]["worker"]["environment"].update({"TEST_ONLY_VAR": None}),
         files={"worker/src/lib.rs": 'fn f() -> char { \'{\' }\n#[cfg(test)]\nmod tests {\n'
                                     '  fn t() { let s = "}"; std::env::var("TEST_ONLY_VAR").ok(); }\n}\n'
                                     'fn g() { std::env::var("AFTER_TESTS").ok(); }\n',
                ".env.example": env_example + "#TEST_ONLY_VAR=x\n"},
         expect_text=("service 'worker'", "TEST_ONLY_VAR"))
    case("code after a #[cfg(test)] module still counts",
         lambda c: c["services"]["worker"]["environment"].update({"AFTER_TESTS": None}),
         files={"worker/src/lib.rs": '#[cfg(test)]\nmod tests { fn t() { let _ = \'}\'; } }\n'
                                     'fn g() { std::env::var("AFTER_TESTS").ok(); }\n',
                ".env.example": env_example + "#AFTER_TESTS=x\n"},
         expect_fail=False)
    case("a shared variable passed to one service does not warn for the others",
         lambda c: c["services"]["worker"]["environment"].update({"SHARED_KEY": None}),
         files={"shared/src/genai.rs": 'pub fn key() { std::env::var("SHARED_KEY").ok(); }\n',
                ".env.example": env_example + "#SHARED_KEY=x\n"},
         expect_fail=False, expect_no_warning=True)
    case("an OTEL_* variable nothing reads fails like any other",
         lambda c: c["services"]["worker"]["environment"].update({"OTEL_TRACES_SAMPLER": None}),
         files={".env.example": env_example + "#OTEL_TRACES_SAMPLER=always_on\n"},
         expect_text=("service 'worker'", "OTEL_TRACES_SAMPLER", "never reads"))
    case("an OTEL_* name in a comment is not read",
         lambda c: c["services"]["worker"]["environment"].update({"OTEL_IN_A_COMMENT": None}),
         files={".env.example": env_example + "#OTEL_IN_A_COMMENT=x\n"},
         expect_text=("service 'worker'", "OTEL_IN_A_COMMENT", "never reads"))
    case("an OTEL_* variable read in shared code (as a second argument) must reach every service",
         lambda c: c["services"]["worker"]["environment"].pop("OTEL_EXPORTER_OTLP_HEADERS"),
         expect_text=("service 'worker': OTEL_EXPORTER_OTLP_HEADERS is read by its source",))
    case("the SDK's variables count once a crate depends on it",
         files={"shared/Cargo.toml": '[package]\nname = "shared"\n[dependencies]\nopentelemetry_sdk = "0.32"\n'},
         expect_text=("service 'gateway': OTEL_BSP_SCHEDULE_DELAY is read by the OpenTelemetry SDK",))
    case("a variable the code reads but compose omits only warns",
         lambda c: c["services"]["gateway"]["environment"].pop("GATEWAY_LIMIT"),
         files={".env.example": env_example.replace("#GATEWAY_LIMIT=3\n", "")},
         expect_fail=False, expect_warning=("GATEWAY_LIMIT",))
    case("a hard-coded secret fails",
         lambda c: c["services"]["gateway"]["environment"].update({"GATEWAY_API_KEY": "sk-live-123"}),
         expect_text=("GATEWAY_API_KEY", "secrets"))
    case("a URL with the wrong port fails",
         lambda c: c["services"]["gateway"]["environment"].update({"UPSTREAM_URL": "http://worker:3001"}),
         expect_text=("UPSTREAM_URL", "3000"))
    case("LISTEN_ADDR on loopback fails",
         lambda c: c["services"]["worker"]["environment"].update({"LISTEN_ADDR": "127.0.0.1:3000"}),
         expect_text=("LISTEN_ADDR",))
    case("a probe on the wrong port fails",
         lambda c: c["services"]["worker"]["healthcheck"].update(
             {"test": ["CMD", "/app/healthcheck", "http://127.0.0.1:8000/readyz"]}),
         expect_text=("healthcheck",))
    case("waiting for health on a service without a healthcheck fails",
         lambda c: c["services"]["gateway"]["depends_on"].update({"jaeger": {"condition": "service_healthy"}}),
         expect_text=("'jaeger' has no healthcheck",))
    case("publishing an internal service fails",
         lambda c: c["services"]["worker"].update({"ports": [{"host_ip": "127.0.0.1", "target": 3000}]}),
         expect_text=("'worker' publishes",))
    case("publishing beyond loopback fails",
         lambda c: c["services"]["gateway"].update({"ports": [{"target": 8000, "published": "8000"}]}),
         expect_text=("beyond 127.0.0.1",))
    case("two services building one tag fail",
         lambda c: [c["services"][n].update({"image": "app:local", "build": {"context": "."}})
                    for n in ("gateway", "worker")],
         expect_text=("services 'gateway' and 'worker' both build image app:local",))
    case("a profile-scoped service nothing names fails",
         lambda c: c["services"].update({"phoenix": {"image": "phoenix", "profiles": ["phoenix"]}}),
         expect_text=("--profile phoenix starts 'phoenix', but nothing sends to it",))
    case("a profile-scoped service another names passes",
         lambda c: (c["services"].update({"tempo": {"image": "tempo", "profiles": ["tempo"]}}),
                    c["services"]["jaeger"].update({"command": ["--forward=http://tempo:4318"]})),
         expect_fail=False)
    case("a binary the Dockerfile does not build fails",
         files={"Dockerfile": "RUN cargo build --release -p gateway -p healthcheck\n"},
         expect_text=("-p worker",))
    case("an undocumented variable fails",
         files={".env.example": env_example.replace("#GATEWAY_LIMIT=3\n", "")},
         expect_text=(".env.example does not mention GATEWAY_LIMIT",))
    case("a documented setting with no effect fails",
         files={".env.example": env_example + "#LISTEN_ADDR=0.0.0.0:9999\n"},
         expect_text=("documents LISTEN_ADDR",))
    case("another SDK minor version in Cargo.lock fails",
         files={"Cargo.lock": '[[package]]\nname = "opentelemetry_sdk"\nversion = "0.33.0"\n'},
         expect_text=("Cargo.lock has opentelemetry_sdk 0.33.0",))
    case("no workspace service at all fails",
         lambda c: c["services"].update(
             {n: {"image": "x"} for n in ("gateway", "worker")}),
         expect_text=("nothing was checked",))
    return cases


def _self_test_problems(rep: Report, expect_fail, expect_text, expect_warning, expect_no_warning) -> list[str]:
    problems = []
    if bool(rep.errors) != expect_fail:
        problems.append(f"expected {'failure' if expect_fail else 'success'}, got errors={rep.errors}")
    for text in expect_text:
        if not any(text in e for e in rep.errors):
            problems.append(f"no error mentions {text!r}: {rep.errors}")
    for text in expect_warning:
        if not any(text in w for w in rep.warnings):
            problems.append(f"no warning mentions {text!r}: {rep.warnings}")
    if expect_no_warning and rep.warnings:
        problems.append(f"expected no warning, got {rep.warnings}")
    return problems


def self_test() -> int:
    import copy

    passed = failed = 0
    for name, mutate, files, *expect in _self_test_cases():
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            for rel, text in {**_FAKE_FILES, **files}.items():
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_text(text)
            config = copy.deepcopy(_fake_config())
            if mutate:
                mutate(config)
            rep = check(config, root, (root / "compose.yaml").read_text(),
                        read_optional(root / ".env.example"), read_optional(root / "Dockerfile"))
        problems = _self_test_problems(rep, *expect)
        if problems:
            failed += 1
            print(f"FAIL  {name}")
            for p in problems:
                print(f"      {p}")
        else:
            passed += 1
            print(f"ok    {name}")
    print(f"self-test: {passed} passed, {failed} failed")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--compose", help="compose command (default: $DOCKER_COMPOSE or docker-compose)")
    ap.add_argument("--config-json", type=Path, help="use a saved `config --format json` instead of running compose")
    ap.add_argument("--root", type=Path, default=ROOT, help="the workspace root (default: this repository)")
    ap.add_argument("--strict", action="store_true", help="treat warnings as errors")
    ap.add_argument("--list-combinations", action="store_true",
                    help="print the compose arguments (-f ... --profile ...) of every combination, one a line")
    ap.add_argument("--self-test", action="store_true", help="prove on fake inputs that every check can fail")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test()
    root = args.root.resolve()
    if args.config_json:
        config = json.loads(args.config_json.read_text(encoding="utf-8"))
        return finish(check(config, root, (root / BASE_FILE).read_text(encoding="utf-8"),
                            read_optional(root / ".env.example"), read_optional(root / "Dockerfile"),
                            args.strict))
    cmd = compose_command(args.compose)
    if args.list_combinations:
        for combo in combinations(cmd, root):
            print(" ".join(combo.args()))
        return 0
    return finish(check_project(root, cmd, args.strict))


if __name__ == "__main__":
    sys.exit(main())
