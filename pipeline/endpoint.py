"""Which OpenAI-compatible endpoint a run talks to: the configured one or our own."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from pipeline.errors import ConfigError
from pipeline.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Endpoint:
    """A reachable endpoint and the model to ask there."""

    base_url: str
    model: str
    embedded: bool

    @property
    def public_url(self) -> str:
        """The base URL without user info or query string, safe to write down."""
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@contextmanager
def open_endpoint(settings: Settings) -> Iterator[Endpoint]:
    """Yield the configured endpoint, or start the embedded server for the block.

    Raises:
        ConfigError: A base URL is set but no model name.
    """
    if settings.llm.base_url:
        if not settings.llm.model:
            raise ConfigError(
                f"NORMLOOM_LLM__BASE_URL is set ({settings.llm.base_url}) but no model: "
                "set NORMLOOM_LLM__MODEL to a model that endpoint serves, e.g. "
                "gpt-4o-mini, or unset the base URL to use the embedded model."
            )
        yield Endpoint(settings.llm.base_url, settings.llm.model, embedded=False)
        return

    from pipeline.llm_server import EmbeddedServer

    server = EmbeddedServer(settings.embedded)
    base_url = server.start()
    log.info("Embedded llama.cpp server ready at %s", base_url)
    try:
        yield Endpoint(base_url, server.model_name, embedded=True)
    finally:
        server.stop()
