"""The project's own sample data (data/sample): locations and validated loaders."""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from definemed.data.io import read_jsonl, read_parquet_rows
from definemed.data.schemas import DocLabel, InstructionItem, MCQItem
from definemed.errors import UserError


def sample_dir() -> Path:
    """data/sample of the source checkout (the package is installed editable from it)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "data" / "sample"
        if (candidate / "README.md").exists():
            return candidate
    raise UserError("sample data not found: run definemed from a source checkout (data/sample)")


def docs_dir() -> Path:
    return sample_dir() / "fineweb2_deu"


def labels_path() -> Path:
    return sample_dir() / "labels" / "fineweb2_deu_gold.jsonl"


def mcq_path() -> Path:
    return sample_dir() / "mcq_de" / "mcq_de.jsonl"


def instructions_path() -> Path:
    return sample_dir() / "instructions_de" / "instructions_de.jsonl"


def _validated(model, rows, path):
    out = []
    for i, row in enumerate(rows, 1):
        try:
            out.append(model.model_validate(row))
        except ValidationError as err:
            first = err.errors()[0]
            loc = ".".join(str(x) for x in first["loc"])
            raise UserError(f"{path}: record {i} ({row.get('id', '?')}): field '{loc}': {first['msg']}") from None
    return out


def load_docs() -> list[dict]:
    return read_parquet_rows(docs_dir())


def load_labels(path: Path | None = None) -> list[DocLabel]:
    path = path or labels_path()
    return _validated(DocLabel, read_jsonl(path), path)


def _nonempty(items: list, path: Path, what: str) -> list:
    if not items:  # an eval over 0 items would "succeed" with nan%
        raise UserError(f"{path}: no {what} (the file is empty)")
    return items


def load_mcq(path: Path | None = None) -> list[MCQItem]:
    path = path or mcq_path()
    return _nonempty(_validated(MCQItem, read_jsonl(path), path), path, "MCQ items")


def load_instructions(path: Path | None = None) -> list[InstructionItem]:
    path = path or instructions_path()
    return _nonempty(_validated(InstructionItem, read_jsonl(path), path), path, "instruction items")


def labelled_docs(split: str | None = None) -> list[dict]:
    """Documents joined with their gold labels (columns of both), optionally one split."""
    labels = {lab.id: lab for lab in load_labels()}
    out = []
    for doc in load_docs():
        lab = labels[doc["id"]]
        if split is None or lab.split == split:
            out.append({**doc, **lab.model_dump()})
    return out


def heldout_texts(max_docs: int, min_medical: int = 4) -> dict[str, list[str]]:
    """German test-split documents of the sample: medical (gold medical >= min_medical) and
    general (medical == 0), the held-out sets of the demo's perplexities and the merge sweep."""
    test = [d for d in labelled_docs("test") if d["lang"] == "de"]
    return {"medical": [d["text"] for d in test if d["medical"] >= min_medical][:max_docs],
            "general": [d["text"] for d in test if d["medical"] == 0][:max_docs]}
