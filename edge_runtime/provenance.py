"""Which code made a file: the git commit recorded in calibrators and reports."""

from __future__ import annotations

import subprocess


def git_commit() -> str | None:
    """The checkout's HEAD commit, or None outside a git checkout (e.g. an installed wheel)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()
