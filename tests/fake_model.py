"""A scripted model that answers every stage with valid, typed content."""

from __future__ import annotations

import json

from bench.content import dialogue_type, language_of, reply_data, stage_of
from tests.scripted_server import Reply

__all__ = ["answer", "dialogue_type", "language_of", "stage_of"]


def answer(request: dict, judge_scale: int | None = None) -> Reply:
    """Answer one request of any stage with valid content."""
    data = reply_data(request, judge_scale)
    if data is None:
        return Reply(status=400, content=f"unknown schema {stage_of(request)}")
    return Reply(content=json.dumps(data, ensure_ascii=False), completion_tokens=50)
