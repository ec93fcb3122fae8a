"""The deployments of normloom's four flows, built from a run config and served.

``normloom serve`` calls :func:`serve_config`: every enabled job of the config becomes
a deployment named ``<flow name>/<job name>`` with its cron schedule and parameters,
and this process runs the flow runs the Prefect server schedules or is asked for.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from pathlib import Path

import httpx
from prefect import Flow, serve
from prefect.deployments.runner import EntrypointType, RunnerDeployment
from prefect.schedules import Cron
from prefect.settings import get_current_settings

from pipeline.errors import ConfigError
from pipeline.schedule import Job, RunConfig, load_run_config

log = logging.getLogger(__name__)

FLOWS = {
    "generate": "flows.generate:generate_dialogues",
    "annotate": "flows.annotate:annotate_dialogues",
    "collect": "flows.collect:collect_annotations",
    "publish": "flows.publish:publish_dataset",
}


def load_flow(key: str) -> Flow:
    """Import the flow of a job key ("generate", "publish", ...)."""
    module_name, _, attribute = FLOWS[key].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        raise ConfigError(
            f"The [{key}] job needs {FLOWS[key]}, which this installation does not "
            f"have. Set `enabled = false` under [{key}] in the run config."
        ) from err
    return getattr(module, attribute)


def check_parameters(key: str, flow: Flow, parameters: dict) -> None:
    """Fail on a parameter the flow does not take or a required one that is missing."""
    signature = inspect.signature(flow.fn).parameters
    unknown = sorted(set(parameters) - set(signature))
    missing = sorted(
        name
        for name, p in signature.items()
        if p.default is inspect.Parameter.empty and name not in parameters
    )
    if unknown or missing:
        problems = [f"unknown: {', '.join(unknown)}"] if unknown else []
        problems += [f"missing: {', '.join(missing)}"] if missing else []
        raise ConfigError(
            f"[{key}.parameters] do not fit flow {flow.name} ({'; '.join(problems)}); "
            f"it takes {', '.join(signature)}."
        )


def _schedules(key: str, job: Job, timezone: str) -> list | None:
    if job.cron is None:
        return None
    try:
        return [Cron(job.cron, timezone=job.timezone or timezone)]
    except ValueError as err:
        raise ConfigError(
            f"[{key}] cron {job.cron!r} with time zone {job.timezone or timezone!r} is "
            f"not valid: {err}. Five fields, e.g. '0 2 * * *' for 02:00 every day."
        ) from err


def build_deployments(config: RunConfig) -> list[RunnerDeployment]:
    """Return a deployment for every enabled job of the config."""
    deployments = []
    for key, job in config.jobs().items():
        flow = load_flow(key)
        check_parameters(key, flow, job.parameters)
        deployments.append(
            flow.to_deployment(
                name=job.name,
                schedules=_schedules(key, job, config.defaults.timezone),
                parameters=job.parameters,
                tags=[*config.defaults.tags, *job.tags],
                description=job.description or flow.description,
                paused=job.paused,
                # A module path is found from any working directory.
                entrypoint_type=EntrypointType.MODULE_PATH,
            )
        )
    return deployments


def require_server() -> str:
    """Return the Prefect API URL, or fail saying how to start and point at a server."""
    start = (
        "Start one with `prefect server start --host 127.0.0.1` and "
        "`export PREFECT_API_URL=http://127.0.0.1:4200/api`."
    )
    url = get_current_settings().api.url
    if not url:
        raise ConfigError(
            "Serving deployments needs a running Prefect server, and PREFECT_API_URL "
            f"is not set. {start}"
        )
    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=10).raise_for_status()
    except httpx.HTTPError as err:
        raise ConfigError(
            f"No Prefect server answers at PREFECT_API_URL={url} ({err}). {start}"
        ) from err
    return url


def serve_config(path: Path) -> None:
    """Register the config's deployments with the Prefect server and serve them."""
    url = require_server()
    deployments = build_deployments(load_run_config(path))
    log.info("Serving %d deployments against %s", len(deployments), url)
    serve(*deployments)
