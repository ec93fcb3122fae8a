"""An OpenAI-compatible server on 127.0.0.1 that behaves like a busy, faulty LLM host.

It answers chat completions of every normloom stage with schema-valid content
(``bench.content``) after a configurable latency, and injects the faults real
servers produce, each at its own rate: 429 with Retry-After, 429
insufficient_quota, 500, 502 with an HTML page, reads that never finish, bodies cut
off mid-JSON, replies cut at the token limit, content that is no JSON, and refusals.
It can enforce a requests-per-minute limit of its own, and serves the Batch API
(``/v1/files``, ``/v1/batches``). Tests run it in a thread (``with Simulator() as
sim``); benchmarks run it as its own process (``python -m bench.simulator``) so that
it does not share the client's interpreter.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from types import TracebackType

import orjson
from aiohttp import web

from bench.content import reply_data

HTML_502 = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
FAULTS = (
    "rate_limit",
    "quota",
    "server_error",
    "bad_gateway",
    "hang",
    "cut_body",
    "truncated",
    "malformed",
    "refusal",
)


@dataclass
class SimConfig:
    """How the simulated server behaves.

    Attributes:
        latency_s: Mean seconds before a reply starts.
        jitter_s: Latency varies uniformly by up to this much either way.
        tokens_per_s: Output speed; each reply's completion tokens add to its
            latency. 0 means instant output.
        faults: Share of chat requests (0 to 1) answered with each fault of
            ``FAULTS``, e.g. ``{"rate_limit": 0.05, "hang": 0.01}``.
        sequence: Faults (None: a good reply) for the first requests, in order,
            before the rates apply: ``["rate_limit", None]``.
        retry_after_s: The Retry-After header of a 429.
        hang_s: How long a hung read holds the connection before answering.
        requests_per_minute: The server's own limit; beyond it, 429 with the
            seconds until a slot frees. None: no limit.
        vary: Vary dialogue turns by prompt, so a large run is not all duplicates.
        record: Keep every request body in ``requests`` (tests; not benchmarks).
        batch_delay_s: How long a batch stays in progress before it completes.
        seed: Seed of the fault draws, so that a run is repeatable.
    """

    latency_s: float = 0.0
    jitter_s: float = 0.0
    tokens_per_s: float = 0.0
    faults: dict[str, float] = field(default_factory=dict)
    sequence: list[str | None] = field(default_factory=list)
    retry_after_s: float = 1.0
    hang_s: float = 3600.0
    requests_per_minute: int | None = None
    vary: bool = False
    record: bool = True
    batch_delay_s: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = (set(self.faults) | set(self.sequence)) - {*FAULTS, None}
        if unknown:
            raise ValueError(f"unknown fault(s) {sorted(unknown)}; known: {FAULTS}")


class Simulator:
    """The simulated server; counters say what it received and answered.

    Attributes:
        calls: Chat-completion requests received.
        answered: Counts by outcome ("ok" or the fault's name).
        max_in_flight: Most chat requests being answered at once.
        batches: Batches created, by id.
        requests: The request bodies received, when ``config.record`` is on.
    """

    def __init__(self, config: SimConfig | None = None, port: int = 0) -> None:
        """Prepare a server; ``start`` (or ``with``) binds the port (0: a free one)."""
        self.config = config or SimConfig()
        self.port = port
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.answered: Counter[str] = Counter()
        self.requests: list[dict] = []
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self._rng = random.Random(self.config.seed)
        self._sequence = deque(self.config.sequence)
        self._window: deque[float] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI base URL of the running server, ending in ``/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def app(self) -> web.Application:
        """Return the aiohttp application serving the OpenAI routes."""
        app = web.Application(client_max_size=512 * 1024**2)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/files", self._upload)
        app.router.add_get("/v1/files/{id}", self._file)
        app.router.add_get("/v1/files/{id}/content", self._file_content)
        app.router.add_post("/v1/batches", self._create_batch)
        app.router.add_get("/v1/batches/{id}", self._batch)
        app.router.add_get("/stats", self._stats)
        return app

    async def serve(self) -> None:
        """Bind the port and serve on the running loop until cancelled."""
        self._runner = web.AppRunner(
            self.app(), handler_cancellation=True, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, backlog=1024)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    def start(self) -> Simulator:
        """Serve in a background thread with its own event loop."""
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(self.serve())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="llm-simulator", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        """Stop serving, cut short hung replies and close the socket."""
        if self._loop is None:
            return
        if self._runner is not None:
            done = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
            done.result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> Simulator:
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

    # Chat completions

    async def _chat(self, request: web.Request) -> web.Response:
        self.calls += 1
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            body = orjson.loads(await request.read())
            if self.config.record:
                self.requests.append(body)
            wait = self._over_limit()
            if wait is not None:
                self.answered["server_rate_limit"] += 1
                return _error(429, "rate limit reached", {"Retry-After": f"{wait:.2f}"})
            fault = self._draw_fault()
            if fault == "hang":
                await asyncio.sleep(self.config.hang_s)
            status, payload, tokens = self.answer(body, fault)
            await asyncio.sleep(self._delay(tokens))
            self.answered[fault or "ok"] += 1
            if fault == "cut_body":
                text = json.dumps(payload)
                return web.Response(
                    body=text[: len(text) // 2].encode(),
                    content_type="application/json",
                )
            if fault == "bad_gateway":
                return web.Response(status=502, text=HTML_502, content_type="text/html")
            headers = (
                {"Retry-After": f"{self.config.retry_after_s:g}"}
                if fault == "rate_limit"
                else None
            )
            return web.Response(
                status=status,
                body=orjson.dumps(payload),
                content_type="application/json",
                headers=headers,
            )
        finally:
            self.in_flight -= 1

    def answer(self, body: dict, fault: str | None = None) -> tuple[int, dict, int]:
        """Return the status, JSON body and completion tokens of one request."""
        if fault == "rate_limit":
            return 429, _error_body("Rate limit reached, retry later."), 0
        if fault == "quota":
            return (
                429,
                _error_body(
                    "You exceeded your current quota.", code="insufficient_quota"
                ),
                0,
            )
        if fault in ("server_error", "bad_gateway"):
            return 500, _error_body("The server had an error."), 0
        data = reply_data(body, vary=self._rng if self.config.vary else None)
        if data is None:
            return 400, _error_body("the simulator knows no schema for this request"), 0
        content: str | None = json.dumps(data, ensure_ascii=False)
        finish, refusal = "stop", None
        if fault == "truncated":
            content, finish = content[: len(content) // 3], "length"
        elif fault == "malformed":
            content = "Here is what you asked for: " + content.replace('"', "'")
        elif fault == "refusal":
            content, refusal = None, "I can't help with that request."
        prompt = len(orjson.dumps(body.get("messages", []))) // 4
        completion = len(content or "") // 3
        return (
            200,
            _completion(body, content, finish, refusal, prompt, completion),
            completion,
        )

    def _draw_fault(self) -> str | None:
        if self._sequence:
            return self._sequence.popleft()
        draw = self._rng.random()
        for name in FAULTS:
            rate = self.config.faults.get(name, 0.0)
            if draw < rate:
                return name
            draw -= rate
        return None

    def _over_limit(self) -> float | None:
        """Return seconds to wait when the request exceeds the server's own limit."""
        limit = self.config.requests_per_minute
        if not limit:
            return None
        now = time.monotonic()
        while self._window and now - self._window[0] >= 60:
            self._window.popleft()
        if len(self._window) >= limit:
            return 60 - (now - self._window[0])
        self._window.append(now)
        return None

    def _delay(self, tokens: int) -> float:
        cfg = self.config
        delay = cfg.latency_s + cfg.jitter_s * (2 * self._rng.random() - 1)
        if cfg.tokens_per_s:
            delay += tokens / cfg.tokens_per_s
        return max(0.0, delay)

    async def _models(self, request: web.Request) -> web.Response:
        model = {"id": "simulated", "object": "model", "created": 0, "owned_by": "sim"}
        return web.json_response({"object": "list", "data": [model]})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "calls": self.calls,
                "max_in_flight": self.max_in_flight,
                "answered": dict(self.answered),
                "batches": len(self.batches),
            }
        )

    # Files and batches

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        file_id = f"file-{len(self.files) + 1:06d}"
        self.files[file_id] = upload.file.read()
        return web.json_response(self._file_object(file_id, str(form["purpose"])))

    def _file_object(self, file_id: str, purpose: str = "batch") -> dict:
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(self.files[file_id]),
            "created_at": int(time.time()),
            "filename": f"{file_id}.jsonl",
            "purpose": purpose,
            "status": "processed",
        }

    async def _file(self, request: web.Request) -> web.Response:
        file_id = request.match_info["id"]
        if file_id not in self.files:
            return _error(404, f"no file {file_id}")
        return web.json_response(self._file_object(file_id))

    async def _file_content(self, request: web.Request) -> web.Response:
        file_id = request.match_info["id"]
        if file_id not in self.files:
            return _error(404, f"no file {file_id}")
        return web.Response(body=self.files[file_id], content_type="application/jsonl")

    async def _create_batch(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("input_file_id") not in self.files:
            return _error(400, f"no input file {body.get('input_file_id')}")
        batch_id = f"batch_{len(self.batches) + 1:06d}"
        lines = self.files[body["input_file_id"]].splitlines()
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body.get("endpoint", "/v1/chat/completions"),
            "input_file_id": body["input_file_id"],
            "completion_window": body.get("completion_window", "24h"),
            "status": "in_progress",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": int(time.time()),
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "metadata": body.get("metadata"),
        }
        self.batches[batch_id] = batch
        asyncio.get_running_loop().create_task(self._run_batch(batch, lines))
        return web.json_response(batch)

    async def _run_batch(self, batch: dict, lines: list[bytes]) -> None:
        await asyncio.sleep(self.config.batch_delay_s)
        out, errors = [], []
        for n, line in enumerate(lines):
            row = json.loads(line)
            self.calls += 1
            if self.config.record:
                self.requests.append(row["body"])
            fault = self._draw_fault()
            if fault in ("hang", "cut_body"):  # no such thing inside a batch
                fault = None
            status, payload, _ = self.answer(row["body"], fault)
            self.answered[fault or "ok"] += 1
            result = {
                "id": f"batch_req_{n}",
                "custom_id": row["custom_id"],
                "response": {"status_code": status, "body": payload},
                "error": None,
            }
            (out if status == 200 else errors).append(result)
        for rows, key in ((out, "output_file_id"), (errors, "error_file_id")):
            if rows:
                file_id = f"file-{len(self.files) + 1:06d}"
                self.files[file_id] = "".join(
                    json.dumps(r, ensure_ascii=False) + "\n" for r in rows
                ).encode()
                batch[key] = file_id
        batch["request_counts"].update(completed=len(out), failed=len(errors))
        batch["status"] = "completed"
        batch["completed_at"] = int(time.time())

    async def _batch(self, request: web.Request) -> web.Response:
        batch = self.batches.get(request.match_info["id"])
        if batch is None:
            return _error(404, f"no batch {request.match_info['id']}")
        return web.json_response(batch)


