"""Readers for FineWeb2 parquet/jsonl (local, s3:// or hf://datasets/... paths), with a preflight
that turns missing or corrupt inputs into one-line errors before any work starts.

FineWeb2 rows carry `text`, `id` and crawl metadata; everything but text/id lands in
``doc.metadata`` (datatrove's convention) and is written back out with the kept documents.
"""

from __future__ import annotations

import json
from pathlib import Path

from datatrove.pipeline.readers import JsonlReader, ParquetReader

from definemed.errors import UserError


def _is_remote(path: str) -> bool:
    return "://" in path


def _local_files(path: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(suffixes))


def preflight(paths: list[str], fmt: str) -> list[Path]:
    """Check local inputs exist, parse, and have a `text` column; return the local files."""
    import pyarrow.parquet as pq

    suffixes = (".parquet",) if fmt == "parquet" else (".jsonl", ".jsonl.gz", ".json")
    files: list[Path] = []
    for raw in paths:
        if _is_remote(raw):
            continue  # remote folders are listed by the reader itself (needs network)
        path = Path(raw)
        if not path.exists():
            raise UserError(f"input not found: {path}")
        found = _local_files(path, suffixes)
        if not found:
            raise UserError(f"no {fmt} files in {path}")
        files += found
    for f in files:
        if fmt == "parquet":
            try:
                names = pq.read_schema(f).names
            except Exception as err:  # pyarrow raises several error types on corrupt files
                raise UserError(f"{f}: not a readable parquet file ({str(err).splitlines()[0]})") from None
            if "text" not in names:
                raise UserError(f"{f}: no 'text' column (columns: {', '.join(names)})")
        else:
            with open(f, "rb") as fh:
                first = fh.readline()
            try:
                obj = json.loads(first.decode("utf-8", errors="replace")) if first.strip() else {}
            except json.JSONDecodeError:
                raise UserError(f"{f}: first line is not JSON") from None
            if first.strip() and "text" not in obj:
                raise UserError(f"{f}: no 'text' field in the first record")
    return files


class _CountEmpty:
    """datatrove readers silently drop records without text; we count them."""

    def get_document_from_dict(self, data: dict, source_file: str, id_in_file):
        document = super().get_document_from_dict(data, source_file, id_in_file)
        if document is None:
            self.stat_update("skipped_empty")
        return document


class FineWebParquetReader(_CountEmpty, ParquetReader):
    pass


class RobustJsonlReader(_CountEmpty, JsonlReader):
    """JsonlReader that skips (and counts) lines that are not UTF-8 or not JSON instead of crashing."""

    def read_file(self, filepath: str):
        with self.data_folder.open(filepath, "rb", compression=self.compression) as f:
            for li, raw in enumerate(f):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    self.stat_update("skipped_invalid_utf8")
                    continue
                if not line.strip():
                    continue
                try:
                    data = json.loads(line)
                except json.JSONDecodeError:
                    self.stat_update("skipped_invalid_json")
                    continue
                if not isinstance(data, dict) or not isinstance(data.get(self.text_key), str):
                    self.stat_update("skipped_no_text")
                    continue
                with self.track_time():
                    document = self.get_document_from_dict(data, filepath, li)
                if document:
                    yield document


def make_reader(paths: list[str], fmt: str, limit: int = -1, glob: str | None = None):
    """One datatrove reader over all inputs (several paths → a reader per path, chained)."""
    cls = FineWebParquetReader if fmt == "parquet" else RobustJsonlReader
    readers = []
    for raw in paths:
        folder, pattern = raw, glob
        if not _is_remote(raw) and Path(raw).is_file():
            folder, pattern = str(Path(raw).parent), Path(raw).name
        kwargs = dict(limit=limit, glob_pattern=pattern or ("*.parquet" if fmt == "parquet" else None),
                      recursive=True)
        if fmt == "jsonl":
            kwargs["compression"] = "infer"
        readers.append(cls(folder, **kwargs))
    return readers
