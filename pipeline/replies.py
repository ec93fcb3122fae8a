"""Parse a model's text reply into a JSON object, whatever the server wrapped it in.

Servers do not always honour a requested schema, and small local models add prose,
code fences or reasoning blocks around the object. This module finds the object and
says precisely why when it cannot.
"""

from __future__ import annotations

import ast
import json
import re

from pipeline.errors import LLMMalformedError, LLMRefusalError, LLMTruncatedError

_THINK_OPEN = re.compile(r"<think(?:ing)?>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think(?:ing)?>", re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*(?:json|JSON)?[ \t]*\n?(.*?)```", re.DOTALL)
_REFUSAL = re.compile(
    r"^\s*(?:I'?m sorry|I am sorry|I apologi[sz]e|Sorry,)?[^{]{0,40}?"
    r"\b(?:I\s+can(?:no|')t|I\s+cannot|I\s+won'?t|I\s+am\s+(?:not\s+able|unable)|"
    r"I'?m\s+(?:not\s+able|unable))\b",
    re.IGNORECASE,
)


def strip_reasoning(text: str) -> str:
    """Drop a reasoning block: keep only what follows the last closing think tag.

    Raises:
        LLMTruncatedError: A think block was opened and never closed, so the reply
            was cut before its answer.
    """
    closes = list(_THINK_CLOSE.finditer(text))
    if closes:
        return text[closes[-1].end() :]
    if _THINK_OPEN.search(text):
        raise LLMTruncatedError(
            "The reply opens a <think> block that never closes: it was cut before the "
            "answer. Raise max_tokens or turn the model's reasoning off."
        )
    return text


def _balanced_objects(text: str) -> list[str]:
    """Return every top-level balanced {...} span in ``text``, outermost first."""
    spans: list[str] = []
    depth = 0
    start = -1
    in_string = False
    escaped = False
    for i, ch in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"' and depth > 0:
            in_string = True
        elif ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}" and depth > 0:
            depth -= 1
            if depth == 0:
                spans.append(text[start : i + 1])
    if depth > 0:
        spans.append(text[start:])  # unclosed: reported as truncated by the caller
    return spans


def looks_like_refusal(text: str) -> bool:
    """Tell whether a reply with no JSON in it is a refusal written in prose."""
    return bool(_REFUSAL.search(text[:300]))


def _whole(body: str) -> dict | None:
    """Return the reply parsed as it is, when it is nothing but one JSON object."""
    stripped = body.strip()
    if not (stripped.startswith("{") and stripped.endswith("}")):
        return None
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def _python_literal(span: str) -> dict | None:
    """Read a dict written with Python quotes (``{'a': 1}``) as data, never code.

    ``ast.literal_eval`` accepts literals only, so a call or a name is refused; the
    value must also be plain JSON data.
    """
    try:
        value = ast.literal_eval(span)
        json.dumps(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def parse_json_object(text: str | None, finish_reason: str | None = None) -> dict:
    """Find and parse the JSON object in a model's reply.

    Args:
        text: The message content.
        finish_reason: The choice's finish reason; "length" means the reply was cut.

    Returns:
        The parsed object.

    Raises:
        LLMTruncatedError: The reply was cut before the object closed.
        LLMRefusalError: The reply is a refusal in prose.
        LLMMalformedError: There is no parseable JSON object in the reply.
    """
    if text is None:
        raise LLMMalformedError("The reply has no content (null) and no refusal.")
    body = strip_reasoning(text)
    value = _whole(body)
    if value is not None:
        return value

    candidates = [m.group(1) for m in _FENCE.finditer(body)] or [body]
    last_error = "no '{' found"
    truncated = False
    for candidate in candidates:
        for span in _balanced_objects(candidate):
            try:
                value = json.loads(span)
            except json.JSONDecodeError as err:
                value = _python_literal(span)
                if value is None:
                    last_error = f"{err.msg} at character {err.pos}"
                    truncated = truncated or not span.rstrip().endswith("}")
                    continue
            if isinstance(value, dict):
                return value

    if finish_reason == "length" or truncated:
        raise LLMTruncatedError(
            f"The reply stopped before its JSON object was complete ({last_error}); "
            f"it ends with {body[-60:]!r}. Raise max_tokens."
        )
    if looks_like_refusal(body):
        raise LLMRefusalError(f"The model refused in prose: {body.strip()[:160]!r}")
    raise LLMMalformedError(
        f"Expected one JSON object in the reply, got {body.strip()[:160]!r} "
        f"({last_error})."
    )
