#!/usr/bin/env python3
"""Renders snapeval's chat-template reference corpus with Jinja2 configured as transformers configures it.

The Go engine in chat/jinja must reproduce these renders byte for byte. Two corpora:

- chat/testdata: real chat templates (templates/*.jinja, listed in templates.json with the special tokens
  of the model's tokenizer_config.json) times the conversations of conversations.json; one golden file per
  template, renders/<template>.json.
- chat/jinja/testdata: small templates (snippets.json), one construct each; golden snippets.golden.json.

The environment copies transformers' _compile_jinja_template (src/transformers/utils/chat_template_utils.py):
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[AssistantTracker,
jinja2.ext.loopcontrols]), the tojson filter replaced by json.dumps(ensure_ascii=False, ...), the globals
raise_exception and strftime_now. strftime_now reads a fixed clock (CLOCK) so that the renders are
reproducible; the Go tests pass the same instant. Variables are those apply_chat_template passes:
messages, tools, documents, add_generation_prompt, the tokenizer's special tokens, then the conversation's
own variables.

Usage (from the repository root): python3 tools/chattemplates/render.py
Needs Jinja2 >= 3.1 (Debian: apt-get install python3-jinja2).
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

# CLOCK is what strftime_now reads (the Go tests use the same instant).
CLOCK = datetime(2024, 9, 5, 14, 7, 9)

ROOT = Path(__file__).resolve().parents[2]
CHAT_TESTDATA = ROOT / "chat" / "testdata"
SNIPPET_TESTDATA = ROOT / "chat" / "jinja" / "testdata"


class GenerationTag(jinja2.ext.Extension):
    """transformers' AssistantTracker as the renderer sees it: {% generation %} renders its body."""

    tags = {"generation"}

    def parse(self, parser: Any) -> jinja2.nodes.CallBlock:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        call = self.call_method("_generation_support")
        return jinja2.nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _generation_support(self, caller: Any) -> str:
        return str(caller())


def environment() -> ImmutableSandboxedEnvironment:
    """The Jinja2 environment of transformers' _compile_jinja_template, with a fixed clock."""

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None,
               sort_keys: bool = False) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(format: str) -> str:
        return CLOCK.strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env: ImmutableSandboxedEnvironment, source: str, variables: dict[str, Any]) -> dict[str, Any]:
    """Renders source; the result holds "rendered", or "error" and "error_type" (the exception's class:
    TemplateError for raise_exception, TemplateSyntaxError for a template that does not parse, with
    "error_line" the line Jinja2 reports)."""
    try:
        return {"rendered": env.from_string(source).render(**variables)}
    except jinja2.exceptions.TemplateSyntaxError as e:
        return {"error": e.message or "", "error_type": type(e).__name__, "error_line": e.lineno}
    except Exception as e:  # the class and message are the golden
        return {"error": str(e), "error_type": type(e).__name__}


def conversation_variables(tokens: dict[str, Any], conv: dict[str, Any]) -> dict[str, Any]:
    """What apply_chat_template passes: the special tokens, then its own arguments and the extra variables."""
    variables: dict[str, Any] = dict(tokens)
    variables.update(conv.get("vars", {}))
    variables["messages"] = conv["messages"]
    variables["tools"] = conv.get("tools")
    variables["documents"] = conv.get("documents")
    variables["add_generation_prompt"] = conv.get("add_generation_prompt", False)
    return variables


def render_corpus(env: ImmutableSandboxedEnvironment) -> int:
    """Writes chat/testdata/renders/*.json; returns the number of renders."""
    templates = json.loads((CHAT_TESTDATA / "templates.json").read_text(encoding="utf-8"))
    conversations = json.loads((CHAT_TESTDATA / "conversations.json").read_text(encoding="utf-8"))
    out_dir = CHAT_TESTDATA / "renders"
    out_dir.mkdir(exist_ok=True)
    n = 0
    for entry in templates:
        source = (CHAT_TESTDATA / "templates" / entry["file"]).read_text(encoding="utf-8")
        renders = []
        for conv in conversations:
            result = render(env, source, conversation_variables(entry.get("tokens", {}), conv))
            renders.append({"conversation": conv["name"], **result})
            n += 1
        golden = {"template": entry["file"], "jinja2": jinja2.__version__, "renders": renders}
        path = out_dir / (Path(entry["file"]).stem + ".json")
        path.write_text(json.dumps(golden, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return n


def render_snippets(env: ImmutableSandboxedEnvironment) -> int:
    """Writes chat/jinja/testdata/snippets.golden.json; returns the number of snippets."""
    snippets = json.loads((SNIPPET_TESTDATA / "snippets.json").read_text(encoding="utf-8"))
    out = []
    for s in snippets:
        out.append({"name": s["name"], **render(env, s["template"], s.get("vars", {}))})
    golden = {"jinja2": jinja2.__version__, "snippets": out}
    path = SNIPPET_TESTDATA / "snippets.golden.json"
    path.write_text(json.dumps(golden, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return len(out)


def main() -> None:
    env = environment()
    n = render_corpus(env)
    m = render_snippets(env)
    print(f"rendered {n} template x conversation pairs and {m} snippets with Jinja2 {jinja2.__version__}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
