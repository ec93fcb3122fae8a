"""The one way normloom talks to a language model.

Any OpenAI-compatible endpoint works the same: the reply is parsed and validated by
our own pydantic models, whatever the server claims to enforce. Calls run on an
event loop with a bounded number in flight (``pipeline.transport`` retries
transient HTTP failures there, the only retry layer); truncated, malformed and
off-schema replies get a bounded number of new calls; refusals are counted. Every
reply, failed ones included, goes to the cache, so a re-run repeats no call.

``acomplete`` is the async call; ``complete`` is the same call for threads (the
stages and Prefect's thread tasks), run on the client's own loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from pipeline.cache import ResponseCache, cache_key
from pipeline.errors import (
    LLMError,
    LLMQuotaError,
    LLMRefusalError,
    LLMSchemaError,
    LLMTransportError,
    LLMTruncatedError,
)
from pipeline.replies import parse_json_object
from pipeline.settings import LLMSettings
from pipeline.transport import ChatTransport, Completion
from pipeline.usage import StageUsage, UsageStats

if TYPE_CHECKING:
    from pipeline.batch import BatchQueue

__all__ = ["LLMClient", "StageUsage", "UsageStats"]

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)

# Marks on a cached reply, so that a cache hit is judged exactly like the original:
# a reply cut at the token limit, a refusal, an empty message.
TRUNCATED_MARK = "\u0000[finish_reason=length]"
REFUSAL_MARK = "\u0000[refusal]"
NULL_MARK = "\u0000[null]"


def encode_reply(completion: Completion) -> str:
    """Return the cache text of a completion, marked when cut, refused or empty."""
    if completion.refusal:
        return REFUSAL_MARK + completion.refusal
    if completion.content is None:
        return NULL_MARK
    if completion.finish_reason == "length":
        return completion.content + TRUNCATED_MARK
    return completion.content


def decode_reply(text: str) -> tuple[str | None, str | None]:
    """Return (content, finish reason) of a cached reply.

    Raises:
        LLMRefusalError: The reply was a refusal.
    """
    if text.startswith(REFUSAL_MARK):
        refusal = text[len(REFUSAL_MARK) :]
        raise LLMRefusalError(f"The model refused: {refusal[:160]!r}")
    if text == NULL_MARK:
        return None, None
    if text.endswith(TRUNCATED_MARK):
        return text[: -len(TRUNCATED_MARK)], "length"
    return text, None


class LLMClient:
    """Calls one model on one OpenAI-compatible endpoint and validates its replies.

    The client belongs to one event loop: the first that awaits ``acomplete``, or
    its own background loop when ``complete`` is called first from a thread.
    """

    def __init__(
        self,
        settings: LLMSettings,
        base_url: str,
        model: str,
        *,
        cache: ResponseCache | None = None,
        stats: UsageStats | None = None,
        llama_cpp: bool = False,
        batch: BatchQueue | None = None,
    ):
        """Create a client.

        Args:
            settings: Model, key, timeouts, retry budgets and limits.
            base_url: The endpoint, e.g. ``http://127.0.0.1:8080/v1``.
            model: The model name to send.
            cache: Where replies are kept between runs; None disables caching.
            stats: Counters to add usage to; a new one when None.
            llama_cpp: The endpoint is llama.cpp: add its JSON whitespace hint.
            batch: Collect cache misses for the Batch API instead of calling.
        """
        self.settings = settings
        self.model = model
        self.cache = cache
        self.stats = stats or UsageStats()
        self.llama_cpp = llama_cpp
        self.batch = batch
        self.transport = ChatTransport(settings, base_url)
        self._schemas: dict[type[BaseModel], dict] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._loop_lock = threading.Lock()

    def for_language(self, language: str) -> _LanguageClient:
        """Return a view of this client that counts usage under ``language``."""
        return _LanguageClient(self, language)

    def _schema(self, reply_model: type[BaseModel]) -> dict:
        cached = self._schemas.get(reply_model)
        if cached is not None:
            return cached
        schema = reply_model.model_json_schema()
        if self.llama_cpp:
            # llguidance otherwise lets a model pad its reply with blank lines up to
            # max_tokens.
            schema["x-guidance"] = {"whitespace_flexible": False}
        fmt = {
            "type": "json_schema",
            "json_schema": {
                "name": reply_model.__name__,
                "schema": schema,
                "strict": self.llama_cpp,
            },
        }
        self._schemas[reply_model] = fmt
        return fmt

    def complete(
        self,
        messages: list[dict],
        reply_model: type[T],
        *,
        stage: str,
        sample: int = 0,
        max_tokens: int = 1024,
        language: str | None = None,
    ) -> T:
        """Ask for one JSON object and return it validated as ``reply_model``.

        Blocks the calling thread; the call itself runs on the client's loop.

        Args:
            messages: Chat messages, usually from ``prompts.render``.
            reply_model: The pydantic model the reply must fit.
            stage: Name of the stage, for the counters.
            sample: Index of the sample; another index asks for a new reply.
            max_tokens: Token budget of the reply.
            language: Language code the usage is counted under.

        Raises:
            LLMError: A subclass saying why no valid reply came back after the
                retries allowed.
            BatchPending: In batch mode, the reply is not in yet.
        """
        coro = self._acomplete(
            messages, reply_model, stage, sample, max_tokens, language
        )
        return self._run_sync(coro)

    async def acomplete(
        self,
        messages: list[dict],
        reply_model: type[T],
        *,
        stage: str,
        sample: int = 0,
        max_tokens: int = 1024,
        language: str | None = None,
    ) -> T:
        """Ask for one JSON object without blocking the loop; see ``complete``."""
        coro = self._acomplete(
            messages, reply_model, stage, sample, max_tokens, language
        )
        loop = asyncio.get_running_loop()
        with self._loop_lock:
            if self._loop is None:
                self._loop = loop
        if loop is self._loop:
            return await coro
        return await asyncio.wrap_future(
            asyncio.run_coroutine_threadsafe(coro, self._loop)
        )

    def _run_sync(self, coro: Coroutine[Any, Any, T]) -> T:
        with self._loop_lock:
            if self._loop is None:
                self._start_loop()
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            coro.close()
            raise RuntimeError("complete() blocks; await acomplete() on this loop")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _start_loop(self) -> None:
        self._loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.call_soon(started.set)
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="llm-client", daemon=True)
        self._thread.start()
        started.wait()

    def close(self) -> None:
        """Close the HTTP session and stop the client's own loop, if it has one."""
        if self._thread is not None and self._loop is not None:
            done = asyncio.run_coroutine_threadsafe(self.transport.close(), self._loop)
            done.result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()
            self._thread = None
            self._loop = None

    async def aclose(self) -> None:
        """Close the HTTP session from the loop the client belongs to."""
        await self.transport.close()

    def _temperature(self, stage: str, attempt: int) -> float:
        """Return the stage's temperature; a retry samples at the writing one.

        A greedy stage asked again with the same prompt would give the same
        unusable reply.
        """
        base = self.settings.stage_temperatures.get(stage, self.settings.temperature)
        return base if attempt == 0 else max(base, self.settings.temperature)

    async def _acomplete(
        self,
        messages: list[dict],
        reply_model: type[T],
        stage: str,
        sample: int,
        max_tokens: int,
        language: str | None,
    ) -> T:
        budget = max_tokens
        refusals = 0
        parse_failures = 0
        while True:
            params: dict = {
                "max_tokens": budget,
                "temperature": self._temperature(stage, refusals + parse_failures),
            }
            if self.settings.json_schema:
                params["response_format"] = self._schema(reply_model)
            # Each retry is a new sample: a re-run finds every attempt in the cache,
            # failed ones included, and makes no call that was already made.
            attempt = {"sample": sample, "attempt": refusals + parse_failures}
            key = cache_key(self.model, messages, params, attempt)
            try:
                content, finish = await self._fetch(
                    messages, params, stage, key, language
                )
                return _validate(reply_model, parse_json_object(content, finish))
            except (LLMTransportError, LLMQuotaError) as err:
                self.stats.record(stage, language=language, error=err.kind)
                raise
            except LLMRefusalError as err:
                self.stats.record(stage, language=language, error=err.kind)
                refusals += 1
                if refusals > self.settings.refusal_retries:
                    raise
            except LLMError as err:
                self.stats.record(stage, language=language, error=err.kind)
                parse_failures += 1
                if parse_failures > self.settings.parse_retries:
                    raise
                if isinstance(err, LLMTruncatedError):
                    budget = int(budget * 1.5)
                log.debug("%s: %s; asking again (%d)", stage, err, parse_failures)

    async def _fetch(
        self,
        messages: list[dict],
        params: dict,
        stage: str,
        key: str,
        language: str | None,
    ) -> tuple[str | None, str | None]:
        """Return (content, finish reason) from the cache or from one call."""
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is not None:
            text, prompt, completion = hit
            self.stats.record(
                stage,
                language=language,
                prompt=prompt,
                completion=completion,
                cached=True,
            )
            return decode_reply(text)

        body = {"model": self.model, "messages": messages, **params}
        if self.batch is not None:
            self.batch.defer(key, body, stage, language)  # raises BatchPending

        started = time.monotonic()
        prompt_estimate = len(json.dumps(messages, ensure_ascii=False)) // 3
        completion = await self.transport.post(
            body, prompt_estimate + params["max_tokens"]
        )
        self.store(key, stage, language, completion, time.monotonic() - started)
        return decode_reply(encode_reply(completion))

    def store(
        self,
        key: str,
        stage: str,
        language: str | None,
        completion: Completion,
        seconds: float = 0.0,
    ) -> None:
        """Count one completed call and keep its reply in the cache."""
        self.stats.record(
            stage,
            language=language,
            prompt=completion.prompt_tokens,
            completion=completion.completion_tokens,
            seconds=seconds,
        )
        if self.cache is not None:
            self.cache.put(
                key,
                stage,
                encode_reply(completion),
                (completion.prompt_tokens, completion.completion_tokens),
            )


def _validate(reply_model: type[T], data: dict) -> T:
    try:
        return reply_model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise LLMSchemaError(
            f"The reply does not fit {reply_model.__name__}: "
            f"{err.error_count()} error(s), first at '{where}': {first['msg']}."
        ) from err


class _LanguageClient:
    """An LLMClient whose calls count their usage under one language."""

    def __init__(self, client: LLMClient, language: str) -> None:
        self._client = client
        self.language = language

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def complete(self, *args: Any, **kwargs: Any) -> Any:
        """Call ``LLMClient.complete`` counting under this view's language."""
        kwargs.setdefault("language", self.language)
        return self._client.complete(*args, **kwargs)

    async def acomplete(self, *args: Any, **kwargs: Any) -> Any:
        """Call ``LLMClient.acomplete`` counting under this view's language."""
        kwargs.setdefault("language", self.language)
        return await self._client.acomplete(*args, **kwargs)
