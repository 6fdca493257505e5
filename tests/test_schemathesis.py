"""Property-based fuzzing of the whole OpenAPI spec with schemathesis (the ``st`` CLI) against a real
uvicorn server on 127.0.0.1: no input may produce a 5xx, and every response must match its schema."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sentencing.config import Settings
from serve.app import create_app
from serve.auth import KeyRole
from serve.server import BackgroundServer
from tests.test_service_recommend import demo_home

ST = Path(sys.executable).with_name("st")


@pytest.mark.slow
@pytest.mark.skipif(not ST.exists() and shutil.which("st") is None, reason="schemathesis CLI not installed")
def test_no_server_errors_anywhere_in_the_spec(tmp_path_factory: pytest.TempPathFactory) -> None:
    built = demo_home(tmp_path_factory)
    home = tmp_path_factory.mktemp("fuzz-home")
    settings = Settings(home=home, store=built / "cases.sqlite", model_dir=built / "model", index_dir=built / "index",
                        rate_limit_per_minute=1_000_000, rate_limit_burst=100_000)
    app = create_app(settings)
    # An integration key: allowed everywhere except the admin routes (which then answer 403, also checked).
    key, _ = app.state.service.keys.create(KeyRole.INTEGRATION, office="鼓楼区人民检察院")
    report = home / "st.xml"
    with BackgroundServer(app) as url:
        result = subprocess.run(
            [str(ST if ST.exists() else shutil.which("st")), "run", f"{url}/openapi.json",
             "--header", f"Authorization: Bearer {key}",
             "--checks", "not_a_server_error,response_schema_conformance,content_type_conformance",
             "--max-examples", "10", "--seed", "20261127", "--workers", "1", "--max-time", "30",
             "--request-timeout", "20", "--report", "junit", "--report-junit-path", str(report),
             "--no-color"],
            capture_output=True, text=True, timeout=240, cwd=home,  # its .schemathesis/ cache stays out of the repo
        )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    assert "passed" in result.stdout
