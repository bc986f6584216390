"""schemathesis fuzzes every operation of the OpenAPI schema of a running server: no 5xx.

Bounded: at most 50 examples per operation and about 20 s of fuzzing. A failure prints the
seed; rerun with ``schemathesis run <url>/openapi.json --seed <seed>`` to reproduce it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
from tests.helpers.server import run_server

MAX_EXAMPLES = 50
MAX_TIME_S = 20


def _schemathesis() -> str:
    found = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))
    if not Path(found).exists():
        pytest.fail("schemathesis is not installed (pip install schemathesis)")
    return found


def test_fuzzing_the_openapi_schema_finds_no_server_error(tmp_path: Path) -> None:
    env = {"IMGREC_SYNC_TIMEOUT_S": "20", "IMGREC_MAX_UPLOAD_BYTES": "200000",
           # Webhooks on, so that callback_url is parsed and checked (no DNS: private allowed).
           "IMGREC_WEBHOOK_SECRET": "fuzz",  # pragma: allowlist secret
           "IMGREC_WEBHOOK_ALLOW_PRIVATE": "true", "IMGREC_WEBHOOK_MAX_ATTEMPTS": "1",
           "IMGREC_WEBHOOK_TIMEOUT_S": "2"}
    with run_server(tmp_path / "state", "--workers", "1", env=env) as srv:
        run = subprocess.run(
            [_schemathesis(), "run", f"{srv.url}/openapi.json",
             "--checks", "not_a_server_error",
             "--phases", "examples,coverage,fuzzing",
             "--max-examples", str(MAX_EXAMPLES), "--max-time", str(MAX_TIME_S),
             "--request-timeout", "30", "--workers", "1",
             "--generation-database", "none", "--no-color",
             "--report", "junit,har", "--report-junit-path", str(tmp_path / "junit.xml"),
             "--report-har-path", str(tmp_path / "requests.har")],
            capture_output=True, text=True, timeout=MAX_TIME_S + 60, cwd=tmp_path,
        )
        still_up = httpx.get(f"{srv.url}/healthz", timeout=10).status_code
        log = srv.log()
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert "passed" in run.stdout
    assert still_up == 200
    assert "Traceback" not in log, log[-4000:]
    # The job routes of issue 16 are fuzzed too, with their headers.
    fuzzed = {case.get("name", "") for case in ET.parse(tmp_path / "junit.xml").iter("testcase")}
    assert {"DELETE /api/v1/jobs/{job_id}", "POST /api/v1/jobs", "POST /api/v1/classify",
            "POST /"} <= fuzzed, fuzzed
    entries = json.loads((tmp_path / "requests.har").read_text())["log"]["entries"]
    sent = {h["name"].lower() for e in entries for h in e["request"]["headers"]}
    assert {"idempotency-key", "x-deadline-s"} <= sent
