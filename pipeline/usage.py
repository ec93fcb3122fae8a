"""Calls, tokens and cost of a run, per stage and per language."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from pipeline.settings import Price

TOTAL_KEYS = ("calls", "cached", "prompt_tokens", "completion_tokens", "seconds")


@dataclass
class StageUsage:
    """Calls and tokens of one stage (or one language)."""

    calls: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    errors: Counter = field(default_factory=Counter)


class UsageStats:
    """Thread-safe counters of calls, tokens, cache hits and errors.

    Tokens count every reply a run used, those served from the cache included, so
    the cost is what the dataset took to make; ``calls`` counts what was paid for
    in this invocation.

    Args:
        price: The model's price, or None when the price table has no entry for it
            (costs are then reported as None).
        price_factor: Multiplies the price (0.5 for the Batch API's discount).
    """

    def __init__(self, price: Price | None = None, price_factor: float = 1.0) -> None:
        self._lock = threading.Lock()
        self.price = price
        self.price_factor = price_factor
        self.stages: dict[str, StageUsage] = defaultdict(StageUsage)
        self.languages: dict[str, StageUsage] = defaultdict(StageUsage)

    def record(
        self,
        stage: str,
        *,
        language: str | None = None,
        prompt: int = 0,
        completion: int = 0,
        seconds: float = 0.0,
        cached: bool = False,
        error: str | None = None,
    ) -> None:
        """Add one call (or one cache hit, or one error) to ``stage``."""
        with self._lock:
            for usage in (
                self.stages[stage],
                self.languages[language or "unknown"],
            ):
                if error:
                    usage.errors[error] += 1
                    continue
                if cached:
                    usage.cached += 1
                else:
                    usage.calls += 1
                    usage.seconds += seconds
                usage.prompt_tokens += prompt
                usage.completion_tokens += completion

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """Return the price of these tokens in USD, or None without a price."""
        if self.price is None:
            return None
        usd = (
            prompt_tokens * self.price.prompt
            + completion_tokens * self.price.completion
        ) / 1_000_000
        return round(usd * self.price_factor, 6)

    def _row(self, u: StageUsage) -> dict:
        return {
            "calls": u.calls,
            "cached": u.cached,
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "seconds": round(u.seconds, 2),
            "errors": dict(u.errors),
            "cost_usd": self.cost(u.prompt_tokens, u.completion_tokens),
        }

    def as_dict(self) -> dict:
        """Return the counters as plain data, with totals and costs."""
        with self._lock:
            stages = {k: self._row(u) for k, u in sorted(self.stages.items())}
            languages = {
                k: self._row(u)
                for k, u in sorted(self.languages.items())
                if u.calls or u.cached
            }
        total = {key: sum(s[key] for s in stages.values()) for key in TOTAL_KEYS}
        total["seconds"] = round(total["seconds"], 2)
        total["cost_usd"] = self.cost(
            total["prompt_tokens"], total["completion_tokens"]
        )
        return {"stages": stages, "languages": languages, "total": total}
