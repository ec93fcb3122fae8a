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
