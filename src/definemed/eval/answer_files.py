"""Reading the answer files of `definemed eval generate` (``<run_dir>/answers/<label>.jsonl``).

One row per instruction item: {"id", "model" (label), "model_ref", "prompt", "answer",
"reference" (or null), "new_tokens", "hit_limit", "seconds", "settings"}. Only the fields the
analyses need are required, and they are type-checked (`AnswerRow`, strict: a list id or a dict
model label is refused, not coerced); a malformed file is a one-line user error naming the file,
the line and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt, StrictStr, ValidationError

from definemed.data.io import iter_jsonl
from definemed.errors import UserError

REQUIRED = ("id", "model", "prompt", "answer")


class AnswerRow(BaseModel):
    """The fields of an answer row that the judges and analyses read; others pass through."""

    model_config = ConfigDict(extra="allow", strict=True)
    id: StrictStr
    model: StrictStr
    prompt: StrictStr
    answer: StrictStr
    reference: Optional[StrictStr] = None
    new_tokens: Optional[StrictInt] = None
    hit_limit: Optional[StrictBool] = None


def _lines(path: Path):
    """(line number in the file, row): iter_jsonl skips blank lines, the message should not."""
    n = 0
    text_lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    numbers = [i for i, line in enumerate(text_lines, 1) if line.strip()]
    for row in iter_jsonl(path):
        yield numbers[n], row
        n += 1


def load_answer_file(path: str | Path) -> tuple[str, dict[str, dict]]:
    """(model label, {item id: row}) of one answer file."""
    path = Path(path)
    rows = list(_lines(path))
    if not rows:
        raise UserError(f"{path}: no answers (the file is empty)")
    by_id: dict[str, dict] = {}
    for n, row in rows:
        missing = [f for f in REQUIRED if f not in row]
        if missing:
            raise UserError(f"{path}:{n}: missing field(s) {', '.join(missing)}")
        try:
            AnswerRow.model_validate(row)
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(x) for x in first["loc"])
            raise UserError(f"{path}:{n}: field '{loc}': {first['msg']} (got {type(first['input']).__name__})") \
                from None
        if row["id"] in by_id:
            raise UserError(f"{path}:{n}: duplicate id {row['id']!r}")
        by_id[row["id"]] = row
    labels = {r["model"] for _, r in rows}
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
