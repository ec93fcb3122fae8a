"""Load and render the prompt templates kept in ``prompts/``.

Each template is one Jinja2 file named after its step. A template is split into a
system and a user message at a line holding only ``---user---``.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

import jinja2

from pipeline.errors import TemplateError

PROMPT_DIR = Path(__file__).resolve().parent.parent / "prompts"
USER_MARKER = "---user---"


def _data(value: object) -> str:
    """Render seed or model text as inert data inside a template's data slot."""
    text = "" if value is None else str(value)
    # Angle brackets could close the data tags around the text and let it pose as
    # instructions, so they are replaced by look-alike characters.
    return text.replace("<", "‹").replace(">", "›")


@cache
def _environment(directory: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["data"] = _data
    return env


def template_names(directory: Path = PROMPT_DIR) -> list[str]:
    """Return the names of every template in ``directory``."""
    return sorted(p.stem for p in directory.glob("*.j2"))


def template_hashes(directory: Path = PROMPT_DIR) -> dict[str, str]:
    """Return the sha256 of every template file, for the run manifest."""
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.glob("*.j2"))
    }


def render(name: str, directory: Path = PROMPT_DIR, **variables: object) -> list[dict]:
    """Render template ``name`` into chat messages.

    Args:
        name: Template file name without the ``.j2`` suffix.
        directory: Folder holding the templates.
        **variables: Values for the template; a missing one raises TemplateError.

    Returns:
        A system message (when the template has one) and a user message.
    """
    try:
        template = _environment(directory).get_template(f"{name}.j2")
        text = template.render(**variables)
    except jinja2.TemplateNotFound as err:
        raise TemplateError(
            f"No prompt template '{name}.j2' in {directory}; "
            f"found: {template_names(directory)}."
        ) from err
    except jinja2.UndefinedError as err:
        raise TemplateError(
            f"Template '{name}.j2' needs a variable that was not given: {err.message}. "
            f"Given: {sorted(variables)}."
        ) from err

    system, marker, user = text.partition(USER_MARKER)
    if not marker:
        return [{"role": "user", "content": text.strip()}]
    return [
        {"role": "system", "content": system.strip()},
        {"role": "user", "content": user.strip()},
    ]
