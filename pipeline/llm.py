"""The one way normloom talks to a language model.

Any OpenAI-compatible endpoint works the same: the reply is parsed and validated by
our own pydantic models, whatever the server claims to enforce. Transient HTTP
failures are retried here (the SDK's own retries are off, so retry layers never
multiply); truncated, malformed and off-schema replies get a bounded number of new
calls; refusals are counted.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import TypeVar

import openai
from pydantic import BaseModel, ValidationError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

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

log = logging.getLogger(__name__)

T = TypeVar("T", bound=BaseModel)

# Appended to a cached reply that stopped at the token limit, so that a cache hit
# is judged exactly like the original reply.
TRUNCATED_MARK = "\u0000[finish_reason=length]"


@dataclass
class StageUsage:
    """Calls and tokens of one stage."""

    calls: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    errors: Counter = field(default_factory=Counter)


class UsageStats:
    """Thread-safe counters of calls, tokens, cache hits and errors per stage."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.stages: dict[str, StageUsage] = defaultdict(StageUsage)

    def record(
        self,
        stage: str,
        *,
        prompt: int = 0,
        completion: int = 0,
        seconds: float = 0.0,
        cached: bool = False,
        error: str | None = None,
    ) -> None:
        """Add one call (or one cache hit, or one error) to ``stage``."""
        with self._lock:
            usage = self.stages[stage]
            if error:
                usage.errors[error] += 1
                return
            if cached:
                usage.cached += 1
            else:
                usage.calls += 1
                usage.seconds += seconds
            usage.prompt_tokens += prompt
            usage.completion_tokens += completion

    def as_dict(self) -> dict:
        """Return the counters as plain data, with totals."""
        with self._lock:
            stages = {
                name: {
                    "calls": u.calls,
                    "cached": u.cached,
                    "prompt_tokens": u.prompt_tokens,
                    "completion_tokens": u.completion_tokens,
                    "seconds": round(u.seconds, 2),
                    "errors": dict(u.errors),
                }
                for name, u in sorted(self.stages.items())
            }
        total = {
            key: sum(s[key] for s in stages.values())
            for key in (
                "calls",
                "cached",
                "prompt_tokens",
                "completion_tokens",
                "seconds",
            )
        }
        return {"stages": stages, "total": total}


def _is_transient(err: BaseException) -> bool:
    # A 200 whose body is cut off or is not JSON (a proxy's HTML page) reaches us
    # as a decode or response-validation error: worth another attempt.
    if isinstance(err, json.JSONDecodeError | openai.APIResponseValidationError):
        return True
    if isinstance(err, openai.RateLimitError):
        return not _is_quota(err)
    return isinstance(
        err,
        openai.APITimeoutError | openai.APIConnectionError | openai.InternalServerError,
    ) or (isinstance(err, openai.APIStatusError) and err.status_code in (408, 409))


def _is_quota(err: openai.APIStatusError) -> bool:
    body = err.body if isinstance(err.body, dict) else {}
    code = body.get("code") or (body.get("error") or {}).get("code")
    return code == "insufficient_quota" or "insufficient_quota" in str(err.message)


def _retry_after(err: BaseException) -> float | None:
    response = getattr(err, "response", None)
    if response is None:
        return None
    value = response.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class _WaitRetryAfter:
    """Back off exponentially, but never less than the server's Retry-After."""

    def __init__(self) -> None:
        self._backoff = wait_exponential_jitter(initial=1, max=30)

    def __call__(self, state: RetryCallState) -> float:
        wait = self._backoff(state)
        err = state.outcome.exception() if state.outcome else None
        after = _retry_after(err) if err else None
        return max(wait, after) if after is not None else wait


