"""Connecting to an Argilla 2.x server, and the Argilla settings of a run.

Any server works: the one in ``NORMLOOM_ARGILLA__API_URL`` (a user's own or a hosted
one), or else the local one ``normloom argilla serve`` started, whose address and
generated key are read from its state file. The API key is never logged.
"""

from __future__ import annotations

import json
import logging
import tomllib
from pathlib import Path

import argilla as rg
from argilla._exceptions import ArgillaError
from pydantic import ValidationError

from annotation.local import LocalServer
from pipeline.errors import AnnotationError, ConfigError
from pipeline.settings import ArgillaSettings, Settings

log = logging.getLogger(__name__)


def load_settings(
    settings: Settings | None = None, settings_file: Path | None = None
) -> ArgillaSettings:
    """Return the Argilla settings, with a settings file's keys over the environment.

    Args:
        settings: normloom's settings (read from the environment when None).
        settings_file: JSON or TOML file (``workspace``, ``annotators``,
            ``min_submitted``, ...); defaults to ``argilla.settings_file``.

    Raises:
        ConfigError: The file cannot be read or holds an unknown or bad key.
    """
    base = (settings or Settings()).argilla
    path = settings_file or base.settings_file
    if path is None:
        return base
    path = Path(path)
    try:
        raw = path.read_text("utf-8")
        data = tomllib.loads(raw) if path.suffix == ".toml" else json.loads(raw)
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"Argilla settings file {path}: expected JSON or TOML, could not read "
            f"it ({err})."
        ) from err
    data = data.get("argilla", data)
    unknown = set(data) - set(ArgillaSettings.model_fields)
    if unknown:
        raise ConfigError(
            f"Argilla settings file {path}: unknown key(s) {sorted(unknown)}; known: "
            f"{sorted(ArgillaSettings.model_fields)}."
        )
    try:
        return ArgillaSettings.model_validate({**base.model_dump(), **data})
    except ValidationError as err:
        raise ConfigError(f"Argilla settings file {path}: {err}") from err


def server_address(settings: ArgillaSettings) -> tuple[str, str]:
    """Return the server URL and API key to use.

    Raises:
        AnnotationError: No server is configured and no local one is running.
    """
    key = settings.api_key.get_secret_value() if settings.api_key else None
    if settings.api_url:
        if not key:
            raise AnnotationError(
                f"NORMLOOM_ARGILLA__API_URL is {settings.api_url} but no API key is "
                "set; set NORMLOOM_ARGILLA__API_KEY to an owner's or admin's key "
                "(Argilla UI: My settings)."
            )
        return settings.api_url.rstrip("/"), key
    state = LocalServer(settings).state()
    if not state.get("url") or not state.get("pids"):
        raise AnnotationError(
            "No Argilla server: start the local one with `normloom argilla serve`, "
            "or set NORMLOOM_ARGILLA__API_URL and NORMLOOM_ARGILLA__API_KEY."
        )
    return state["url"], key or state["api_key"]


def connect(settings: ArgillaSettings) -> rg.Argilla:
    """Return a client logged in to the server, after checking that it answers.

    Raises:
        AnnotationError: The server cannot be reached or refuses the key.
    """
    url, key = server_address(settings)
    try:
        client = rg.Argilla(api_url=url, api_key=key, timeout=int(settings.timeout_s))
        me = client.me
    except ArgillaError as err:
        raise AnnotationError(
            f"Argilla at {url} refused the connection or the API key ({type(err).__name__}"
            f", status {getattr(err, 'status_code', '?')}). Check the URL and "
            "NORMLOOM_ARGILLA__API_KEY."
        ) from None
    except Exception as err:  # noqa: BLE001 - the SDK raises transport errors raw
        raise AnnotationError(
            f"Cannot reach Argilla at {url}: {type(err).__name__}. Is it running "
            "(`normloom argilla serve`)?"
        ) from None
    log.debug("Connected to %s as %s (%s)", url, me.username, me.role)
    return client
