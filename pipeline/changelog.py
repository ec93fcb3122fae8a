"""releases/CHANGELOG.md: what each release changed since the one before it."""

from __future__ import annotations

from pathlib import Path

HEADER = "# Changelog\n\nNewest release first. Counts are dialogues unless named.\n"


def _listed(ids: list[str], most: int = 10) -> str:
    shown = ", ".join(f"`{i}`" for i in ids[:most])
    return shown + (f" and {len(ids) - most} more" if len(ids) > most else "")


def _delta(now: int, before: int) -> str:
    return f"{now - before:+d}"


def changelog_entry(meta: dict, previous: dict | None) -> str:
    """Return the changelog entry of release ``meta`` against the one before it."""
    date = meta["created_at"][:10]
    splits = ", ".join(f"{k} {v['dialogues']}" for k, v in meta["splits"].items())
    dialogues, norms = set(meta["dialogue_ids"]), set(meta["norms"])
    annotated = set(meta["annotated_dialogue_ids"])
    lines = [f"## {meta['version']} ({date})", ""]
    if previous is None:
        lines += [
            "First release.",
            "",
            f"- Dialogues: {len(dialogues)} ({splits}).",
            f"- Norms: {len(norms)}.",
            f"- Human annotations: {meta['human_turns']} turns in {len(annotated)} "
            "dialogues.",
        ]
    else:
        before = set(previous["dialogue_ids"])
        new_norms = sorted(norms - set(previous["norms"]))
        gone_norms = sorted(set(previous["norms"]) - norms)
        newly_annotated = sorted(annotated - set(previous["annotated_dialogue_ids"]))
        lines += [
            f"Since {previous['version']}:",
            "",
            f"- Dialogues: {len(dialogues)} ({_delta(len(dialogues), len(before))}; "
            f"{len(dialogues - before)} added, {len(before - dialogues)} removed); "
            f"{splits}.",
            f"- Norms: {len(norms)} ({_delta(len(norms), len(previous['norms']))}); "
            + (f"new: {_listed(new_norms)}" if new_norms else "no new norm")
            + (f"; removed: {_listed(gone_norms)}" if gone_norms else "")
            + ".",
            f"- Human annotations: {meta['human_turns']} turns "
            f"({_delta(meta['human_turns'], previous['human_turns'])}) in "
            f"{len(annotated)} dialogues; {len(newly_annotated)} newly annotated.",
        ]
    lines += ["- Runs: " + ", ".join(f"`{r}`" for r in meta.get("runs", [])), ""]
    return "\n".join(lines)


def add_entry(path: Path, entry: str) -> Path:
    """Put ``entry`` at the top of the changelog, creating the file if need be."""
    old = path.read_text("utf-8") if path.exists() else HEADER
    rest = old[len(HEADER) :] if old.startswith(HEADER) else "\n" + old
    path.write_text(f"{HEADER}\n{entry}{rest}", "utf-8")
    return path
