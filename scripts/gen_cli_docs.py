#!/usr/bin/env python3
"""Write docs/cli.md from the Typer app, so the CLI reference cannot drift from the code.

Usage: python scripts/gen_cli_docs.py [--check]. With --check it exits 1 when docs/cli.md is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
import typer.main

from arcface_trt.cli.app import app

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def _type(param: Any, ctx: Any) -> str:
    return str(param.display_type(ctx)).strip("<>")


def _option_row(param: Any, ctx: Any) -> str:
    names = " / ".join([*param.opts, *param.secondary_opts])
    default = param.default
    if param.required:
        shown = "required"
    elif default is None or callable(default):
        shown = ""
    else:
        shown = f"`{default}`"
    help_text = " ".join((param.help or "").split()).replace("|", "\\|")
    return f"| `{names}` | {_type(param, ctx)} | {shown} | {help_text} |"


def _argument_row(param: Any, ctx: Any) -> str:
    return f"| `{param.name.upper()}` (argument) | {_type(param, ctx)} | {'required' if param.required else ''} | |"


def render() -> str:
    """The whole CLI reference as markdown."""
    group = typer.main.get_command(app)
    lines = [
        "# Command-line reference",
        "",
        "Generated from the Typer app by `scripts/gen_cli_docs.py`; a test fails when this file is stale.",
        "",
        f"`arcface-trt [--debug] [--version] COMMAND`: {' '.join((group.help or '').split())}",
        "",
        "Errors are one line on stderr; exit 2 for bad input or configuration, 1 for a failed check. "
        "`--debug` shows tracebacks. `--json` prints one JSON document on stdout and nothing else.",
        "",
    ]
    for name in sorted(group.commands):
        command = group.commands[name]
        lines += [f"## `arcface-trt {name}`", ""]
        doc = (command.help or "").strip()
        if doc:
            for paragraph in doc.split("\n\n"):
                lines += [" ".join(paragraph.split()), ""]
        ctx = typer.Context(command)
        params = [p for p in command.params if p.name != "help"]
        if params:
            lines += ["| option | type | default | description |", "|---|---|---|---|"]
            for param in params:
                row = _argument_row if param.param_type_name == "argument" else _option_row
                lines.append(row(param, ctx))
            lines.append("")
    return "\n".join(lines)


def main() -> int:
    """Write (or with --check, compare) docs/cli.md."""
    text = render()
    if "--check" in sys.argv:
        if not DOC.exists() or DOC.read_text(encoding="utf-8") != text:
            print(f"{DOC} is stale: run python scripts/gen_cli_docs.py", file=sys.stderr)
            return 1
        return 0
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
