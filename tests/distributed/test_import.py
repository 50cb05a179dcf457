"""``import sbert.distributed`` stays light: Ray and torch load only when encoding starts."""

from __future__ import annotations

import subprocess
import sys


def test_import_does_not_load_ray_or_torch() -> None:
    code = ("import sys, sbert.distributed as d; assert d.__all__; "
            "print(sorted(m for m in ('ray', 'torch', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