def _error_body(message: str, code: str | None = None) -> dict:
    kind = "insufficient_quota" if code == "insufficient_quota" else "server_error"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _error(status: int, message: str, headers: dict | None = None) -> web.Response:
    return web.json_response(_error_body(message), status=status, headers=headers)


def _completion(
    request: dict,
    content: str | None,
    finish: str,
    refusal: str | None,
    prompt: int,
    completion: int,
) -> dict:
    return {
        "id": f"chatcmpl-sim-{time.monotonic_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model") or "simulated",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": content,
                    "refusal": refusal,
                },
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def main() -> None:
    """Serve the simulator until interrupted; print its base URL once it listens."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds")
    parser.add_argument("--jitter", type=float, default=0.0, help="seconds")
    parser.add_argument("--tokens-per-s", type=float, default=0.0)
    parser.add_argument("--rpm", type=int, default=None, help="requests per minute")
    parser.add_argument("--retry-after", type=float, default=1.0, help="seconds")
    parser.add_argument("--vary", action="store_true", help="vary dialogues")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME=RATE",
        help=f"inject a fault at a rate, e.g. rate_limit=0.05; names: {FAULTS}",
    )
    args = parser.parse_args()
    faults = {k: float(v) for k, v in (f.split("=", 1) for f in args.fault)}
    sim = Simulator(
        SimConfig(
            latency_s=args.latency,
            jitter_s=args.jitter,
            tokens_per_s=args.tokens_per_s,
            requests_per_minute=args.rpm,
            retry_after_s=args.retry_after,
            vary=args.vary,
            faults=faults,
            record=False,
        ),
        port=args.port,
    )

    async def run() -> None:
        await sim.serve()
        print(sim.base_url, flush=True)
        await asyncio.Event().wait()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
