"""Multiple-choice items: reading the project's and common public layouts, prompts and few-shot shots.

The prompt built here is the single source of truth for both our own scoring (`eval/mcq.py`)
and the lm-evaluation-harness export (`eval/lmeval_export.py`), so both score identical text:

    <question>
    A. <choice 0>
    B. <choice 1>
    ...
    Antwort:

and each option is the continuation " <choice text>" (``target: text``) or " <letter>".
Few-shot examples precede it as "<prompt> <answer>\\n\\n" (lm-eval's target and few-shot
delimiters), taken as the first ``k`` items of the pool that are not the item itself: the same
rule as lm-eval's ``first_n`` sampler, so the export reproduces the shots exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from definemed.data.io import iter_jsonl
from definemed.errors import UserError

LETTERS = "ABCDEFGHIJ"
TARGET_DELIMITER = " "
FEWSHOT_DELIMITER = "\n\n"

LAYOUT_HINT = ("expected 'question' + 'choices' (list) + 'answer' (index or letter) [project, MMLU] or "
               "'question' + 'options' (dict or list) + 'answer_idx'/'answer' [MedQA]")


@dataclass(frozen=True)
class MCQ:
    id: str
    question: str
    choices: tuple[str, ...]
    answer: int  # 0-based
    subject: str = "all"


def _answer_index(raw, choices: list[str], keys: list[str] | None, where: str) -> int:
    if isinstance(raw, bool):
        raise UserError(f"{where}: answer must be an index or a letter, got {raw!r}")
    if isinstance(raw, int):
        idx = raw
    elif isinstance(raw, str) and keys is not None and raw.strip() in keys:  # MedQA dict key
        idx = keys.index(raw.strip())
    elif isinstance(raw, str) and len(raw.strip()) == 1 and raw.strip().upper() in LETTERS:
        idx = LETTERS.index(raw.strip().upper())
    elif isinstance(raw, str) and raw.strip().isdigit():
        idx = int(raw.strip())
    elif isinstance(raw, str) and raw in choices:  # MedQA's 'answer' holds the option text
        idx = choices.index(raw)
    else:
        raise UserError(f"{where}: answer {raw!r} is neither an index, a letter nor one of the options")
    if not 0 <= idx < len(choices):
        raise UserError(f"{where}: answer {raw!r} out of range for {len(choices)} options")
    return idx


def parse_item(row: dict, where: str, default_id: str) -> MCQ:
    """One row of any supported layout → `MCQ`; anything else is a one-line `UserError`."""
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise UserError(f"{where}: unknown MCQ layout (keys: {', '.join(sorted(row)) or 'none'}); {LAYOUT_HINT}")
    keys = None
    if isinstance(row.get("choices"), list) and "answer" in row:
        choices = row["choices"]
        raw = row["answer"]
    elif isinstance(row.get("options"), (dict, list)) and ("answer_idx" in row or "answer" in row):
        opts = row["options"]
        if isinstance(opts, dict):
            keys = [str(k) for k in opts]
            choices = list(opts.values())
        else:
            choices = opts
        raw = row["answer_idx"] if "answer_idx" in row else row["answer"]
    else:
        raise UserError(f"{where}: unknown MCQ layout (keys: {', '.join(sorted(row))}); {LAYOUT_HINT}")
    if len(choices) < 2 or len(choices) > len(LETTERS) or not all(isinstance(c, str) and c.strip() for c in choices):
        raise UserError(f"{where}: options must be 2 to {len(LETTERS)} non-empty strings")
    if len(set(choices)) != len(choices):
        raise UserError(f"{where}: duplicate options")
    answer = _answer_index(raw, choices, keys, where)
    subject = row.get("subject") or row.get("meta_info") or "all"
    return MCQ(id=str(row.get("id", default_id)), question=question.strip(), choices=tuple(choices),
               answer=answer, subject=str(subject))


def load_items(path: str | Path) -> list[MCQ]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"MCQ data not found: {path}")
    items = [parse_item(row, f"{path}:{i}", default_id=str(i)) for i, row in enumerate(iter_jsonl(path), 1)]
    if not items:
        raise UserError(f"{path}: no items")
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        raise UserError(f"{path}: duplicate item ids")
    return items


def prompt(item: MCQ, answer_prefix: str = "Antwort:") -> str:
    lines = [item.question] + [f"{LETTERS[i]}. {c}" for i, c in enumerate(item.choices)]
    return "\n".join(lines) + "\n" + answer_prefix


def targets(item: MCQ, target: str) -> list[str]:
    """What each option's continuation says after the delimiter: its text or its letter."""
    return list(item.choices) if target == "text" else [LETTERS[i] for i in range(len(item.choices))]


def shots_for(item: MCQ, pool: list[MCQ], k: int) -> list[MCQ]:
    """The first ``k`` pool items other than ``item`` (lm-eval's ``first_n`` sampler)."""
    if k == 0:
        return []
    chosen = [p for p in pool if p.id != item.id][:k]
    if len(chosen) < k:
        raise UserError(f"{k} shots requested but the few-shot pool has only {len(chosen)} other items")
    return chosen


def context(item: MCQ, shots: list[MCQ], target: str, answer_prefix: str = "Antwort:") -> str:
    """The plain-text context: few-shot examples with their answers, then the item's prompt."""
    parts = [prompt(s, answer_prefix) + TARGET_DELIMITER + targets(s, target)[s.answer] + FEWSHOT_DELIMITER
             for s in shots]
    return "".join(parts) + prompt(item, answer_prefix)
