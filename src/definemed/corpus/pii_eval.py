"""How well the PII scrubber does on the sample's planted personal data.

`data/sample/labels/pii_planted.jsonl` lists, per document id, the fake personal data planted in
it (`pii`: type + value) and numeric expressions that must survive (`non_pii_numbers`: dosages,
ICD codes, lab ranges, service numbers). Joined by `id` with the sample parquet:

- recall per type: a planted value counts as found when every occurrence of it in the document
  is covered, letter for letter and digit for digit, by spans of its own type;
- non-PII change rate: the share of protected expressions of which some occurrence overlaps
  any redacted span.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from definemed.corpus.pii import PII_TYPES, Span, find_pii
from definemed.data.io import read_jsonl, read_parquet_rows


def _occurrences(text: str, value: str) -> list[tuple[int, int]]:
    out, i = [], text.find(value)
    while i != -1:
        out.append((i, i + len(value)))
        i = text.find(value, i + 1)
    return out


def _covered(text: str, start: int, end: int, spans: list[Span], kind: str) -> bool:
    mine = [s for s in spans if s.type == kind]
    return all(any(s.start <= i < s.end for s in mine) for i in range(start, end) if text[i].isalnum())


def evaluate_planted(labels: Path | None = None, docs: Path | None = None, **scrub_args) -> dict:
    """Per-type recall, the non-PII change rate and the misses, for the sample (or given files)."""
    from definemed.data import sample

    labels = Path(labels or sample.sample_dir() / "labels" / "pii_planted.jsonl")
    text_of = {r["id"]: r["text"] for r in read_parquet_rows(docs or sample.docs_dir(), columns=["id", "text"])}
    found, total = defaultdict(int), defaultdict(int)
    misses, changed, protected, absent = [], [], 0, []
    for row in read_jsonl(labels):
        text = text_of.get(row["id"])
        if text is None:
            absent.append(row["id"])
            continue
        spans = find_pii(text, **scrub_args)
        for item in row["pii"]:
            occ = _occurrences(text, item["value"])
            if not occ:
                absent.append(f"{row['key']}: {item['value']}")
                continue
            total[item["type"]] += 1
            if all(_covered(text, a, b, spans, item["type"]) for a, b in occ):
                found[item["type"]] += 1
            else:
                misses.append({"key": row["key"], **item})
        for expr in row["non_pii_numbers"]:
            occ = _occurrences(text, expr)
            if not occ:
                absent.append(f"{row['key']}: {expr}")
                continue
            protected += 1
            if any(s.start < b and a < s.end for a, b in occ for s in spans):
                changed.append({"key": row["key"], "value": expr})
    recall = {t: round(found[t] / total[t], 4) for t in PII_TYPES if total[t]}
    return {"recall": recall, "planted": dict(total), "found": dict(found), "misses": misses,
            "non_pii_total": protected, "non_pii_changed": len(changed),
            "non_pii_change_rate": round(len(changed) / protected, 4) if protected else 0.0,
            "changed": changed, "not_in_text": absent}