class LLMClient:
    """Calls one model on one OpenAI-compatible endpoint and validates its replies."""

    def __init__(
        self,
        settings: LLMSettings,
        base_url: str,
        model: str,
        *,
        cache: ResponseCache | None = None,
        stats: UsageStats | None = None,
        llama_cpp: bool = False,
    ):
        """Create a client.

        Args:
            settings: Model, key, timeouts and retry budgets.
            base_url: The endpoint, e.g. ``http://127.0.0.1:8080/v1``.
            model: The model name to send.
            cache: Where replies are kept between runs; None disables caching.
            stats: Counters to add usage to; a new one when None.
            llama_cpp: The endpoint is llama.cpp: add its JSON whitespace hint.
        """
        self.settings = settings
        self.model = model
        self.cache = cache
        self.stats = stats or UsageStats()
        self.llama_cpp = llama_cpp
        key = settings.api_key.get_secret_value() if settings.api_key else "not-needed"
        self._client = openai.OpenAI(
            base_url=base_url,
            api_key=key,
            timeout=settings.timeout_s,
            max_retries=0,
        )
        self._slots = threading.BoundedSemaphore(max(1, settings.concurrency))

    def _schema(self, reply_model: type[BaseModel]) -> dict:
        schema = reply_model.model_json_schema()
        if self.llama_cpp:
            # llguidance otherwise lets a model pad its reply with blank lines up to
            # max_tokens.
            schema["x-guidance"] = {"whitespace_flexible": False}
        return {
            "type": "json_schema",
            "json_schema": {
                "name": reply_model.__name__,
                "schema": schema,
                "strict": self.llama_cpp,
            },
        }

    def _post(
        self, messages: list[dict], params: dict
    ) -> tuple[str | None, str | None, object]:
        """Send one request with transient retries; return content, finish, usage."""
        retrying = Retrying(
            retry=retry_if_exception(_is_transient),
            stop=stop_after_attempt(self.settings.max_retries + 1),
            wait=_WaitRetryAfter(),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt, self._slots:
                    response = self._client.chat.completions.create(
                        model=self.model, messages=messages, **params
                    )
        except openai.RateLimitError as err:
            if _is_quota(err):
                raise LLMQuotaError(
                    "The endpoint says the account has no quota left "
                    "(429 insufficient_quota). Add credit or switch "
                    "NORMLOOM_LLM__BASE_URL / NORMLOOM_LLM__MODEL, then re-run the "
                    "same command: finished dialogues are kept."
                ) from err
            raise LLMTransportError(
                f"Rate limited after retries: {err.message}"
            ) from err
        except openai.APIStatusError as err:
            raise LLMTransportError(
                f"The endpoint answered HTTP {err.status_code} "
                f"after {self.settings.max_retries + 1} attempt(s)."
            ) from err
        except (openai.APIResponseValidationError, json.JSONDecodeError) as err:
            raise LLMTransportError(
                "The endpoint answered with a body that is not an OpenAI chat "
                f"completion ({type(err).__name__}) after "
                f"{self.settings.max_retries + 1} attempt(s)."
            ) from err
        except openai.APIError as err:
            raise LLMTransportError(
                f"Could not reach the endpoint ({type(err).__name__}) after "
                f"{self.settings.max_retries + 1} attempt(s); timeout "
                f"{self.settings.timeout_s:g} s per attempt."
            ) from err

        if not response.choices:
            return None, None, response.usage
        choice = response.choices[0]
        refusal = getattr(choice.message, "refusal", None)
        if refusal:
            raise LLMRefusalError(f"The model refused: {refusal[:160]!r}")
        return choice.message.content, choice.finish_reason, response.usage

    def complete(
        self,
        messages: list[dict],
        reply_model: type[T],
        *,
        stage: str,
        sample: int = 0,
        max_tokens: int = 1024,
    ) -> T:
        """Ask for one JSON object and return it validated as ``reply_model``.

        Args:
            messages: Chat messages, usually from ``prompts.render``.
            reply_model: The pydantic model the reply must fit.
            stage: Name of the stage, for the counters.
            sample: Index of the sample; another index asks for a new reply.
            max_tokens: Token budget of the reply.

        Raises:
            LLMError: A subclass saying why no valid reply came back after the
                retries allowed.
        """
        budget = max_tokens
        refusals = 0
        parse_failures = 0
        while True:
            params = {"max_tokens": budget, "temperature": self.settings.temperature}
            if self.settings.json_schema:
                params["response_format"] = self._schema(reply_model)
            # Each retry is a new sample: a re-run finds every attempt in the cache,
            # failed ones included, and makes no call that was already made.
            attempt = {"sample": sample, "attempt": refusals + parse_failures}
            key = cache_key(self.model, messages, params, attempt)
            try:
                return self._complete_once(messages, params, reply_model, stage, key)
            except (LLMTransportError, LLMQuotaError) as err:
                self.stats.record(stage, error=err.kind)
                raise
            except LLMRefusalError as err:
                self.stats.record(stage, error=err.kind)
                refusals += 1
                if refusals > self.settings.refusal_retries:
                    raise
            except LLMError as err:
                self.stats.record(stage, error=err.kind)
                parse_failures += 1
                if parse_failures > self.settings.parse_retries:
                    raise
                if isinstance(err, LLMTruncatedError):
                    budget = int(budget * 1.5)
                log.debug("%s: %s; asking again (%d)", stage, err, parse_failures)

    def _complete_once(
        self,
        messages: list[dict],
        params: dict,
        reply_model: type[T],
        stage: str,
        key: str,
    ) -> T:
        hit = self.cache.get(key) if self.cache is not None else None
        if hit is not None:
            content, prompt, completion = hit
            finish = None
            self.stats.record(stage, prompt=prompt, completion=completion, cached=True)
        else:
            started = time.monotonic()
            content, finish, usage = self._post(messages, params)
            prompt = getattr(usage, "prompt_tokens", 0) or 0
            completion = getattr(usage, "completion_tokens", 0) or 0
            self.stats.record(
                stage,
                prompt=prompt,
                completion=completion,
                seconds=time.monotonic() - started,
            )
            if self.cache is not None and content is not None:
                if finish == "length":
                    content = content + TRUNCATED_MARK
                self.cache.put(key, stage, content, (prompt, completion))

        if content is not None and content.endswith(TRUNCATED_MARK):
            content, finish = content[: -len(TRUNCATED_MARK)], "length"
        data = parse_json_object(content, finish)
        try:
            return reply_model.model_validate(data)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "(top level)"
            raise LLMSchemaError(
                f"The reply does not fit {reply_model.__name__}: "
                f"{err.error_count()} error(s), first at '{where}': {first['msg']}."
            ) from err
