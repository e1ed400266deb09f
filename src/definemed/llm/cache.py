"""On-disk cache of LLM results, keyed by the backend's identity and every setting that can change
the answer (`definemed.llm.fingerprint.cache_identity`) plus the input hash.

SQLite: one file, atomic commits, safe for several processes; a rerun with the same model and
settings costs nothing, and changing any of them misses. Only results with status "ok" are
stored: a failure (HTTP error, missing log-probs, unparseable output) may well succeed on the
next run, so it is asked again rather than remembered.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any, Callable


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ResultCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60)
        self._db.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        self._db.commit()

    @staticmethod
    def key(*parts: str) -> str:
        return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for i in range(0, len(keys), 500):
            chunk = keys[i:i + 500]
            q = f"SELECT key, value FROM results WHERE key IN ({','.join('?' * len(chunk))})"
            out.update({k: json.loads(v) for k, v in self._db.execute(q, chunk)})
        return out

    def put_many(self, items: dict[str, Any]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO results (key, value) VALUES (?, ?)",
                             [(k, json.dumps(v, ensure_ascii=False)) for k, v in items.items()])
        self._db.commit()

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def close(self) -> None:
        self._db.close()


def is_ok(result: dict) -> bool:
    return result.get("status") == "ok"


def cached_map(cache: "ResultCache | None", keys: list[str], items: list, compute: Callable[[list], list],
               chunk: int = 16, progress: Callable[[int], None] | None = None,
               stats: Counter | None = None, cacheable: Callable[[Any], bool] = is_ok) -> list:
    """``compute`` over ``items`` in chunks, skipping those whose key is cached; each chunk's
    results are saved as they come (a crash loses at most one chunk), except those ``cacheable``
    rejects (by default every result whose status is not "ok"). Counts hits in
    ``stats["cached"]``. Used by the corpus annotator and the pairwise judge."""
    results: list = [None] * len(items)
    if cache is not None:
        cached = cache.get_many(keys)
        results = [cached.get(k) for k in keys]
    if stats is not None:
        stats["cached"] += sum(r is not None for r in results)
    todo = [i for i, r in enumerate(results) if r is None]
    if progress:
        progress(len(items) - len(todo))
    for s in range(0, len(todo), chunk):
        idx = todo[s:s + chunk]
        fresh = compute([items[i] for i in idx])
        if cache is not None:
            cache.put_many({keys[i]: r for i, r in zip(idx, fresh) if cacheable(r)})
        for i, r in zip(idx, fresh):
            results[i] = r
        if progress:
            progress(len(idx))
    return results
