#!/usr/bin/env python3
"""Cross-check compose.yaml against the Rust source. Standard library only.

`docker compose config -q` proves compose.yaml is valid Compose. It cannot
know that `QDRANT_ULR` is a typo: a variable no service reads is silently
ignored, and the setting it was meant to change never changes. This script
reads the resolved project (`docker-compose config --format json`) and the
services' Rust source and fails when they disagree.

Errors (exit 1):
  * a service is given an environment variable its code never reads
    (OTEL_* and RUST_LOG are read by the OpenTelemetry SDK and
    tracing-subscriber, not by our source, and are allowed everywhere);
  * a secret-looking variable (*_API_KEY, *_SECRET*, *_TOKEN, *_PASSWORD,
    *_HEADERS) has a value written in compose.yaml instead of coming from
    .env or the shell;
  * wiring: LISTEN_ADDR is not 0.0.0.0:PORT, the health probe polls another
    port, a service URL (http://retrieval:8080) names the wrong port, a
    `service_healthy` dependency has no healthcheck, a binary the compose
    file runs is not built by the Dockerfile, or a service other than the
    gateway and the trace and metrics UIs publishes a port (or publishes beyond
    127.0.0.1);
  * .env.example does not mention a variable compose.yaml passes or
    interpolates, or documents a setting (`#NAME=value`) that has no effect.
Warnings: a variable the code reads that compose.yaml does not pass (the
service default applies and .env cannot change it). A variable read only in a
shared crate warns only when no service gets it: shared helpers such as the
OPENAI_API_KEY fallback run only in the services that call them. `--strict`
makes warnings errors.

Which variables a service reads: every string literal that looks like an
environment variable name (`"QDRANT_URL"`) and is the first argument of a
function call in the service's crate or in the workspace crates it depends on
(shared/), so `env_or("X", ..)`, `env_string("X", ..)`, `env_millis("X", ..)`,
`env_opt("X")`, `std::env::var("X")`, `var_os("X")`, `api_key("X")` all count,
as does a `const NAME: &str = "X"` passed the same way; a call to
`listen_addr(` reads LISTEN_ADDR. Items under `#[cfg(test)]` are skipped. A
service is a compose service whose entrypoint is /app/NAME with a
NAME/Cargo.toml in the workspace.

Usage:
  tools/check_compose_env.py [--compose CMD]      runs CMD ... config --format json
  tools/check_compose_env.py --config-json FILE   a saved `config --format json`
  tools/check_compose_env.py --self-test          proves the checks can fail

CMD defaults to $DOCKER_COMPOSE, else `docker-compose` on PATH; it may be
two words ("docker compose"). The config is resolved with all profiles on, an
empty env file and a scrubbed environment, so your .env and shell do not
change the result (a saved FILE should be made the same way).
"""

from __future__ import annotations

import argparse
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

# Read by libraries, not by our source: allowed on every service.
ALLOWED_EVERYWHERE_PREFIXES = ("OTEL_",)
ALLOWED_EVERYWHERE = {"RUST_LOG"}
# Only these may publish ports on the host, and only on loopback: the gateway
# and the trace and metrics UIs.
MAY_PUBLISH = {"gateway", "jaeger", "phoenix", "prometheus"}
# Compose's own variables may be documented in .env.example.
COMPOSE_CLI_PREFIXES = ("COMPOSE_", "DOCKER_")

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
# ${NAME...} in compose.yaml, not the $${...} escape
INTERPOLATION_RE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")
# `#NAME=value` or `NAME=value` at the start of a line: a documented setting
DOC_ASSIGNMENT_RE = re.compile(r"^#?([A-Z][A-Z0-9_]*)=", re.MULTILINE)
SERVICE_URL_RE = re.compile(r"^https?://([a-z0-9][a-z0-9-]*):(\d+)(?:/|$)")


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
        manifest = crate / "Cargo.toml"
        if not manifest.is_file():
            continue
        data = _load_toml(manifest)
        tables = [data.get("dependencies", {})]
        for target in data.get("target", {}).values():
            tables.append(target.get("dependencies", {}))
        for table in tables:
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


