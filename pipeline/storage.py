"""The run directory: JSONL files appended one record at a time, and the manifest.

Every record is flushed and synced as it is written, so a crash loses at most the
record being written; a torn last line is cut off when the run is opened again.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

import jsonlines
from pydantic import BaseModel, ValidationError

from pipeline.errors import RowProblem

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

FILES = {
    "seeds": "seeds.jsonl",
    "scenarios": "scenarios.jsonl",
    "refinements": "refinements.jsonl",
    "dialogues": "dialogues.jsonl",
    "rejected": "rejected.jsonl",
}


def _dumps(obj: object) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def repair_tail(path: Path) -> int:
    """Cut a torn last line off a JSONL file; return the number of bytes removed."""
    if not path.exists() or path.stat().st_size == 0:
        return 0
    data = path.read_bytes()
    if data.endswith(b"\n"):
        return 0
    keep = data.rfind(b"\n") + 1
    with path.open("r+b") as f:
        f.truncate(keep)
    log.warning("Cut a torn last line (%d bytes) off %s", len(data) - keep, path)
    return len(data) - keep


def read_jsonl(path: Path) -> Iterator[dict]:
    """Yield the objects of a JSONL file; nothing when it does not exist."""
    if not path.exists():
        return
    with jsonlines.open(path) as reader:
        yield from reader.iter(skip_empty=True)


def read_records(path: Path, model: type[M]) -> tuple[list[M], list[RowProblem]]:
    """Read a JSON Lines file as ``model`` records; also return each bad field."""
    records: list[M] = []
    problems: list[RowProblem] = []
    with jsonlines.open(path) as reader:
        for line, row in enumerate(reader.iter(skip_empty=True), start=1):
            try:
                records.append(model.model_validate(row))
            except ValidationError as err:
                for e in err.errors():
                    field = ".".join(str(p) for p in e["loc"]) or "(row)"
                    problems.append(RowProblem(str(path), line, field, e["msg"]))
    return records, problems


def write_jsonl(records: Iterable[BaseModel], path: Path) -> int:
    """Write records to a JSON Lines file at once, keeping non-ASCII text as it is.

    The file is written beside its target and renamed into place, so a reader never
    sees half of it; missing folders are created.

    Returns:
        The number of records written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial_path = path.with_name(path.name + ".partial")

    count = 0
    with jsonlines.open(partial_path, mode="w", dumps=_dumps) as writer:
        for record in records:
            writer.write(record.model_dump(mode="json"))
            count += 1
    partial_path.replace(path)
    return count


class RunStore:
    """The files of one run, safe to append to from several threads."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        for name in FILES.values():
            # Every file exists from the start: an empty dialogues.jsonl says
            # "nothing accepted yet", a missing one would look like a broken run.
            (self.dir / name).touch()
            repair_tail(self.dir / name)
        self._ids = {
            kind: {self._key(kind, row) for row in read_jsonl(self.path(kind))}
            for kind in FILES
        }

    @staticmethod
    def _key(kind: str, row: dict) -> str:
        return str(row.get("item_id") or row.get("id"))

    def path(self, kind: str) -> Path:
        """Return the path of one of the run's files ("dialogues", "rejected", ...)."""
        return self.dir / FILES[kind]

    def has(self, kind: str, key: str) -> bool:
        """Tell whether a record with this id is already in the file."""
        with self._lock:
            return key in self._ids[kind]

    def done_items(self) -> set[str]:
        """Return the ids of items that are finished: accepted, rejected or failed."""
        with self._lock:
            return self._ids["dialogues"] | self._ids["rejected"]

    def append(self, kind: str, record: BaseModel) -> bool:
        """Append a record unless one with its id is there; return whether it was."""
        row = record.model_dump(mode="json")
        key = self._key(kind, row)
        with self._lock:
            if key in self._ids[kind]:
                return False
            with self.path(kind).open("a", encoding="utf-8") as fp:
                jsonlines.Writer(fp, dumps=_dumps).write(row)
                fp.flush()
                os.fsync(fp.fileno())
            self._ids[kind].add(key)
        return True

    def write_all(self, kind: str, records: list[BaseModel]) -> None:
        """Replace a file with ``records`` (used for the run's seed list)."""
        tmp = self.path(kind).with_suffix(".tmp")
        with jsonlines.open(tmp, mode="w", dumps=_dumps) as writer:
            writer.write_all(r.model_dump(mode="json") for r in records)
        tmp.replace(self.path(kind))
        with self._lock:
            self._ids[kind] = {self._key(kind, r.model_dump()) for r in records}

    def drop(self, kind: str, unwanted: Callable[[dict], bool]) -> int:
        """Rewrite a file without the rows ``unwanted`` picks; return how many went.

        Rows are streamed through, never held all at once.
        """
        with self._lock:
            dropped, kept = 0, set()
            tmp = self.path(kind).with_suffix(".tmp")
            with jsonlines.open(tmp, mode="w", dumps=_dumps) as writer:
                for row in read_jsonl(self.path(kind)):
                    if unwanted(row):
                        dropped += 1
                    else:
                        writer.write(row)
                        kept.add(self._key(kind, row))
            if dropped:
                tmp.replace(self.path(kind))
                self._ids[kind] = kept
            else:
                tmp.unlink()
        return dropped

    def count(self, kind: str) -> int:
        """Return the number of records in a file."""
        with self._lock:
            return len(self._ids[kind])

    def write_manifest(self, manifest: dict) -> Path:
        """Write manifest.json atomically and return its path."""
        path = self.dir / "manifest.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2), "utf-8")
        tmp.replace(path)
        return path
