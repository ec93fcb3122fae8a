"""Deployments from the run config, and a run triggered on a real Prefect server."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from flows.deployments import build_deployments
from pipeline.errors import ConfigError
from pipeline.schedule import load_run_config
from tests.release_fixtures import write_run

ROOT = Path(__file__).resolve().parent.parent
HAS_ANNOTATION_FLOWS = all(
    importlib.util.find_spec(f"flows.{name}") for name in ("annotate", "collect")
)


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "schedule.toml"
    path.write_text(text, "utf-8")
    return path


@pytest.mark.skipif(not HAS_ANNOTATION_FLOWS, reason="needs the issue 4 flows")
def test_the_default_config_deploys_all_four_flows_on_their_crons():
    deployments = build_deployments(load_run_config(ROOT / "config" / "schedule.toml"))

    assert [
        (d.flow_name, d.name, [s.schedule.cron for s in d.schedules])
        for d in deployments
    ] == [
        ("generate-dialogues", "nightly", ["0 2 * * *"]),
        ("annotate-dialogues", "nightly", ["0 5 * * *"]),
        ("collect-annotations", "daily", ["0 8 * * *"]),
        ("publish-dataset", "weekly", ["0 9 * * 1"]),
    ]
    publish = deployments[-1]
    assert publish.parameters == {
        "run_dirs": ["runs/scheduled"],
        "out": "releases",
        "only_if_changed": True,
    }
    assert publish.entrypoint == "flows.publish.publish_dataset"
    assert all(d.schedules[0].schedule.timezone == "UTC" for d in deployments)
    assert all("normloom" in d.tags for d in deployments)


def test_a_job_without_cron_is_deployed_to_run_on_demand(tmp_path):
    config = _config(
        tmp_path,
        '[publish]\nname = "manual"\n[publish.parameters]\nrun_dirs = ["runs/x"]\n',
    )

    (deployment,) = build_deployments(load_run_config(config))

    assert (deployment.flow_name, deployment.name) == ("publish-dataset", "manual")
    assert not deployment.schedules


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            '[publish]\ncron = "0 9 * *"\n[publish.parameters]\nrun_dirs = ["r"]\n',
            "[publish] cron '0 9 * *' with time zone 'UTC' is not valid",
        ),
        (
            "[publish.parameters]\nrun_dir = 'r'\n",
            "[publish.parameters] do not fit flow publish-dataset (unknown: run_dir; "
            "missing: run_dirs)",
        ),
        ('[publish]\ncorn = "0 9 * * *"\n', "publish.corn: Extra inputs"),
        ("[generate]\nenabled = false\n", "enables no job"),
        ("[publish\n", "is not valid TOML"),
    ],
)
def test_a_bad_config_is_one_clear_error(tmp_path, text, message):
    config = _config(tmp_path, text)

    with pytest.raises(ConfigError) as err:
        build_deployments(load_run_config(config))
    assert message in str(err.value)


def test_a_missing_flow_module_names_the_job_to_disable(tmp_path, monkeypatch):
    monkeypatch.setitem(
        __import__("flows.deployments").deployments.FLOWS,
        "annotate",
        "flows.not_there:annotate_dialogues",
    )
    config = _config(tmp_path, "[annotate.parameters]\nrun_dir = 'r'\n")

    with pytest.raises(ConfigError, match=r"Set `enabled = false` under \[annotate\]"):
        build_deployments(load_run_config(config))


def test_serve_without_a_server_says_how_to_start_one(monkeypatch):
    from typer.testing import CliRunner

    from flows.cli import app

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    result = CliRunner().invoke(
        app, ["serve", "--config", str(ROOT / "config" / "schedule.toml")]
    )

    assert result.exit_code == 2
    assert "prefect server start --host 127.0.0.1" in result.output


def test_serve_against_a_server_that_is_down_says_so(monkeypatch):
    from prefect.settings import PREFECT_API_URL, temporary_settings
    from typer.testing import CliRunner

    from flows.cli import app

    url = f"http://127.0.0.1:{_free_port()}/api"
    with temporary_settings({PREFECT_API_URL: url}):
        result = CliRunner().invoke(
            app, ["serve", "--config", str(ROOT / "config" / "schedule.toml")]
        )

    assert result.exit_code == 2
    assert f"No Prefect server answers at PREFECT_API_URL={url}" in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"prefect server exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"prefect server at {url} not healthy after {seconds} s")


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process we started, and its children, by its process group id."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture
def prefect_server(tmp_path):
    """Yield the API URL of a real Prefect server on SQLite in a temporary home."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start"]
        + ["--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        _wait_healthy(url, proc, 120)
        yield url
    finally:
        _stop(proc)
        log.close()


@pytest.mark.slow
def test_served_publish_deployment_runs_when_triggered(prefect_server, tmp_path):
    run = tmp_path / "runs" / "fixture"
    write_run(run, n_norms=6)
    releases = tmp_path / "releases"
    enabled = "true" if HAS_ANNOTATION_FLOWS else "false"
    config = _config(
        tmp_path,
        f"""
[generate]
cron = "0 2 * * *"
[generate.parameters]
seeds = "{ROOT / "data" / "seeds" / "demo.jsonl"}"
out = "{tmp_path / "runs" / "generated"}"
[annotate]
enabled = {enabled}
[annotate.parameters]
run_dir = "{run}"
[collect]
enabled = {enabled}
[collect.parameters]
run_dir = "{run}"
[publish]
name = "test"
cron = "0 0 1 1 *"
[publish.parameters]
run_dirs = ["{run}"]
out = "{releases}"
""",
    )
    env = {
        **os.environ,
        "PREFECT_API_URL": prefect_server,
        "PREFECT_HOME": str(tmp_path / "serve-home"),
        "PREFECT_RUNNER_POLL_FREQUENCY": "2",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "HF_HOME": str(tmp_path / "hf-home"),
    }
    log = (tmp_path / "serve.log").open("w")
    serving = subprocess.Popen(
        [sys.executable, "-m", "flows.cli", "serve", "--config", str(config)],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        api = httpx.Client(base_url=prefect_server, timeout=10)
        deployment = _wait_for_deployment(api, "publish-dataset", "test", serving)
        served = api.post("/deployments/filter", json={}).json()
        assert len(served) == (4 if HAS_ANNOTATION_FLOWS else 2)
        assert deployment["schedules"][0]["schedule"]["cron"] == "0 0 1 1 *"

        flow_run = api.post(
            f"/deployments/{deployment['id']}/create_flow_run", json={}
        ).json()
        state = _wait_for_final_state(api, flow_run["id"], 180)

        assert state == "COMPLETED", (tmp_path / "serve.log").read_text()
        card = (releases / "0.1.0" / "README.md").read_text("utf-8")
        assert "| total | 18 | 72 | 6 | 0 | 0 |" in card
        artifacts = api.post(
            "/artifacts/filter",
            json={"artifacts": {"flow_run_id": {"any_": [flow_run["id"]]}}},
        ).json()
        assert {a["key"] for a in artifacts} == {"release-summary", "release-report"}
        link = next(a for a in artifacts if a["key"] == "release-report")
        assert (releases / "0.1.0" / "report.html").resolve().as_uri() in link["data"]
    finally:
        _stop(serving)
        log.close()


def _wait_for_deployment(api, flow: str, name: str, serving) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if serving.poll() is not None:
            raise AssertionError(f"normloom serve exited with {serving.returncode}")
        reply = api.get(f"/deployments/name/{flow}/{name}")
        if reply.status_code == 200:
            return reply.json()
        time.sleep(1)
    raise AssertionError(f"deployment {flow}/{name} was not registered in 120 s")


def _wait_for_final_state(api, flow_run_id: str, seconds: float) -> str:
    deadline = time.monotonic() + seconds
    state = None
    while time.monotonic() < deadline:
        state = api.get(f"/flow_runs/{flow_run_id}").json()["state"]["type"]
        if state in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}:
            return state
        time.sleep(1)
    raise AssertionError(f"flow run still {state} after {seconds} s")
