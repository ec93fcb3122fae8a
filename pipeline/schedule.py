"""The run config: which flows run on which cron schedule, with which parameters.

One TOML table per flow (``[generate]``, ``[annotate]``, ``[collect]``,
``[publish]``), read by ``normloom serve``; ``config/schedule.toml`` is the default.
Relative paths in parameters are relative to the directory ``normloom serve`` runs
in.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.errors import ConfigError

DEFAULT_CONFIG = Path("config") / "schedule.toml"
JOBS = ("generate", "annotate", "collect", "publish")


class Job(BaseModel):
    """One deployment: a flow, its schedule and the parameters of every run."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Serve this deployment at all.")
    name: str = Field(default="scheduled", description="The deployment's name.")
    cron: str | None = Field(
        default=None, description="Cron schedule; unset: runs only when triggered."
    )
    timezone: str | None = Field(
        default=None, description="Time zone of the cron; unset: the defaults' one."
    )
    paused: bool = Field(default=False, description="Register the schedule paused.")
    tags: list[str] = Field(default_factory=list, description="Extra run tags.")
    description: str | None = Field(default=None, description="Shown in the UI.")
    parameters: dict[str, Any] = Field(
        default_factory=dict, description="Keyword arguments of the flow function."
    )


class Defaults(BaseModel):
    """What every job shares unless it says otherwise."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = Field(default="UTC", description="Time zone of the crons.")
    tags: list[str] = Field(default_factory=lambda: ["normloom"])


class RunConfig(BaseModel):
    """The whole run config file."""

    model_config = ConfigDict(extra="forbid")

    defaults: Defaults = Field(default_factory=Defaults)
    generate: Job | None = None
    annotate: Job | None = None
    collect: Job | None = None
    publish: Job | None = None

    def jobs(self) -> dict[str, Job]:
        """Return the enabled jobs by key, in pipeline order."""
        found = {key: getattr(self, key) for key in JOBS}
        return {k: job for k, job in found.items() if job is not None and job.enabled}


def load_run_config(path: Path) -> RunConfig:
    """Read and check a run config file; every problem is a ConfigError."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError as err:
        raise ConfigError(
            f"Run config {path} does not exist. Pass --config FILE, or run from the "
            f"repository root where {DEFAULT_CONFIG} is."
        ) from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}") from err
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise ConfigError(
            f"{path}: {problems}. Tables are {', '.join(JOBS)} and defaults; a job "
            "takes enabled, name, cron, timezone, paused, tags, description, "
            "parameters."
        ) from err
    if not config.jobs():
        raise ConfigError(f"{path} enables no job; nothing would be served.")
    return config
