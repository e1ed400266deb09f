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


JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".jsonl.bz2", ".jsonl.xz", ".json")


def _first_line(path: Path) -> bytes:
    """The first line of the file, decompressed by its suffix as the reader does."""
    import fsspec

    if path.name.endswith(".zst"):
        with open(path, "rb") as fh:
            return next(_zstd_lines(fh, chunk=1 << 16), b"")
    with fsspec.open(str(path), "rb", compression="infer") as fh:
        return fh.readline()


def _check_parquet(f: Path) -> None:
    """Schema has `text`; every row group's column chunks lie inside the file (cheap: metadata only)."""
    import pyarrow.parquet as pq

    try:
        meta = pq.ParquetFile(f).metadata
    except Exception as err:  # pyarrow raises several error types on corrupt files
        raise UserError(f"{f}: not a readable parquet file ({str(err).splitlines()[0]})") from None
    names = meta.schema.to_arrow_schema().names
    if "text" not in names:
        raise UserError(f"{f}: no 'text' column (columns: {', '.join(names)})")
    size = f.stat().st_size
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        for c in range(rg.num_columns):
            col = rg.column(c)
            start = col.dictionary_page_offset if col.has_dictionary_page and col.dictionary_page_offset \
                else col.data_page_offset
            if start is not None and start + col.total_compressed_size > size:
                raise UserError(f"{f}: corrupt parquet file (row group {g}, column {col.path_in_schema} "
                                f"ends past the end of the file)")


def _check_jsonl(f: Path) -> None:
    from definemed.corpus.bad_files import read_errors, reason_of

    try:
        first = _first_line(f)
    except read_errors() as err:
        raise UserError(f"{f}: not readable ({reason_of(err)})") from None
    try:
        obj = json.loads(first.decode("utf-8", errors="replace")) if first.strip() else {}
    except json.JSONDecodeError:
        raise UserError(f"{f}: first line is not JSON") from None
    if first.strip() and (not isinstance(obj, dict) or "text" not in obj):
        raise UserError(f"{f}: no 'text' field in the first record")


def preflight(paths: list[str], fmt: str, on_bad_file: str = "fail") -> tuple[list[Path], list[dict]]:
    """Check local inputs exist, parse, and have a `text` column; return (the readable local files,
    the bad ones as {file, reason}). A bad file is a `UserError` unless ``on_bad_file == "skip"``;
    a missing path or a folder without input files always is."""
    suffixes = (".parquet",) if fmt == "parquet" else JSONL_SUFFIXES
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
    good, bad = [], []
    for f in files:
        try:
            _check_parquet(f) if fmt == "parquet" else _check_jsonl(f)
            good.append(f)
        except UserError as err:
            if on_bad_file != "skip":
                raise
            bad.append({"file": str(f), "reason": str(err).removeprefix(f"{f}: "), "documents_read_before_error": 0})
    if not good and files:
        raise UserError(f"no readable input files: all {len(files)} are bad (first: {bad[0]['file']}: "
                        f"{bad[0]['reason']})")
    return good, bad


class _CountEmpty:
    """datatrove readers silently drop records without text; we count them."""

    def get_document_from_dict(self, data: dict, source_file: str, id_in_file):
        document = super().get_document_from_dict(data, source_file, id_in_file)
        if document is None:
            self.stat_update("skipped_empty")
        return document


