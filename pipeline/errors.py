"""The one exception tree of normloom.

Every user-facing message says what was expected, what arrived and how to fix it.
"""

from __future__ import annotations

from dataclasses import dataclass


class NormloomError(Exception):
    """Base class of every error normloom raises on purpose."""


class ConfigError(NormloomError):
    """A setting or a configuration file is unusable."""


class TemplateError(NormloomError):
    """A prompt template is missing or was rendered without a variable it needs."""


@dataclass(frozen=True)
class RowProblem:
    """One bad field in one row of an input file."""

    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: field '{self.field}': {self.message}"


class SeedError(NormloomError):
    """A seed file holds one or more bad rows; every one is listed."""

    def __init__(self, problems: list[RowProblem], none_usable: bool = False):
        self.problems = problems
        shown = "\n".join(f"  - {p}" for p in problems[:50])
        more = len(problems) - 50
        tail = f"\n  ... and {more} more" if more > 0 else ""
        hint = (
            "No row is usable, so nothing can be generated; fix these rows."
            if none_usable
            else "Fix these rows, or pass --skip-invalid to generate from the valid "
            "rows only."
        )
        super().__init__(
            f"{len(problems)} problem(s) in seed input:\n{shown}{tail}\n{hint}"
        )


class LLMError(NormloomError):
    """A call to the language model did not give a usable reply."""

    kind = "llm_error"


class LLMTransportError(LLMError):
    """The server could not be reached, timed out or answered with an error status."""

    kind = "transport"


class LLMQuotaError(LLMError):
    """The account behind the API key has no quota left; retrying cannot help."""

    kind = "quota"


class LLMTruncatedError(LLMError):
    """The reply stopped at the token limit before the JSON object was complete."""

    kind = "truncated"


class LLMMalformedError(LLMError):
    """The reply holds no JSON object that can be parsed."""

    kind = "malformed"


class LLMSchemaError(LLMError):
    """The reply parsed as JSON but does not fit the stage's schema."""

    kind = "schema"


class LLMRefusalError(LLMError):
    """The model refused the request."""

    kind = "refused"


class ReleaseError(NormloomError):
    """A release cannot be built, written or pushed from the given runs."""


class AnnotationError(NormloomError):
    """Records for Argilla are invalid, or the Argilla server refused them."""


class ArgillaServerError(AnnotationError):
    """The Argilla server answered with an error; names the record when there is one."""

    def __init__(self, message: str, record_id: str | None = None):
        self.record_id = record_id
        super().__init__(message)


class LocalServerError(NormloomError):
    """The local Argilla server (or its Redis) could not be set up or started."""


class BatchPending(Exception):  # noqa: N818 - a signal, not an error
    """A reply was queued for the Batch API and is not in yet.

    Not a NormloomError on purpose: no handler of failures may catch it. The batch
    runner catches it, sends the queued requests and runs the item again.
    """