_SKIP_RE = re.compile(
    r"//[^\n]*"                      # line comment
    r"|/\*.*?\*/"                     # block comment
    r"|r(#*)\".*?\"\1"                # raw string
    r"|b?\"(?:\\.|[^\\\"])*\""         # string
    r"|b?'(?:\\.|[^\\'\n])'",         # char literal (not a lifetime)
    re.DOTALL,
)


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
        if LISTEN_ADDR_CALL_RE.search(text):
            names.add("LISTEN_ADDR")
    return {n for n in names if ENV_NAME_RE.match(n)}


def allowed_everywhere(name: str) -> bool:
    return name in ALLOWED_EVERYWHERE or name.startswith(ALLOWED_EVERYWHERE_PREFIXES)


# --------------------------------------------------------------------------
# Compose side
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
                found[name] = crate
    return found


def port_of(addr: str | None) -> str | None:
    if not addr or ":" not in addr:
        return None
    return addr.rsplit(":", 1)[1]


def check(config: dict, root: Path, compose_text: str, env_example: str | None,
          dockerfile: str | None, strict: bool = False) -> Report:
    rep = Report()
    services = config.get("services", {})
    ours = rust_services(config, root)
    if not ours:
        rep.error("no compose service runs a workspace binary (entrypoint /app/<crate>); nothing was checked")
        return rep

    # -- environment vs source ---------------------------------------------
    listen_port: dict[str, str] = {}
    passed_anywhere = {v for n in ours for v in (services[n].get("environment") or {})}
    for name, crate in ours.items():
        closure = crate_closure(root, crate)
        own = vars_read_in([closure[0]])
        reads = own | vars_read_in(closure[1:])
        where = ", ".join(sorted(p.name for p in closure))
        env = services[name].get("environment") or {}
        for var in sorted(env):
            if allowed_everywhere(var) or var in reads:
                continue
            rep.error(
                f"service '{name}': compose.yaml sets {var}, but {name} never reads it "
                f"(searched {where}); a typo, or a setting that has no effect"
            )
        for var in sorted(reads - set(env)):
            # A variable read only in a shared crate (e.g. the OPENAI_API_KEY
            # fallback of shared::genai::api_key) is read only by the services
            # that call that code: it is missing only if no service gets it.
            if allowed_everywhere(var) or (var not in own and var in passed_anywhere):
                continue
            msg = (f"service '{name}': reads {var}, but compose.yaml does not pass it "
                   f"(the built-in default applies; .env cannot change it)")
            (rep.error if strict else rep.warn)(msg)
        rep.notes.append(f"{name}: passes {len(env)} variables; source ({where}) reads {len(reads)}")

        # -- wiring ----------------------------------------------------------
        addr = env.get("LISTEN_ADDR")
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

    # -- binaries the Dockerfile builds --------------------------------------
    if dockerfile is not None:
        built = set(re.findall(r"(?:^|\s)-p\s+([A-Za-z0-9_-]+)", dockerfile))
        wanted = {}
        for name, crate in ours.items():
            wanted[crate.name] = name
            test = (services[name].get("healthcheck") or {}).get("test") or []
            if isinstance(test, list) and len(test) >= 2 and str(test[1]).startswith("/app/"):
                wanted.setdefault(str(test[1])[len("/app/") :], f"{name} (health probe)")
        for binary, user in sorted(wanted.items()):
            if binary not in built:
                rep.error(f"Dockerfile: `cargo build` has no `-p {binary}`, but {user} runs /app/{binary}")
            elif not (root / binary / "Cargo.toml").is_file():
                rep.error(f"Dockerfile builds -p {binary}, but {binary}/Cargo.toml is missing from the workspace")

    # -- every service: secrets, dependencies, published ports ---------------
    for name, svc in sorted(services.items()):
        for var, value in (svc.get("environment") or {}).items():
            if SECRET_RE.search(var) and value not in (None, ""):
                rep.error(f"service '{name}': {var} has a value written in compose.yaml; secrets come from .env or the shell (`{var}:` with no value)")
        for dep, spec in (svc.get("depends_on") or {}).items():
            if (spec or {}).get("condition") == "service_healthy":
                target = services.get(dep, {})
                hc = target.get("healthcheck") or {}
                if not hc.get("test") or hc.get("disable") or hc.get("test") == ["NONE"]:
                    rep.error(f"service '{name}' waits for '{dep}' to be healthy, but '{dep}' has no healthcheck")
        for p in svc.get("ports") or []:
            host_ip = p.get("host_ip") if isinstance(p, dict) else None
            if name not in MAY_PUBLISH:
                rep.error(f"service '{name}' publishes a port ({p}); only {sorted(MAY_PUBLISH)} may")
            elif host_ip != "127.0.0.1":
                rep.error(f"service '{name}' publishes {p} beyond 127.0.0.1")

    # -- .env.example ---------------------------------------------------------
    interpolated = set(INTERPOLATION_RE.findall(compose_text))
    passed_by_ours = {v for n in ours for v in (services[n].get("environment") or {})}
    passthrough = {
        v for svc in services.values() for v, val in (svc.get("environment") or {}).items() if val is None
    }
    if env_example is None:
        rep.error(".env.example is missing")
    else:
        for var in sorted(passed_by_ours | interpolated):
            if not re.search(rf"(?<![A-Z0-9_]){re.escape(var)}(?![A-Z0-9_])", env_example):
                rep.error(f".env.example does not mention {var} (compose.yaml passes or interpolates it)")
        settable = interpolated | passthrough
        for var in sorted(set(DOC_ASSIGNMENT_RE.findall(env_example))):
            if var in settable or var.startswith(COMPOSE_CLI_PREFIXES):
                continue
            rep.error(f".env.example documents {var}=..., but setting it in .env has no effect "
                      f"(compose.yaml neither interpolates nor passes it through)")
    return rep


