#!/usr/bin/env python3
"""Tests of tools/update_prices.py's conversion, on a made-up LiteLLM table
(no network: the download is not exercised here)."""

import json
import pathlib
import sys
import unittest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import update_prices  # noqa: E402


class Build(unittest.TestCase):
    def test_per_token_prices_become_per_million_and_missing_models_are_reported(self):
        table = {
            "gpt-4o-mini": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07},
            "text-embedding-3-small": {"input_cost_per_token": 2e-08},
        }
        document, missing = update_prices.build(table, "9.9.9", "2026-12-03")
        models = document["models"]
        self.assertEqual(models["gpt-4o-mini"], {"input": 0.15, "output": 0.6})
        self.assertEqual(models["text-embedding-3-small"], {"input": 0.02, "output": 0})
        self.assertEqual(models["ragtrace-extractive-v1"], {"input": 0, "output": 0})
        self.assertNotIn("gpt-4o", models)
        self.assertIn("gpt-4o", missing)
        self.assertIn("litellm 9.9.9", document["_source"])
        self.assertIn("list prices", document["_source"])
        self.assertEqual(document["as_of"], "2026-12-03")

    def test_the_file_is_json_with_one_model_per_line(self):
        table = {"gpt-4o-mini": {"input_cost_per_token": 1.5e-07, "output_cost_per_token": 6e-07}}
        document, _ = update_prices.build(table, "9.9.9", "2026-12-03")
        text = update_prices.render(document)
        self.assertEqual(json.loads(text), document)
        self.assertIn('    "gpt-4o-mini": {"input": 0.15, "output": 0.6}', text.splitlines())

    def test_every_model_name_is_unique(self):
        names = [name for name, _ in update_prices.MODELS]
        self.assertEqual(len(names), len(set(names)))


if __name__ == "__main__":
    unittest.main(verbosity=2)
