"""docs/cli.md is generated from --help and must be current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_cli_docs_are_current() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_cli_docs.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr + " (regenerate: python scripts/gen_cli_docs.py)"
