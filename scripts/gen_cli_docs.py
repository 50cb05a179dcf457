"""Write docs/cli.md from the CLI's own ``--help`` so the docs cannot drift.

    .venv/bin/python scripts/gen_cli_docs.py          # rewrite docs/cli.md
    .venv/bin/python scripts/gen_cli_docs.py --check  # exit 1 if docs/cli.md is stale
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from sbert.cli.main import cli

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def _sections(command: click.Command, path: list[str], parent: click.Context | None = None
              ) -> list[str]:
    # the group's context settings (`-h` as well as `--help`) reach every command, as in use
    ctx = click.Context(
        command, parent=parent, info_name=" ".join(path) if parent is None else path[-1],
        terminal_width=100, max_content_width=100, **(command.context_settings or {}),
    )
    out = [f"{'#' * min(len(path) + 1, 4)} `{' '.join(path)}`\n", "```text", command.get_help(ctx),
           "```\n"]
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                out += _sections(sub, [*path, name], ctx)
    return out


def render() -> str:
    head = [
        "# Command line reference\n",
        "Generated from `--help` by `scripts/gen_cli_docs.py`; do not edit by hand.\n",
    ]
    return "\n".join(head + _sections(cli, ["sbert"])).rstrip() + "\n"


def main() -> None:
    text = render()
    if "--check" in sys.argv:
        if not DOC.exists() or DOC.read_text(encoding="utf-8") != text:
            sys.exit(f"{DOC} is stale; run: python scripts/gen_cli_docs.py")
        return
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
