"""The suite's own rules: under `make test` a missing extra fails instead of skipping."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


# pytest's exit codes: 2 a collection error, 5 nothing ran (the module skipped)
@pytest.mark.parametrize(
    ("require", "outcome", "code"), [("1", b"1 error", 2), ("", b"1 skipped", 5)]
)
def test_a_missing_extra_fails_when_make_test_requires_every_extra(
    tmp_path: Path, require: str, outcome: bytes, code: int
) -> None:
    (tmp_path / "test_needs_extra.py").write_text(
        "import pytest\npytest.importorskip('no_such_extra_module')\n\n\ndef test_a():\n    pass\n"
    )
    env = {**os.environ, "FOGGEN_REQUIRE_EXTRAS": require}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(tmp_path / "test_needs_extra.py")],
        cwd=ROOT, env=env, capture_output=True, timeout=300,
    )  # fmt: skip
    assert outcome in run.stdout, run.stdout[-2000:]
    assert run.returncode == code
