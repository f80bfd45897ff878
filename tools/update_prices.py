#!/usr/bin/env python3
"""Regenerate shared/prices.json from LiteLLM's published price table.

LiteLLM ships `model_prices_and_context_window_backup.json` in its PyPI
wheel: list prices per token for every hosted model it knows, kept current
by its maintainers. This script downloads that wheel (pip, no install),
takes the models in MODELS below, converts USD per token to USD per million
tokens, and writes shared/prices.json with the LiteLLM version and today's
date in `_source` and `as_of`. ragtrace's own offline models stay at 0.

    python3 tools/update_prices.py                 # newest litellm
    python3 tools/update_prices.py --litellm 1.110.2
    python3 tools/update_prices.py --check         # exit 1 if the file differs

Review the diff before committing: a model LiteLLM no longer lists is
reported and left out, never guessed.
"""

import argparse
import datetime
import json
import pathlib
import subprocess
import sys
import tempfile
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
PRICES = ROOT / "shared" / "prices.json"
TABLE = "litellm/model_prices_and_context_window_backup.json"

# Free and local: the offline generator and the hashing embedder.
OFFLINE = {
    "ragtrace-extractive-v1": {"input": 0, "output": 0},
    "ragtrace-hashing-*": {"input": 0, "output": 0},
}

# (name in shared/prices.json, key in LiteLLM's table). The name is what an
# OpenAI-compatible API answers in `model`; a dated snapshot of it
# (`gpt-4o-mini-2024-07-18`) is priced as it by shared/src/prices.
MODELS = [
    # OpenAI: chat
    ("gpt-5.6", "gpt-5.6"),
    ("gpt-5.5", "gpt-5.5"),
    ("gpt-5.4", "gpt-5.4"),
    ("gpt-5.4-mini", "gpt-5.4-mini"),
    ("gpt-5.4-nano", "gpt-5.4-nano"),
    ("gpt-5.2", "gpt-5.2"),
    ("gpt-5.1", "gpt-5.1"),
    ("gpt-5", "gpt-5"),
    ("gpt-5-mini", "gpt-5-mini"),
    ("gpt-5-nano", "gpt-5-nano"),
    ("gpt-4.1", "gpt-4.1"),
    ("gpt-4.1-mini", "gpt-4.1-mini"),
    ("gpt-4.1-nano", "gpt-4.1-nano"),
    ("gpt-4o", "gpt-4o"),
    ("gpt-4o-2024-05-13", "gpt-4o-2024-05-13"),
    ("gpt-4o-mini", "gpt-4o-mini"),
    ("o3", "o3"),
    ("o3-mini", "o3-mini"),
    ("o4-mini", "o4-mini"),
    # OpenAI: embeddings
    ("text-embedding-3-small", "text-embedding-3-small"),
    ("text-embedding-3-large", "text-embedding-3-large"),
    ("text-embedding-ada-002", "text-embedding-ada-002"),
    # Anthropic (through an OpenAI-compatible endpoint)
    ("claude-opus-4-8", "claude-opus-4-8"),
    ("claude-opus-4-7", "claude-opus-4-7"),
    ("claude-opus-4-6", "claude-opus-4-6"),
    ("claude-opus-4-5", "claude-opus-4-5"),
    ("claude-sonnet-4-6", "claude-sonnet-4-6"),
    ("claude-sonnet-4-5", "claude-sonnet-4-5"),
    ("claude-haiku-4-5", "claude-haiku-4-5"),
    # Google Gemini
    ("gemini-3.8-flash", "gemini/gemini-3.8-flash"),
    ("gemini-3.5-flash", "gemini/gemini-3.5-flash"),
    ("gemini-3.1-pro-preview", "gemini/gemini-3.1-pro-preview"),
    ("gemini-3.1-flash-lite", "gemini/gemini-3.1-flash-lite"),
    ("gemini-2.5-pro", "gemini/gemini-2.5-pro"),
    ("gemini-2.5-flash", "gemini/gemini-2.5-flash"),
    # Mistral
    ("mistral-large-latest", "mistral/mistral-large-latest"),
    ("mistral-small-latest", "mistral/mistral-small-latest"),
]


def litellm_table(version):
    """LiteLLM's price table and version, from its wheel on PyPI."""
    spec = f"litellm=={version}" if version else "litellm"
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary=:all:", "--dest", tmp, spec],
            check=True,
        )
        wheel = next(pathlib.Path(tmp).glob("litellm-*.whl"))
        found_version = wheel.name.split("-")[1]
        with zipfile.ZipFile(wheel) as archive:
            return json.loads(archive.read(TABLE)), found_version


def per_million(per_token):
    """USD per token to USD per million tokens, without float noise."""
    return round(per_token * 1_000_000, 6)


def build(table, version, today):
    models = dict(OFFLINE)
    missing = []
    for name, key in MODELS:
        entry = table.get(key)
        if entry is None or "input_cost_per_token" not in entry:
            missing.append(key)
            continue
        models[name] = {
            "input": per_million(entry["input_cost_per_token"]),
            "output": per_million(entry.get("output_cost_per_token", 0)),
        }
    source = (
        f"List prices from LiteLLM's model_prices_and_context_window.json "
        f"(litellm {version} on PyPI), standard tier, no batch or cache "
        f"discounts; regenerate with tools/update_prices.py. They are list "
        f"prices: check them against your provider and contract, and "
        f"override this table with RAGTRACE_PRICES."
    )
    document = {
        "_source": source,
        "as_of": today,
        "unit": "USD per 1M tokens",
        "models": models,
    }
    return document, missing


def render(document):
    """JSON with one model per line, as a reader scans a price list."""
    head = {k: v for k, v in document.items() if k != "models"}
    lines = json.dumps(head, indent=2).rstrip("}").rstrip() + ",\n"
    lines += '  "models": {\n'
    rows = [f"    {json.dumps(name)}: {json.dumps(price)}"
            for name, price in document["models"].items()]
    lines += ",\n".join(rows) + "\n  }\n}\n"
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--litellm", help="LiteLLM version (default: newest)")
    parser.add_argument("--check", action="store_true",
                        help="compare the prices, not the date; exit 1 on a difference")
    args = parser.parse_args()

    table, version = litellm_table(args.litellm)
    today = datetime.date.today().isoformat()
    document, missing = build(table, version, today)
    for key in missing:
        print(f"warning: LiteLLM {version} has no price for {key}: left out",
              file=sys.stderr)
    if args.check:
        current = json.loads(PRICES.read_text())
        if current["models"] != document["models"]:
            print(f"{PRICES} differs from LiteLLM {version}", file=sys.stderr)
            return 1
        print(f"{PRICES} matches LiteLLM {version}")
        return 0
    PRICES.write_text(render(document))
    print(f"wrote {PRICES}: {len(document['models'])} models, LiteLLM {version}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
