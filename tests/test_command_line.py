"""Both command lines: help, unknown commands, user errors in one line, a closed pipe."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["resilient_templates", "resilient_templates.runtime"])
def test_help_unknown_and_missing_command(module):
    """--help exits 0, no command exits 2 with usage, an unknown command exits 2 naming it."""
    run = lambda *a: subprocess.run([sys.executable, "-m", module, *a], capture_output=True, text=True)  # noqa: E731
    assert run("--help").returncode == 0 and "commands:" in run("--help").stdout
    assert run().returncode == 2
    unknown = run("frobnicate")
    assert unknown.returncode == 2 and "unknown command 'frobnicate'" in unknown.stderr


def test_closed_stdout_is_not_a_traceback():
    """Output into a pipe nobody reads any more (`… | head`) ends quietly, without a traceback."""
    import os

    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before we write: the first write fails with EPIPE
    proc = subprocess.run([sys.executable, "-m", "resilient_templates", "explain"],
                          stdout=write_end, stderr=subprocess.PIPE, text=True)  # fmt: skip
    os.close(write_end)
    assert proc.returncode == 141 and "Traceback" not in proc.stderr
