"""Output writers: FineWeb2 columns + the scores that selected each document (provenance)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Iterator

from datatrove.data import Document
from datatrove.pipeline.writers import JsonlWriter, ParquetWriter

from definemed.data.schemas import FINEWEB2_COLUMNS


def output_schema():
    import pyarrow as pa

    return pa.schema([
        ("text", pa.string()), ("id", pa.string()), ("dump", pa.string()), ("url", pa.string()),
        ("date", pa.string()), ("file_path", pa.string()), ("language", pa.string()),
        ("language_score", pa.float64()), ("language_script", pa.string()),
        ("minhash_cluster_size", pa.int64()), ("top_langs", pa.string()),
        ("medical_score", pa.float64()), ("token_count", pa.int64()),
    ])


def fineweb2_adapter(writer, document) -> dict:
    meta = document.metadata
    row = {"text": document.text, "id": document.id}
    for col in FINEWEB2_COLUMNS[2:]:
        row[col] = meta.get(col)
    row["medical_score"] = meta.get("medical_score")
    row["token_count"] = meta.get("token_count")
    return row


def shard_writer(folder: str, compression: str = "zstd") -> ParquetWriter:
    return ParquetWriter(folder, output_filename="${rank}.parquet", compression=compression,
                         adapter=fineweb2_adapter, schema=output_schema(), use_content_defined_chunking=False)


def document_adapter(writer, document) -> dict:
    """datatrove's reader format (text, id, metadata) without its default adapter's
    dataclasses.asdict, which deep-copies every document (~0.3 ms per page)."""
    return {"text": document.text, "id": document.id, "metadata": document.metadata}


def intermediate_writer(folder: str) -> JsonlWriter:
    """Between phases documents travel as jsonl with all metadata, uncompressed: work files are
    temporary, and gzip cost more time than anything but tokenizing."""
    return JsonlWriter(folder, output_filename="${rank}.jsonl", compression=None, adapter=document_adapter)


def exclusion_writer(folder: str) -> JsonlWriter:
    """Dropped documents, kept for inspection. zstd: gzip's default level 9 cost ~0.15 ms per page,
    more than the filter that dropped it."""
    return JsonlWriter(folder, output_filename="${rank}.jsonl.zst", compression="zstd", adapter=document_adapter)


def read_excluded(folder: str | Path) -> Iterator[Document]:
    """The documents an `exclusion_writer` kept in `folder` (text, id, metadata), in file order."""
    import zstandard

    for f in sorted(Path(folder).glob("*.jsonl.zst")):
        with open(f, "rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as raw:
            for line in io.TextIOWrapper(raw, encoding="utf-8"):
                if line.strip():
                    d = json.loads(line)
                    yield Document(text=d["text"], id=d["id"], metadata=d.get("metadata") or {})
