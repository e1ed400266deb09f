"""Reading the answer files of `definemed eval generate` (``<run_dir>/answers/<label>.jsonl``).

One row per instruction item: {"id", "model" (label), "model_ref", "prompt", "answer",
"reference" (or null), "new_tokens", "hit_limit", "seconds", "settings"}. Only the fields the
analyses need are required; a malformed file is a one-line user error.
"""

from __future__ import annotations

from pathlib import Path

from definemed.data.io import read_jsonl
from definemed.errors import UserError

REQUIRED = ("id", "model", "prompt", "answer")


def load_answer_file(path: str | Path) -> tuple[str, dict[str, dict]]:
    """(model label, {item id: row}) of one answer file."""
    path = Path(path)
    rows = read_jsonl(path)
    if not rows:
        raise UserError(f"{path}: no answers")
    by_id: dict[str, dict] = {}
    for n, row in enumerate(rows, 1):
        missing = [f for f in REQUIRED if f not in row]
        if missing:
            raise UserError(f"{path}:{n}: missing field(s) {', '.join(missing)}")
        if not isinstance(row["answer"], str):
            raise UserError(f"{path}:{n}: field 'answer' must be a string")
        if row["id"] in by_id:
            raise UserError(f"{path}:{n}: duplicate id {row['id']!r}")
        by_id[row["id"]] = row
    labels = {r["model"] for r in rows}
    if len(labels) != 1:
        raise UserError(f"{path}: answers of several models in one file ({', '.join(sorted(map(str, labels)))})")
    return str(labels.pop()), by_id


def load_answer_files(paths: list[str | Path]) -> dict[str, dict[str, dict]]:
    """{label: {item id: row}} for several files; labels must be distinct."""
    out: dict[str, dict[str, dict]] = {}
    for p in paths:
        label, rows = load_answer_file(p)
        if label in out:
            raise UserError(f"{p}: model label {label!r} appears in two answer files")
        out[label] = rows
    return out
