"""Input files that cannot be read to the end (corrupt in the middle, truncated .gz/.zst).

The readers run in datatrove worker processes, where an exception becomes a task failure with a
long traceback in the task log. Instead the reader records the file here (one small JSON file per
bad input, under ``<run>/work/bad_files/<reader>/<rank>/``), and the orchestrator reads the
records after the phase: with ``input.on_bad_file: fail`` it stops with one line naming the file
(and marks the tasks that met it as not completed, so that a rerun after the fix reads them
again); with ``skip`` the files are counted in ``stats.json`` (``input_bad_files``) and the
dataset card. A skipped file keeps the documents read before the error (they were already passed
on); the record says how many.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import zlib
from pathlib import Path

from definemed.errors import UserError
from definemed.runs import atomic_write_json


def read_errors() -> tuple[type[BaseException], ...]:
    """What a damaged file raises while being read (not programming errors: no TypeError/KeyError)."""
    import lzma

    import pyarrow as pa

    errors: list[type[BaseException]] = [pa.ArrowException, OSError, EOFError, zlib.error, lzma.LZMAError]
    try:
        import zstandard

        errors.append(zstandard.ZstdError)
    except ImportError:
        pass
    return tuple(errors)


def reason_of(err: BaseException) -> str:
    first = (str(err).strip().splitlines() or [""])[0][:300]
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


def rank_folder(root: str | Path, reader_id: int, rank: int) -> Path:
    return Path(root) / f"{reader_id:03d}" / f"{rank:05d}"


def reset(root: str | Path, reader_id: int, rank: int) -> None:
    """A task that runs (again) starts without the records of its previous attempt."""
    shutil.rmtree(rank_folder(root, reader_id, rank), ignore_errors=True)


def record(root: str | Path, reader_id: int, rank: int, file: str, reason: str, documents_read: int) -> None:
    name = hashlib.sha1(file.encode()).hexdigest()[:16] + ".json"
    atomic_write_json(rank_folder(root, reader_id, rank) / name,
                      {"file": file, "reason": reason, "documents_read_before_error": documents_read, "rank": rank})


def collect(root: str | Path) -> list[dict]:
    """Every recorded bad file (one entry per file), sorted by name."""
    root = Path(root)
    found = {}
    for f in sorted(root.glob("*/*/*.json")) if root.exists() else []:
        rec = json.loads(f.read_text())
        found[rec["file"]] = rec
    return [found[k] for k in sorted(found)]


def fail_on(bad: list[dict], logging_dir: Path | None = None) -> None:
    """``on_bad_file: fail``: one line naming the first bad file; the tasks that met one are marked
    not completed (datatrove skips completed tasks on a rerun)."""
    if not bad:
        return
    if logging_dir is not None:
        for rank in {r["rank"] for r in bad if r.get("rank") is not None}:
            for sub in ("completions", "stats"):
                for f in (Path(logging_dir) / sub).glob(f"{rank:05d}*"):
                    f.unlink()
    more = f" (+{len(bad) - 1} more bad file(s))" if len(bad) > 1 else ""
    raise UserError(f"{bad[0]['file']}: cannot read this input file ({bad[0]['reason']}){more}; fix or remove "
                    "it, or set input.on_bad_file: skip to skip and count such files")


def summary(bad: list[dict], policy: str) -> dict:
    """The ``input_bad_files`` entry of stats.json and the card."""
    return {"policy": policy, "count": len(bad),
            "files": [{k: r[k] for k in ("file", "reason", "documents_read_before_error") if k in r} for r in bad]}
