"""The `normloom argilla` commands start, report and stop a real local server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

NORMLOOM = str(Path(sys.executable).with_name("normloom"))


def _run(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [NORMLOOM, "argilla", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_serve_status_and_stop_by_pid(tmp_path):
    env = {
        **os.environ,
        "NORMLOOM_ARGILLA__HOME": str(tmp_path),
        "NORMLOOM_ARGILLA__PORT": "0",
    }
    env.pop("NORMLOOM_ARGILLA__API_URL", None)
    try:
        started = _run("serve", "--json", env=env)
        assert started.returncode == 0, started.stderr
        info = json.loads(started.stdout)
        assert info["url"].startswith("http://127.0.0.1:")
        assert set(info["pids"]) == {"redis", "server", "worker"}
        assert info["rss_bytes"] > 100 * 2**20  # server and worker are real processes
        assert "default password" in started.stderr  # the warning for local use

        state = json.loads((tmp_path / "state.json").read_text())
        assert oct((tmp_path / "state.json").stat().st_mode & 0o777) == "0o600"
        reply = httpx.get(
            f"{info['url']}/api/v1/me", headers={"X-Argilla-Api-Key": state["api_key"]}
        )
        assert reply.json()["username"] == "argilla"
        assert reply.json()["role"] == "owner"
        assert state["api_key"] not in started.stdout + started.stderr

        again = _run("serve", "--json", env=env)
        assert json.loads(again.stdout)["reused"] is True
        assert json.loads(again.stdout)["pids"] == info["pids"]
        assert _run("status", env=env).returncode == 0
    finally:
        stopped = _run("stop", env=env)

    assert stopped.stdout.strip() == "Stopped worker, server, redis."
    for pid in info["pids"].values():
        stat = Path(f"/proc/{pid}/stat")
        assert not stat.exists() or stat.read_text().split(")")[-1].split()[0] == "Z"
    assert not list(tmp_path.glob("*.pid"))
    assert _run("status", env=env).returncode == 1
