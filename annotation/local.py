"""The local Argilla server: its own virtualenv, Redis, the server and its worker.

argilla-server 2.8.0 pins pydantic, typer and fastapi versions that clash with
Prefect 3, so it lives in a virtualenv of its own, made on first use. Elasticsearch is
replaced by the SQL search engine in ``annotation/server/`` that the launcher registers
before the app starts. Everything binds to 127.0.0.1; pid files in the home directory
let ``stop`` end exactly the processes ``start`` began.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from pipeline.errors import LocalServerError
from pipeline.settings import ArgillaSettings

log = logging.getLogger(__name__)

LAUNCHER = Path(__file__).resolve().parent / "server" / "launch.py"
ENGINE_NAME = "normloom-sql"
DEFAULT_PASSWORD = "12345678"  # Argilla's own quickstart default; local use only.
PROCESSES = ("redis", "server", "worker")


@dataclass
class ServerInfo:
    """A running local server: where it answers and how long it took to get there."""

    url: str
    api_key: str = field(repr=False)
    pids: dict[str, int]
    timings: dict[str, float] = field(default_factory=dict)
    reused: bool = False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_taken(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    # A zombie has exited; only its parent has not reaped it yet.
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def rss_bytes(pid: int) -> int:
    """Return a process's resident memory in bytes (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class LocalServer:
    """Start, find and stop the local Argilla server described by the settings."""

    def __init__(self, settings: ArgillaSettings):
        self.settings = settings
        self.home = Path(settings.home)
        self.state_path = self.home / "state.json"
        self.logs = self.home / "logs"

    @property
    def python(self) -> Path:
        """The interpreter of the server's virtualenv."""
        return Path(self.settings.venv) / "bin" / "python"

    def log_path(self, name: str) -> Path:
        """Return the log file of one process (redis, server, worker, setup, pip)."""
        return self.logs / f"{name}.log"

    # --- state --------------------------------------------------------------

    def state(self) -> dict:
        """Return what the last start wrote (url, key, pids), or {} if nothing."""
        try:
            return json.loads(self.state_path.read_text("utf-8"))
        except (OSError, ValueError):
            return {}

    def _write_state(self, state: dict) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        # The file holds the owner's API key: readable by this user only.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fp:
            json.dump(state, fp, indent=2)
        tmp.replace(self.state_path)

    def running(self) -> ServerInfo | None:
        """Return the server if every one of its processes is alive and it answers."""
        state = self.state()
        pids = state.get("pids", {})
        if not state or set(pids) != set(PROCESSES):
            return None
        if not all(_alive(pid) for pid in pids.values()):
            return None
        if not self._answers(state["url"], state["api_key"]):
            return None
        return ServerInfo(state["url"], state["api_key"], pids, reused=True)

    @staticmethod
    def _answers(url: str, api_key: str) -> bool:
        try:
            reply = httpx.get(
                f"{url}/api/v1/me", headers={"X-Argilla-Api-Key": api_key}, timeout=5
            )
        except httpx.HTTPError:
            return False
        return reply.status_code == 200

    # --- virtualenv ---------------------------------------------------------

    def ensure_venv(self) -> float:
        """Create the server's virtualenv unless it is there; return seconds spent.

        A lock file next to it makes a second process wait instead of installing
        into the same directory at the same time.
        """
        venv = Path(self.settings.venv)
        venv.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(venv.with_name(venv.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._install_venv()
        return time.monotonic() - started

    def _install_venv(self) -> None:
        marker = Path(self.settings.venv) / ".normloom-installed"
        wanted = self.settings.server_requirement
        if marker.exists() and marker.read_text().strip() == wanted:
            return
        self.logs.mkdir(parents=True, exist_ok=True)
        base = shutil.which("python3.11") or getattr(
            sys, "_base_executable", sys.executable
        )
        log.info("Creating %s with %s (first use only) ...", self.settings.venv, wanted)
        with self.log_path("pip").open("w") as out:
            for cmd in (
                [base, "-m", "venv", "--clear", str(self.settings.venv)],
                [str(self.python), "-m", "pip", "install", "--quiet", wanted],
            ):
                done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
                if done.returncode != 0:
                    raise LocalServerError(
                        f"Could not set up the argilla-server virtualenv: "
                        f"`{' '.join(cmd)}` exited with {done.returncode}; see "
                        f"{self.log_path('pip')}. Check that python3.11 with venv "
                        "and the package index are reachable."
                    )
        marker.write_text(wanted + "\n")

    # --- start and stop -----------------------------------------------------

    def _env(self, redis_port: int) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("NORMLOOM_", "ARGILLA_", "PYTHON", "VIRTUAL_ENV"))
        }
        env.update(
            ARGILLA_HOME_PATH=str(self.home / "data"),
            ARGILLA_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
            ARGILLA_SEARCH_ENGINE=ENGINE_NAME,
            ARGILLA_DOCS_ENABLED="true",
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_OFFLINE="1",
            PYTHONUNBUFFERED="1",
        )
        return env

    def _spawn(self, name: str, cmd: list[str], env: dict | None = None) -> int:
        out = self.log_path(name).open("w")
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        out.close()
        (self.home / f"{name}.pid").write_text(f"{proc.pid}\n")
        return proc.pid

    def _tail(self, name: str, lines: int = 15) -> str:
        try:
            text = self.log_path(name).read_text("utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _start_redis(self) -> tuple[int, int]:
        binary = shutil.which("redis-server")
        if binary is None:
            raise LocalServerError(
                "redis-server is not installed; the local Argilla server needs it. "
                "Install Debian's package: apt-get install redis-server."
            )
        port = _free_port()
        pid = self._spawn(
            "redis",
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.home),
            ],
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        return pid, port
            except OSError:
                pass
            if not _alive(pid):
                break
            time.sleep(0.1)
        raise LocalServerError(
            f"redis-server did not answer on 127.0.0.1:{port}:\n{self._tail('redis')}"
        )

    def _password(self) -> str:
        if self.settings.owner_password is not None:
            return self.settings.owner_password.get_secret_value()
        log.warning(
            "The local Argilla owner %r has the default password %s: fine on this "
            "machine's loopback, never for a shared server (set "
            "NORMLOOM_ARGILLA__OWNER_PASSWORD).",
            self.settings.owner,
            DEFAULT_PASSWORD,
        )
        return DEFAULT_PASSWORD

    def _api_key(self) -> str:
        if self.settings.api_key is not None:
            return self.settings.api_key.get_secret_value()
        return self.state().get("api_key") or "nl." + os.urandom(24).hex()

    def start(self) -> ServerInfo:
        """Start Redis, the server and the worker, or return the running server.

        Raises:
            LocalServerError: A part could not be installed or did not come up.
        """
        found = self.running()
        if found is not None:
            return found
        self.stop()
        started = time.monotonic()
        timings = {"venv_s": self.ensure_venv()}
        self.logs.mkdir(parents=True, exist_ok=True)

        port = self.settings.port or _free_port()
        if _port_taken(port):
            raise LocalServerError(
                f"Port {port} on 127.0.0.1 is taken by another program; set "
                "NORMLOOM_ARGILLA__PORT to a free port (0 picks one)."
            )
        api_key = self._api_key()
        pids = {}
        redis_pid, redis_port = self._start_redis()
        pids["redis"] = redis_pid
        env = self._env(redis_port)
        self._setup(env, api_key)
        timings["setup_s"] = time.monotonic() - started - timings["venv_s"]

        launcher = [str(self.python), str(LAUNCHER)]
        pids["server"] = self._spawn(
            "server", [*launcher, "server", "--port", str(port)], env
        )
        pids["worker"] = self._spawn("worker", [*launcher, "worker"], env)
        url = f"http://127.0.0.1:{port}"
        self._write_state(
            {"url": url, "api_key": api_key, "pids": pids, "redis_port": redis_port}
        )
        self._wait(url, api_key, pids)
        timings["total_s"] = time.monotonic() - started
        log.info("Argilla is up at %s after %.1f s", url, timings["total_s"])
        return ServerInfo(url, api_key, pids, timings)

    def _setup(self, env: dict[str, str], api_key: str) -> None:
        owner = {
            "username": self.settings.owner,
            "password": self._password(),
            "api_key": api_key,
            "workspace": self.settings.workspace,
        }
        with self.log_path("setup").open("w") as out:
            done = subprocess.run(
                [str(self.python), str(LAUNCHER), "setup"],
                input=json.dumps(owner),
                text=True,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=300,
            )
        if done.returncode != 0:
            self.stop()
            raise LocalServerError(
                "Migrating the Argilla database or creating its owner failed:\n"
                f"{self._tail('setup')}"
            )

    def _wait(self, url: str, api_key: str, pids: dict[str, int]) -> None:
        deadline = time.monotonic() + self.settings.startup_timeout_s
        while time.monotonic() < deadline:
            if self._answers(url, api_key):
                return
            for name in ("server", "worker"):
                if not _alive(pids[name]):
                    self.stop()
                    raise LocalServerError(
                        f"The Argilla {name} stopped while starting:\n{self._tail(name)}"
                    )
            time.sleep(0.25)
        self.stop()
        raise LocalServerError(
            f"Argilla did not answer at {url} within "
            f"{self.settings.startup_timeout_s:.0f} s:\n{self._tail('server')}"
        )

    def stop(self) -> list[str]:
        """Stop every process a start began (by the pids it wrote); return their names."""
        stopped = []
        for name in reversed(PROCESSES):
            pid_file = self.home / f"{name}.pid"
            try:
                pid = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                continue
            # Only a process that is still ours: a reused pid belongs to someone else.
            ours = ("redis-server" if name == "redis" else str(LAUNCHER)) in _cmdline(
                pid
            )
            if ours and _alive(pid):
                os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + 15
                while _alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
                stopped.append(name)
            pid_file.unlink(missing_ok=True)
        state = self.state()
        if state.pop("pids", None) is not None:
            self._write_state(state)
        return stopped

    def memory(self) -> dict[str, int]:
        """Return the resident memory in bytes of each running process."""
        return {
            name: rss_bytes(pid) for name, pid in self.state().get("pids", {}).items()
        }
