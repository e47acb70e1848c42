#!/usr/bin/env python3
"""Tests of render.py: the Jinja2 environment must be the one transformers builds.

Run: python3 tools/chattemplates/test_render.py   (needs Jinja2, as render.py does)
"""

from __future__ import annotations

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import render  # noqa: E402


class EnvironmentTest(unittest.TestCase):
    def setUp(self) -> None:
        self.env = render.environment()

    def out(self, source: str, **variables: object) -> dict[str, object]:
        return render.render(self.env, source, dict(variables))

    def test_trim_and_lstrip_blocks(self) -> None:
        self.assertEqual(self.out("a\n  {% if true %}\n  b\n  {% endif %}\nc"), {"rendered": "a\n  b\nc"})

    def test_trailing_newline_dropped(self) -> None:
        self.assertEqual(self.out("x\n"), {"rendered": "x"})

    def test_loopcontrols(self) -> None:
        self.assertEqual(self.out("{% for i in range(5) %}{% if i == 2 %}{% break %}{% endif %}{{ i }}{% endfor %}"),
                         {"rendered": "01"})

    def test_generation_renders_its_body(self) -> None:
        self.assertEqual(self.out("{% generation %}x{{ 1 }}{% endgeneration %}"), {"rendered": "x1"})

    def test_tojson_keeps_non_ascii_and_order(self) -> None:
        self.assertEqual(self.out("{{ v|tojson }}", v={"é": "<>", "a": 1}), {"rendered": '{"é": "<>", "a": 1}'})
        self.assertEqual(self.out("{{ v|tojson(indent=1) }}", v=[1]), {"rendered": "[\n 1\n]"})

    def test_raise_exception(self) -> None:
        self.assertEqual(self.out("{{ raise_exception('no') }}"), {"error": "no", "error_type": "TemplateError"})

    def test_strftime_now_reads_the_fixed_clock(self) -> None:
        self.assertEqual(self.out("{{ strftime_now('%Y-%m-%d %H:%M') }}"), {"rendered": "2024-09-05 14:07"})

    def test_sandbox_refuses_mutation(self) -> None:
        self.assertEqual(self.out("{{ [].append(1) }}")["error_type"], "SecurityError")

    def test_syntax_error_carries_its_line(self) -> None:
        got = self.out("a\n{% if %}")
        self.assertEqual((got["error_type"], got["error_line"]), ("TemplateSyntaxError", 2))


class VariablesTest(unittest.TestCase):
    def test_conversation_variables(self) -> None:
        conv = {"messages": [{"role": "user", "content": "hi"}], "add_generation_prompt": True,
                "vars": {"eos_token": "E", "enable_thinking": False}}
        got = render.conversation_variables({"bos_token": "B", "eos_token": "<eos>"}, conv)
        self.assertEqual(got, {"bos_token": "B", "eos_token": "E", "enable_thinking": False,
                               "messages": conv["messages"], "tools": None, "documents": None,
                               "add_generation_prompt": True})


if __name__ == "__main__":
    unittest.main()
