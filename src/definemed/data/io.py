"""JSONL and parquet IO with one-line errors for bad files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from definemed.errors import UserError
from definemed.runs import atomic_write_text


def iter_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        raise UserError(f"file not found: {path}")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise UserError(f"{path}:{lineno}: invalid JSON ({err.msg})") from None
            if not isinstance(obj, dict):
                raise UserError(f"{path}:{lineno}: expected a JSON object per line")
            yield obj


def read_jsonl_tolerant(text: str) -> list[dict[str, Any]]:
    """JSON objects of a JSONL text, skipping lines that do not parse — a write cut short by a
    crash leaves a torn last line in files that are appended to (answers, metrics)."""
    rows = []
    for line in text.splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    return list(iter_jsonl(path))


def write_jsonl(path: str | Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def read_parquet_rows(path: str | Path, columns: list[str] | None = None) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    path = Path(path)
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    if not files or not all(f.exists() for f in files):
        raise UserError(f"no parquet files at {path}")
    rows: list[dict[str, Any]] = []
    for f in files:
        try:
            rows.extend(pq.read_table(f, columns=columns).to_pylist())
        except Exception as err:  # pyarrow raises several types for corrupt files
            raise UserError(f"{f}: cannot read parquet ({str(err).splitlines()[0]})") from None
    return rows