class _GuardedRead:
    """A file that breaks while being read (corrupt row group, truncated .gz) is recorded for the
    orchestrator (`bad_files`) instead of failing the worker with a traceback; with on_bad_file
    "fail" the task stops reading there, with "skip" it goes on with the next file. Files the
    preflight already found bad (``skip_files``) are not opened."""

    def __init__(self, *args, bad_files_dir: str | None = None, reader_id: int = 0, on_bad_file: str = "fail",
                 skip_files: tuple[str, ...] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.bad_files_dir, self.reader_id, self.on_bad_file = bad_files_dir, reader_id, on_bad_file
        self.skip_files = frozenset(str(Path(f).resolve()) for f in skip_files)
        self._stopped = False
        self._rank = 0

    def run(self, data=None, rank: int = 0, world_size: int = 1):
        from definemed.corpus import bad_files

        self._rank = rank
        if self.bad_files_dir:
            bad_files.reset(self.bad_files_dir, self.reader_id, rank)
        yield from super().run(data, rank, world_size)

    def _full_path(self, filepath: str) -> str:
        return str(Path(self.data_folder.resolve_paths(filepath)).resolve()) if self.skip_files else filepath

    def read_file(self, filepath: str):
        from definemed.corpus import bad_files

        if self._stopped or (self.skip_files and self._full_path(filepath) in self.skip_files):
            return
        n = 0
        try:
            for document in super().read_file(filepath):
                n += 1
                yield document
        except bad_files.read_errors() as err:
            if self.bad_files_dir is None:
                raise
            full = str(self.data_folder.resolve_paths(filepath))
            bad_files.record(self.bad_files_dir, self.reader_id, self._rank, full, bad_files.reason_of(err), n)
            self.stat_update("bad_files")
            if self.on_bad_file != "skip":
                self._stopped = True  # the orchestrator stops the run with one line naming the file


class FineWebParquetReader(_GuardedRead, _CountEmpty, ParquetReader):
    pass


class TruncatedZstd(EOFError):
    """A .zst file that ends inside a frame (a cut-off download or copy)."""


def _zstd_lines(fh, chunk: int = 1 << 20):
    """Lines of a (multi-frame) .zst stream. fsspec's zstd file cannot iterate lines, and zstandard's
    stream reader ends silently on a truncated file; a decompressobj tells whether its frame ended."""
    import zstandard

    dctx, rest, obj = zstandard.ZstdDecompressor(), b"", None
    while data := fh.read(chunk):
        while data:
            obj = obj if obj is not None and not obj.eof else dctx.decompressobj()
            rest += obj.decompress(data)
            data = obj.unused_data if obj.eof else b""
            *lines, rest = rest.split(b"\n")
            yield from (line + b"\n" for line in lines)
    if obj is not None and not obj.eof:
        raise TruncatedZstd("the file ends inside a zstd frame (truncated)")
    if rest:
        yield rest


class _RobustJsonl(_CountEmpty, JsonlReader):
    """JsonlReader that skips (and counts) lines that are not UTF-8 or not JSON instead of crashing."""

    def _lines(self, filepath: str):
        if filepath.endswith(".zst"):
            with self.data_folder.open(filepath, "rb") as f:
                yield from _zstd_lines(f)
            return
        with self.data_folder.open(filepath, "rb", compression=self.compression) as f:
            yield from f

    def read_file(self, filepath: str):
        for li, raw in enumerate(self._lines(filepath)):
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


class RobustJsonlReader(_GuardedRead, _RobustJsonl):
    pass


def make_reader(paths: list[str], fmt: str, limit: int = -1, glob: str | None = None,
                bad_files_dir: str | None = None, on_bad_file: str = "fail", skip_files: tuple[str, ...] = ()):
    """One datatrove reader over all inputs (several paths → a reader per path, chained)."""
    cls = FineWebParquetReader if fmt == "parquet" else RobustJsonlReader
    readers = []
    for i, raw in enumerate(paths):
        folder, pattern = raw, glob
        if not _is_remote(raw) and Path(raw).is_file():
            folder, pattern = str(Path(raw).parent), Path(raw).name
        kwargs = dict(limit=limit, glob_pattern=pattern or ("*.parquet" if fmt == "parquet" else None),
                      recursive=True, bad_files_dir=bad_files_dir, reader_id=i, on_bad_file=on_bad_file,
                      skip_files=skip_files)
        if fmt == "jsonl":
            kwargs["compression"] = "infer"
        readers.append(cls(folder, **kwargs))
    return readers
