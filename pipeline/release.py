"""A versioned release: the rows as a ``datasets`` DatasetDict split by norm.

``releases/<version>/`` holds ``data/<split>.parquet`` (what the Hub and
``load_dataset("parquet", ...)`` read), ``jsonl/<split>.jsonl``, ``arrow/`` (for
``datasets.load_from_disk``) and ``release.json``, the facts the next release's
changelog is computed from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import jsonlines

from pipeline.errors import ReleaseError
from pipeline.release_rows import (
    HUMAN_DIALOGUE_CHECKS,
    HUMAN_DIALOGUE_SCORES,
    JUDGE_AXES,
)

# Every file a release reads is local; the library must not look for a Hub copy.
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import datasets  # noqa: E402 - the offline switch is read at import
from datasets import (  # noqa: E402
    Dataset,
    DatasetDict,
    Features,
    List,
    Value,
    disable_progress_bars,
)

# Also when something imported the library before this module did.
datasets.config.HF_HUB_OFFLINE = True

log = logging.getLogger(__name__)
disable_progress_bars()  # a bar per split and format is noise in a flow's log

SPLITS = ("train", "validation", "test")
SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
SAFE_VERSION = re.compile(r"^[0-9A-Za-z][0-9A-Za-z._-]*$")
STRING = Value("string")

TURN = {
    "index": Value("int32"),
    "speaker": STRING,
    "text": STRING,
    "norm_label": STRING,
    "intent": STRING,
    "emotion": STRING,
    "arc_stage": STRING,
    "rationale": STRING,
    "label_source": STRING,
    "n_annotators": Value("int32"),
    "tie": Value("bool"),
    "llm_norm_label": STRING,
    "llm_intent": STRING,
    "llm_emotion": STRING,
    "llm_arc_stage": STRING,
}

# Explicit types: a column that is null in the first rows (arc stages outside v2r,
# human answers before the first annotated dialogue) must not be inferred as null.
FEATURES = Features(
    {
        "id": STRING,
        "seed_id": STRING,
        "culture": STRING,
        "language": STRING,
        "category": STRING,
        "type": STRING,
        "sample": Value("int32"),
        "norm": STRING,
        "scenario": STRING,
        "situation": STRING,
        "participants": List({"name": STRING, "role": STRING}),
        "turns": List(TURN),
        "judge": {axis: Value("int32") for axis in JUDGE_AXES},
        "judge_rationale": STRING,
        "human": {
            **{k: Value("float32") for k in HUMAN_DIALOGUE_SCORES},
            **{k: Value("bool") for k in HUMAN_DIALOGUE_CHECKS},
            "n_annotators": Value("int32"),
        },
        "n_human_turns": Value("int32"),
        "model": STRING,
        "run": STRING,
    }
)


def split_of(seed_id: str, ratios: dict[str, float]) -> str:
    """Return the split of a norm: a hash of its seed id placed on the ratios."""
    digest = hashlib.sha256(seed_id.encode("utf-8")).hexdigest()
    point = int(digest[:13], 16) / 16**13
    edge = 0.0
    for name in SPLITS:
        edge += ratios[name]
        if point < edge:
            return name
    return SPLITS[-1]


def check_ratios(ratios: dict[str, float]) -> dict[str, float]:
    """Return the split ratios if they are three shares that add up to 1."""
    if set(ratios) != set(SPLITS) or any(v < 0 for v in ratios.values()):
        raise ReleaseError(
            f"Split ratios must be non-negative shares for {', '.join(SPLITS)}; got "
            f"{ratios}."
        )
    if abs(sum(ratios.values()) - 1.0) > 1e-6:
        raise ReleaseError(
            f"Split ratios must add up to 1; {ratios} add up to {sum(ratios.values())}."
        )
    return ratios


def split_rows(rows: list[dict], ratios: dict[str, float]) -> dict[str, list[dict]]:
    """Sort rows into the splits by norm, so that no norm is in two splits."""
    check_ratios(ratios)
    splits: dict[str, list[dict]] = {name: [] for name in SPLITS}
    for row in rows:
        splits[split_of(row["seed_id"], ratios)].append(row)
    return splits


def to_dataset_dict(splits: dict[str, list[dict]]) -> DatasetDict:
    """Return the non-empty splits as a DatasetDict with the release features."""
    empty = [name for name, rows in splits.items() if not rows]
    if empty:
        # The Hub's configs cannot point at a split with no file, so none is written.
        log.warning("No dialogue falls in split(s) %s; they are left out", empty)
    return DatasetDict(
        {
            name: Dataset.from_list(rows, features=FEATURES)
            for name, rows in splits.items()
            if rows
        }
    )


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def rows_digest(splits: dict[str, list[dict]]) -> str:
    """Return a sha256 of the rows and their splits: equal digests, equal releases."""
    digest = hashlib.sha256()
    for name in SPLITS:
        for row in splits.get(name, []):
            digest.update(f"{name}\t{_dumps(row)}\n".encode())
    return digest.hexdigest()


def unchanged_since(out_dir: Path, digest: str) -> str | None:
    """Return the version of the latest release if its rows have this digest."""
    releases = list_releases(out_dir)
    if releases and releases[-1].get("rows_sha256") == digest:
        return releases[-1]["version"]
    return None


def save_release(data: DatasetDict, version_dir: Path) -> dict[str, dict[str, Path]]:
    """Write the splits as parquet, JSONL and arrow; return the files by split."""
    files: dict[str, dict[str, Path]] = {}
    data.save_to_disk(str(version_dir / "arrow"))
    for name, split in data.items():
        parquet = version_dir / "data" / f"{name}.parquet"
        jsonl = version_dir / "jsonl" / f"{name}.jsonl"
        parquet.parent.mkdir(parents=True, exist_ok=True)
        jsonl.parent.mkdir(parents=True, exist_ok=True)
        split.to_parquet(str(parquet))
        with jsonlines.open(jsonl, mode="w", dumps=_dumps) as writer:
            writer.write_all(split.to_list())
        files[name] = {"parquet": parquet, "jsonl": jsonl}
    log.info("Wrote %s to %s", {k: len(v) for k, v in data.items()}, version_dir)
    return files


def list_releases(out_dir: Path) -> list[dict]:
    """Return the release.json of every release under ``out_dir``, oldest first."""
    found = []
    for path in sorted(Path(out_dir).glob("*/release.json")):
        if path.parent.name.startswith("."):  # a release still being written
            continue
        found.append(json.loads(path.read_text("utf-8")))
    return sorted(found, key=lambda r: (r.get("created_at", ""), r["version"]))


def next_version(out_dir: Path) -> str:
    """Return the version after the highest semantic one under ``out_dir``."""
    versions = [
        tuple(int(x) for x in m.groups())
        for r in list_releases(out_dir)
        if (m := SEMVER.match(r["version"]))
    ]
    if not versions:
        return "0.1.0"
    major, minor, _ = max(versions)
    return f"{major}.{minor + 1}.0"


def release_dir(out_dir: Path, version: str | None) -> tuple[str, Path]:
    """Return the version to publish and its directory, which must not exist yet."""
    version = version or next_version(out_dir)
    if not SAFE_VERSION.match(version):
        raise ReleaseError(
            f"A version is letters, digits, '.', '_' and '-' (e.g. 1.2.0); got "
            f"{version!r}."
        )
    path = Path(out_dir) / version
    if path.exists():
        raise ReleaseError(
            f"Release {version} already exists at {path}; pass another --version or "
            "leave it out to take the next one."
        )
    return version, path


def write_metadata(
    version_dir: Path, version: str, rows_by_split: dict, info: dict
) -> dict:
    """Write release.json: version, time, counts and the ids the changelog compares."""
    rows = [r for split in rows_by_split.values() for r in split]
    meta = {
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "norms": sorted({r["seed_id"] for r in rows}),
        "dialogue_ids": sorted(r["id"] for r in rows),
        "annotated_dialogue_ids": sorted(
            r["id"] for r in rows if r["n_human_turns"] or r["human"] is not None
        ),
        "human_turns": sum(r["n_human_turns"] for r in rows),
        "splits": {
            name: {
                "dialogues": len(split),
                "norms": sorted({r["seed_id"] for r in split}),
            }
            for name, split in rows_by_split.items()
        },
        **info,
    }
    (version_dir / "release.json").write_text(
        json.dumps(meta, ensure_ascii=False, indent=2), "utf-8"
    )
    return meta
