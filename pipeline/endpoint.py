"""Which OpenAI-compatible endpoint a run talks to: the configured one or our own."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from pipeline.errors import ConfigError
from pipeline.settings import Settings

if TYPE_CHECKING:
    from pipeline.llm import LLMClient

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


def check_endpoint(settings: Settings) -> None:
    """Refuse a base URL without a model name, before anything starts.

    Raises:
        ConfigError: A base URL is set but no model name.
    """
    if settings.llm.base_url and not settings.llm.model:
        raise ConfigError(
            f"NORMLOOM_LLM__BASE_URL is set ({settings.llm.base_url}) but no model: "
            "set NORMLOOM_LLM__MODEL to a model that endpoint serves, e.g. "
            "gpt-4o-mini, or unset the base URL to use the embedded model."
        )


@contextmanager
def open_endpoint(settings: Settings) -> Iterator[Endpoint]:
    """Yield the configured endpoint, or start the embedded server for the block.

    Raises:
        ConfigError: A base URL is set but no model name.
    """
    check_endpoint(settings)
    if settings.llm.base_url:
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


@contextmanager
def open_client(
    settings: Settings, cache_path: Path | None = None
) -> Iterator[LLMClient]:
    """Yield a client of the configured (or embedded) endpoint for the block.

    Args:
        settings: normloom's settings.
        cache_path: SQLite reply cache; None: ``llm.cache_path``, or no cache.
    """
    from pipeline.cache import ResponseCache
    from pipeline.llm import LLMClient

    path = cache_path or settings.llm.cache_path
    cache = ResponseCache(path) if path else None
    with open_endpoint(settings) as endpoint:
        try:
            yield LLMClient(
                settings.llm,
                endpoint.base_url,
                endpoint.model,
                cache=cache,
                llama_cpp=endpoint.embedded,
            )
        finally:
            if cache is not None:
                cache.close()
