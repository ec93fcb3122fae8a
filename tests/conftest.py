"""Fixtures shared by the tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.scripted_server import Reply, ScriptedServer

__all__ = ["Reply", "ScriptedServer"]


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    """Yield a running scripted chat-completions server, stopped afterwards."""
    with ScriptedServer() as server:
        yield server


@pytest.fixture(scope="session")
def argilla_server(tmp_path_factory):
    """Start the real local Argilla server (our launcher) once for the session.

    Its database, Redis and logs live in a temporary home; the server's virtualenv is
    the shared one (~/.cache/normloom/argilla-venv), created on first use. The
    environment points normloom's settings at it, so flows find it.
    """
    from annotation.local import LocalServer
    from pipeline.settings import Settings

    home = tmp_path_factory.mktemp("argilla-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NORMLOOM_ARGILLA__HOME", str(home))
        mp.setenv("NORMLOOM_ARGILLA__PORT", "0")
        mp.delenv("NORMLOOM_ARGILLA__API_URL", raising=False)
        mp.delenv("NORMLOOM_ARGILLA__API_KEY", raising=False)
        server = LocalServer(Settings().argilla)
        info = server.start()
        try:
            yield server, info
        finally:
            server.stop()
