"""A persistent cache of model replies, so that an identical re-run makes no calls."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path


def cache_key(model: str, messages: list[dict], params: dict, sample: object) -> str:
    """Return the key of one request: model, messages, parameters and sample index."""
    payload = json.dumps(
        {"model": model, "messages": messages, "params": params, "sample": sample},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


class ResponseCache:
    """Replies that parsed and validated, kept in SQLite and shared by threads."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # Each commit reaches the OS at once (a kill -9 loses nothing) without an
        # fsync per reply, which would cap the call rate.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS replies ("
            " key TEXT PRIMARY KEY, stage TEXT, content TEXT,"
            " prompt_tokens INTEGER, completion_tokens INTEGER)"
        )
        self._db.commit()

    def get(self, key: str) -> tuple[str, int, int] | None:
        """Return (content, prompt tokens, completion tokens) for ``key``, or None."""
        with self._lock:
            row = self._db.execute(
                "SELECT content, prompt_tokens, completion_tokens FROM replies"
                " WHERE key = ?",
                (key,),
            ).fetchone()
        return tuple(row) if row else None

    def put(self, key: str, stage: str, content: str, usage: tuple[int, int]) -> None:
        """Store a reply; it is on disk when this returns."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO replies VALUES (?, ?, ?, ?, ?)",
                (key, stage, content, *usage),
            )
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM replies").fetchone()[0]

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()