# --------------------------------------------------------------------------
# Running compose
# --------------------------------------------------------------------------


def compose_command(arg: str | None) -> list[str]:
    cmd = arg or os.environ.get("DOCKER_COMPOSE") or shutil.which("docker-compose")
    if not cmd:
        sys.exit("check_compose_env: no compose binary: pass --compose, set DOCKER_COMPOSE, "
                 "or run tools/validate_compose.sh (it installs one)")
    return shlex.split(cmd)


def resolve_config(cmd: list[str], root: Path) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".env") as empty:
        argv = cmd + ["-f", str(root / "compose.yaml"), "--project-directory", str(root),
                      "--env-file", empty.name, "--profile", "*", "config", "--format", "json"]
        # A scrubbed environment: the result must not depend on the caller's shell.
        env = {k: os.environ[k] for k in ("PATH", "HOME", "TMPDIR") if k in os.environ}
        proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        sys.exit(f"check_compose_env: `{' '.join(argv)}` failed with exit code {proc.returncode}")
    return json.loads(proc.stdout)


def read_optional(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.is_file() else None


def print_report(rep: Report, out=sys.stdout) -> None:
    for note in rep.notes:
        print(f"  {note}", file=out)
    for w in rep.warnings:
        print(f"warning: {w}", file=out)
    for e in rep.errors:
        print(f"error: {e}", file=out)


def run(root: Path, config: dict, strict: bool) -> int:
    rep = check(
        config,
        root,
        compose_text=(root / "compose.yaml").read_text(encoding="utf-8"),
        env_example=read_optional(root / ".env.example"),
        dockerfile=read_optional(root / "Dockerfile"),
        strict=strict,
    )
    print_report(rep)
    status = "FAILED" if rep.errors else "ok"
    print(f"check_compose_env: {status}: {len(rep.errors)} errors, {len(rep.warnings)} warnings")
    return 1 if rep.errors else 0


# --------------------------------------------------------------------------
# Self-test: a fake workspace and fake compose configs, each broken one way.
# --------------------------------------------------------------------------

_FAKE_FILES = {
    "Cargo.toml": '[workspace]\nmembers = ["shared", "gateway", "worker", "healthcheck"]\n'
                  '[workspace.dependencies]\nshared = { path = "shared" }\n',
    "shared/Cargo.toml": '[package]\nname = "shared"\n',
    "shared/src/config.rs": 'pub fn listen_addr(d: &str) -> u16 { env_or(\n    "LISTEN_ADDR",\n    d) }\n'
                            'fn log() { std::env::var("LOG_FORMAT").ok(); }\n',
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
                    "#GATEWAY_API_KEY=\n#GATEWAY_LIMIT=3\n#RUST_LOG=info\n#LOG_FORMAT=json\n#COMPOSE_PROFILES=phoenix\n"
                    "# Fixed by compose.yaml: LISTEN_ADDR, UPSTREAM_URL, WORK_DIR.\n",
}


def _fake_config() -> dict:
    def svc(binary: str, port: str, env: dict) -> dict:
        return {
            "entrypoint": [f"/app/{binary}"],
            "environment": {"LISTEN_ADDR": f"0.0.0.0:{port}", "RUST_LOG": None, "LOG_FORMAT": None,
                            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318", **env},
            "healthcheck": {"test": ["CMD", "/app/healthcheck", f"http://127.0.0.1:{port}/readyz"]},
        }
    gateway = svc("gateway", "8000", {"UPSTREAM_URL": "http://worker:3000", "GATEWAY_API_KEY": None,
                                       "GATEWAY_LIMIT": None})
    gateway["ports"] = [{"host_ip": "127.0.0.1", "target": 8000, "published": "8000"}]
    gateway["depends_on"] = {"worker": {"condition": "service_healthy", "required": True}}
    return {"services": {"gateway": gateway, "worker": svc("worker", "3000", {"WORK_DIR": "/data"}),
                         "jaeger": {"image": "jaegertracing/jaeger"}}}


def self_test() -> int:
    import copy

    cases = []

    def case(name, mutate=None, files=None, expect_fail=True, expect_text=(), expect_warning=(),
             expect_no_warning=False):
        cases.append((name, mutate, files or {}, expect_fail, expect_text, expect_warning, expect_no_warning))

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
                ".env.example": _FAKE_FILES[".env.example"] + "#TEST_ONLY_VAR=x\n"},
         expect_text=("service 'worker'", "TEST_ONLY_VAR"))
    case("code after a #[cfg(test)] module still counts",
         lambda c: c["services"]["worker"]["environment"].update({"AFTER_TESTS": None}),
         files={"worker/src/lib.rs": '#[cfg(test)]\nmod tests { fn t() { let _ = \'}\'; } }\n'
                                     'fn g() { std::env::var("AFTER_TESTS").ok(); }\n',
                ".env.example": _FAKE_FILES[".env.example"] + "#AFTER_TESTS=x\n"},
         expect_fail=False)
    case("a shared variable passed to one service does not warn for the others",
         lambda c: c["services"]["worker"]["environment"].update({"SHARED_KEY": None}),
         files={"shared/src/genai.rs": 'pub fn key() { std::env::var("SHARED_KEY").ok(); }\n',
                ".env.example": _FAKE_FILES[".env.example"] + "#SHARED_KEY=x\n"},
         expect_fail=False, expect_no_warning=True)
    case("OTEL_* and RUST_LOG are allowed everywhere",
         lambda c: c["services"]["worker"]["environment"].update({"OTEL_TRACES_SAMPLER": None}),
         files={".env.example": _FAKE_FILES[".env.example"] + "#OTEL_TRACES_SAMPLER=always_on\n"},
         expect_fail=False)
    case("a variable the code reads but compose omits only warns",
         lambda c: c["services"]["gateway"]["environment"].pop("GATEWAY_LIMIT"),
         files={".env.example": _FAKE_FILES[".env.example"].replace("#GATEWAY_LIMIT=3\n", "")},
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
    case("a binary the Dockerfile does not build fails",
         files={"Dockerfile": "RUN cargo build --release -p gateway -p healthcheck\n"},
         expect_text=("-p worker",))
    case("an undocumented variable fails",
         files={".env.example": _FAKE_FILES[".env.example"].replace("#GATEWAY_LIMIT=3\n", "")},
         expect_text=(".env.example does not mention GATEWAY_LIMIT",))
    case("a documented setting with no effect fails",
         files={".env.example": _FAKE_FILES[".env.example"] + "#LISTEN_ADDR=0.0.0.0:9999\n"},
         expect_text=("documents LISTEN_ADDR",))
    case("no workspace service at all fails",
         lambda c: c["services"].update(
             {n: {"image": "x"} for n in ("gateway", "worker")}),
         expect_text=("nothing was checked",))

    passed = failed = 0
    for name, mutate, files, expect_fail, expect_text, expect_warning, expect_no_warning in cases:
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
    ap.add_argument("--self-test", action="store_true", help="prove on fake inputs that every check can fail")
    args = ap.parse_args(argv)
    if args.self_test:
        return self_test()
    root = args.root.resolve()
    if args.config_json:
        config = json.loads(args.config_json.read_text(encoding="utf-8"))
    else:
        config = resolve_config(compose_command(args.compose), root)
    return run(root, config, args.strict)


if __name__ == "__main__":
    sys.exit(main())
