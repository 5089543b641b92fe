"""The whole OpenAPI description of ``tsm serve`` fuzzed with schemathesis against a real
server over real HTTP: whatever a client sends, no answer is a 500."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from helpers import tsm_serve

ADMIN = "fuzz-admin-token"
#: examples per operation and phase: about 1,400 requests, some 20 s on 2 cores (one worker:
#: hypothesis describing strategies from two threads hits a CPython 3.11 ast.parse race)
EXAMPLES = 30


@pytest.mark.slow
def test_openapi_fuzzed_without_server_errors(tmp_path):
    pytest.importorskip("schemathesis")
    env = {"TSM_HOME": str(tmp_path / "home"), "TSM_API_TOKEN": ADMIN, "TSM_MAX_UPLOAD_MB": "1"}
    with tsm_serve(env) as url:
        start = time.monotonic()
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "run",
                f"{url}/openapi.json",
                "--checks",
                "not_a_server_error",
                "--phases",
                "examples,coverage,fuzzing",
                "--max-examples",
                str(EXAMPLES),
                "--seed",
                "24",
                "--no-shrink",
                "--workers",
                "1",
                "--request-timeout",
                "20",
                "--header",
                f"Authorization: Bearer {ADMIN}",
                "--report-dir",
                str(tmp_path / "report"),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
        took = time.monotonic() - start
    summary = run.stdout[-4000:]
    assert run.returncode == 0, summary
    assert "passed" in summary and "Server error" not in summary, summary
    operations = int(summary.split("Tested: ")[1].split()[0])
    assert operations >= 40, summary  # the JSON API and the Photo-z Server API, all of them
    assert took < 120, f"the fuzzing took {took:.0f} s"
