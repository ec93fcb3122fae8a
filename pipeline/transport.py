"""The HTTP side of a chat-completions call: limits, retries and error mapping.

Requests go out as plain JSON over one shared aiohttp session. The openai SDK is
not used here: it spends about 4 ms of CPU on every request (py-spy, see the
README), which caps a 2-core machine far below what the server allows. This module
is therefore normloom's one retry layer and maps OpenAI-style error replies itself:
429 with Retry-After and 408/409/5xx, timeouts, refused connections and bodies that
are not a chat completion are retried with backoff; 429 insufficient_quota stops
at once; any other status is reported as it is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import orjson
from aiolimiter import AsyncLimiter

from pipeline.errors import LLMQuotaError, LLMTransportError
from pipeline.settings import LLMSettings

log = logging.getLogger(__name__)

QUOTA_MESSAGE = (
    "The endpoint says the account has no quota left (429 insufficient_quota). Add "
    "credit or switch NORMLOOM_LLM__BASE_URL / NORMLOOM_LLM__MODEL, then re-run the "
    "same command: finished dialogues are kept."
)


@dataclass(frozen=True)
class Completion:
    """What one chat completion gave back."""

    content: str | None
    finish_reason: str | None
    refusal: str | None
    prompt_tokens: int
    completion_tokens: int

    @classmethod
    def from_body(cls, body: dict) -> Completion:
        """Read a chat.completion object (already checked to have choices)."""
        usage = body.get("usage") or {}
        choices = body["choices"]
        message = (choices[0].get("message") or {}) if choices else {}
        return cls(
            content=message.get("content"),
            finish_reason=choices[0].get("finish_reason") if choices else None,
            refusal=message.get("refusal"),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
        )


class _Transient(Exception):
    """One failed attempt worth another; ``summary`` ends the final message."""

    def __init__(self, summary: str, retry_after: float | None = None) -> None:
        super().__init__(summary)
        self.summary = summary
        self.retry_after = retry_after


def parse_completion(
    status: int, raw: bytes, retry_after: str | None, secret: str | None = None
) -> dict:
    """Turn one HTTP answer into a chat.completion object, or raise why not.

    ``secret`` (the API key) is cut out of any message the server sent back.

    Raises:
        LLMQuotaError: 429 insufficient_quota.
        LLMTransportError: A status no retry can fix (400, 401, 404, ...).
        _Transient: A status or body worth another attempt.
    """
    if status == 200:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            raise _Transient(
                "The endpoint answered with a body that is not an OpenAI chat "
                f"completion ({type(err).__name__})"
            ) from err
        if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
            raise _Transient(
                "The endpoint answered with a body that is not an OpenAI chat "
                "completion (no 'choices' list)"
            )
        return body

    error = _error_object(raw)
    message = str(error.get("message") or "")[:300]
    if secret:
        message = message.replace(secret, "***")
    if status == 429 and (
        error.get("code") == "insufficient_quota"
        or error.get("type") == "insufficient_quota"
    ):
        raise LLMQuotaError(QUOTA_MESSAGE)
    if status == 429:
        raise _Transient(f"Rate limited: {message}", _seconds(retry_after))
    if status in (408, 409) or status >= 500:
        raise _Transient(f"The endpoint answered HTTP {status}", _seconds(retry_after))
    hint = " Check NORMLOOM_LLM__API_KEY." if status in (401, 403) else ""
    raise LLMTransportError(
        f"The endpoint answered HTTP {status}: {message or 'no message'}.{hint}"
    )


def _error_object(raw: bytes) -> dict:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}  # an HTML page from a proxy, say
    if not isinstance(body, dict):
        return {}
    error = body.get("error", body)
    return error if isinstance(error, dict) else {"message": str(error)}


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class ChatTransport:
    """Posts chat-completion requests with bounded concurrency, limits and retries.

    It belongs to one event loop: the first one that uses it.

    Args:
        settings: Timeouts, retry budget, concurrency and rate limits.
        base_url: The endpoint, e.g. ``http://127.0.0.1:8080/v1``.
    """

    def __init__(self, settings: LLMSettings, base_url: str) -> None:
        self.settings = settings
        self.url = base_url.rstrip("/") + "/chat/completions"
        # Named in errors; user info and query (where keys hide) left out.
        parts = urlsplit(self.url)
        netloc = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname
        self._public_url = urlunsplit((parts.scheme, netloc or "", parts.path, "", ""))
        self._headers = {"Content-Type": "application/json"}
        self._secret = None
        if settings.api_key is not None:
            self._secret = settings.api_key.get_secret_value()
            self._headers["Authorization"] = f"Bearer {self._secret}"
        self._slots = asyncio.Semaphore(max(1, settings.concurrency))
        rpm, tpm = settings.requests_per_minute, settings.tokens_per_minute
        self._rpm = AsyncLimiter(rpm, 60) if rpm else None
        self._tpm = AsyncLimiter(tpm, 60) if tpm else None
        self._session: aiohttp.ClientSession | None = None
        self.attempts = 0

    async def post(self, payload: dict, tokens: int) -> Completion:
        """Send one request, retrying transient failures; return its completion.

        Args:
            payload: The request body.
            tokens: Tokens the request may use (prompt estimate plus max_tokens),
                charged to the tokens-per-minute limit.

        Raises:
            LLMQuotaError: The account is out of quota (no retry).
            LLMTransportError: No usable answer after every attempt allowed.
        """
        data = orjson.dumps(payload)
        attempts = self.settings.max_retries + 1
        for attempt in range(attempts):
            try:
                return Completion.from_body(await self._attempt(data, tokens))
            except _Transient as err:
                if attempt + 1 == attempts:
                    raise LLMTransportError(
                        f"{err.summary} after {attempts} attempt(s); timeout "
                        f"{self.settings.timeout_s:g} s per attempt."
                    ) from err
                wait = self._backoff(attempt, err.retry_after)
                log.debug("%s; attempt %d, retrying in %.2f s", err, attempt + 1, wait)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        base = self.settings.backoff_s
        wait = min(base * 2**attempt + random.uniform(0, base), 30.0)
        return max(wait, retry_after) if retry_after is not None else wait

    async def _attempt(self, data: bytes, tokens: int) -> dict:
        if self._rpm is not None:
            await self._rpm.acquire()
        if self._tpm is not None:
            await self._tpm.acquire(min(tokens, self._tpm.max_rate))
        # The slot covers the HTTP exchange only: waits for limits and backoff
        # never hold one, so nothing waiting on other work can starve it.
        async with self._slots:
            self.attempts += 1
            session = self._session or self._open()
            try:
                async with session.post(
                    self.url, data=data, headers=self._headers
                ) as resp:
                    raw = await resp.read()
                    status, retry_after = resp.status, resp.headers.get("retry-after")
            except TimeoutError as err:
                raise _Transient(
                    f"The endpoint {self._public_url} did not answer in time"
                ) from err
            except aiohttp.ClientError as err:
                raise _Transient(
                    f"Could not reach the endpoint {self._public_url} "
                    f"({type(err).__name__})"
                ) from err
        return parse_completion(status, raw, retry_after, self._secret)

    def _open(self) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(timeout=timeout, connector=connector)
        return self._session

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
