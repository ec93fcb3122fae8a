"""An OpenAI-compatible chat-completions server that answers from a script.

Unit tests queue the replies the "model" gives, point a real client at ``base_url``
and then check what was sent in ``requests``. Replies can also be error statuses,
raw bodies (an HTML 502 page, truncated JSON) or slow answers, so transport
handling is tested over real HTTP. Streaming is not supported: ``"stream": true``
requests get a 400.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

logger = logging.getLogger(__name__)

MODEL = "scripted"


@dataclass
class Reply:
    """One scripted answer to one chat-completions request.

    Attributes:
        content: The assistant message's content.
        finish_reason: Why generation stopped ("stop", "length", ...).
        refusal: The assistant message's refusal text.
        status: HTTP status. Without ``body``, a status of 400 or more sends an
            OpenAI-style error object whose message is ``content`` (or the
            status phrase).
        headers: Extra response headers, e.g. ``{"Retry-After": "1"}``.
        body: Sent as it is instead of any JSON (HTML error pages, cut-off JSON).
        delay_s: Seconds to wait before answering (to make clients time out).
        prompt_tokens: Reported in ``usage``.
        completion_tokens: Reported in ``usage``.
    """

    content: str | None = None
    finish_reason: str = "stop"
    refusal: str | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    delay_s: float = 0.0
    prompt_tokens: int = 10
    completion_tokens: int = 20


Responder = Callable[[dict], Reply]


class ScriptedServer:
    """A chat-completions server on 127.0.0.1 that answers from queued replies.

    Replies are taken from the queue in order; when it is empty, ``responder`` is
    asked to compute one from the request body; when there is neither, the server
    answers 500 "no scripted reply".

    Example:
        with ScriptedServer() as server:
            server.queue(Reply('{"ok": true}'))
            client = OpenAI(base_url=server.base_url, api_key="test")
    """

    def __init__(self, responder: Responder | None = None) -> None:
        """Prepare a server; ``start`` (or ``with``) binds a free port."""
        self.responder = responder
        self._replies: deque[Reply] = deque()
        self._requests: list[dict] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI base URL of the running server, ending in ``/v1``."""
        if self._httpd is None:
            raise RuntimeError("the scripted server is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    @property
    def requests(self) -> list[dict]:
        """A copy of the chat-completions request bodies received, in order."""
        with self._lock:
            return list(self._requests)

    @property
    def pending(self) -> int:
        """How many queued replies have not been sent yet."""
        with self._lock:
            return len(self._replies)

    def queue(self, *replies: Reply | str) -> None:
        """Add replies to the end of the queue; a str is ``Reply(content=str)``."""
        with self._lock:
            for reply in replies:
                self._replies.append(
                    Reply(content=reply) if isinstance(reply, str) else reply
                )

    def start(self) -> ScriptedServer:
        """Bind an ephemeral port and serve in a background thread."""
        self._stopping.clear()
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.scripted = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="scripted-llm",
            daemon=True,
        )
        self._thread.start()
        logger.debug("Scripted LLM server listening at %s", self.base_url)
        return self

    def stop(self) -> None:
        """Stop serving, cut short any delayed reply and close the socket."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> ScriptedServer:
        """Start the server."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    def _record(self, body: dict) -> Reply | None:
        """Store a request and return the reply it gets, if any is scripted."""
        with self._lock:
            self._requests.append(body)
            if self._replies:
                return self._replies.popleft()
        if self.responder is not None:
            return self.responder(body)
        return None


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    scripted: ScriptedServer


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    # HTTP/1.0 closes each connection, so nothing lingers after stop().
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        """Answer the model list and a health check."""
        if self.path.rstrip("/") in ("/v1/models", "/models"):
            model = {"id": MODEL, "object": "model", "created": 0, "owned_by": "tests"}
            self._send_json(200, {"object": "list", "data": [model]})
        elif self.path == "/health":
            self._send_json(200, {"status": "ok"})
        else:
            self._send_error(404, f"no route GET {self.path}")

    def do_POST(self) -> None:
        """Answer a chat-completions request from the script."""
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._send_error(404, f"no route POST {self.path}")
            return
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError as err:
            self._send_error(400, f"request body is not JSON: {err}")
            return
        if body.get("stream"):
            self._send_error(400, "the scripted server does not stream")
            return

        scripted = self.server.scripted
        try:
            reply = scripted._record(body)
        except Exception as err:  # a broken responder must fail the test, not hang
            logger.exception("Scripted responder failed")
            self._send_error(500, f"responder failed: {err!r}")
            return
        if reply is None:
            self._send_error(500, "no scripted reply")
            return
        if reply.delay_s and scripted._stopping.wait(reply.delay_s):
            return
        self._send_reply(reply, body)

    def _send_reply(self, reply: Reply, request: dict) -> None:
        """Send a reply as raw body, error object or chat completion."""
        if reply.body is not None:
            headers = {"Content-Type": "application/json", **reply.headers}
            self._send(reply.status, reply.body.encode("utf-8"), headers)
        elif reply.status >= 400:
            message = reply.content or HTTPStatus(reply.status).phrase
            self._send_error(reply.status, message, reply.headers)
        else:
            self._send_json(reply.status, _completion(reply, request), reply.headers)

    def _send_error(
        self, status: int, message: str, headers: dict[str, str] | None = None
    ) -> None:
        """Send an OpenAI-style error object."""
        kind = "rate_limit_error" if status == 429 else "scripted_error"
        error = {"message": message, "type": kind, "param": None, "code": None}
        self._send_json(status, {"error": error}, headers)

    def _send_json(
        self, status: int, payload: dict, headers: dict[str, str] | None = None
    ) -> None:
        """Send ``payload`` as JSON."""
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        self._send(
            status, data, {"Content-Type": "application/json", **(headers or {})}
        )

    def _send(self, status: int, data: bytes, headers: dict[str, str]) -> None:
        """Send a status, headers and body; a client that hung up is ignored."""
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("Client went away before the reply was sent")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Log each request at DEBUG instead of printing it to stderr."""
        logger.debug("scripted server: " + format, *args)


def _completion(reply: Reply, request: dict) -> dict:
    """Return a chat.completion object carrying the reply."""
    message = {"role": "assistant", "content": reply.content, "refusal": reply.refusal}
    return {
        "id": f"chatcmpl-scripted-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model") or MODEL,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": reply.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        },
    }
