"""Build data/sample from the hand-written sources in data/sample/src.

    python -m definemed.data.build_sample

The sources hold the text and the gold labels; this script adds what a FineWeb2 row carries
(stable ids, crawl dump, date, WARC path, language score, MinHash cluster size, top_langs),
writes a few syndicated near-duplicates, assigns a fixed stratified train/validation/test
split (near-duplicates stay in the split of their original, so no leakage), and writes:

    fineweb2_deu/000_0000{0..3}.parquet   FineWeb2 columns exactly, in 4 files (tasks shard by file)
    labels/fineweb2_deu_gold.jsonl        id, key, medical, edu, split, kind, lang, near_duplicate_of
    labels/pii_planted.jsonl              planted personal data and protected numbers per document

Everything is derived from hashes of the document keys: rerunning gives identical files.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from pathlib import Path

from definemed.data.io import read_jsonl, write_jsonl
from definemed.data.schemas import FINEWEB2_COLUMNS

SPLITS = (("train", 0.70), ("validation", 0.15), ("test", 0.15))
DUMPS = ("CC-MAIN-2023-06", "CC-MAIN-2023-23", "CC-MAIN-2023-40", "CC-MAIN-2023-50",
         "CC-MAIN-2024-10", "CC-MAIN-2024-18", "CC-MAIN-2024-26", "CC-MAIN-2024-33")
NEAR_DUP_COUNT = 12
PARQUET_FILES = 4
ID_NAMESPACE = uuid.UUID("5b0f6f1e-7a4c-4d8e-9c43-8f4a2b9e6d11")


def _h(*parts: str) -> int:
    return int(hashlib.sha256("|".join(parts).encode()).hexdigest(), 16)


def _unit(*parts: str) -> float:
    return (_h(*parts) % 10_000_000) / 10_000_000


def _crawl_meta(key: str, lang: str) -> dict:
    dump = DUMPS[_h(key, "dump") % len(DUMPS)]
    year = int(dump.split("-")[2])
    month = 1 + _h(key, "month") % 12
    day = 1 + _h(key, "day") % 28
    hh, mm, ss = _h(key, "h") % 24, _h(key, "m") % 60, _h(key, "s") % 60
    seg = 1_700_000_000_000 + _h(key, "seg") % 99_999_999
    part = _h(key, "part") % 900
    # GlotLID-style confidence: German pages high, mixed pages middling, misrouted English low.
    lo, hi = {"de": (0.86, 1.0), "mixed": (0.52, 0.80), "en": (0.25, 0.50)}[lang]
    score = round(lo + (hi - lo) * _unit(key, "score"), 4)
    top = {"deu_Latn_score": score}
    if lang != "de":
        top["eng_Latn_score"] = round(1 - score - 0.01, 4)
    return {
        "dump": dump,
        "date": f"{year}-{month:02d}-{day:02d}T{hh:02d}:{mm:02d}:{ss:02d}Z",
        "file_path": (f"s3://commoncrawl/crawl-data/{dump}/segments/{seg // 1000}.{seg % 1000}/warc/"
                      f"{dump}-{year}{month:02d}{day:02d}{hh:02d}0000-{part:05d}.warc.gz"),
        "language": "deu",
        "language_score": score,
        "language_script": "Latn",
        "top_langs": json.dumps(top),
    }


def _syndicate(doc: dict, n: int) -> dict:
    """A realistic near-duplicate: the same article republished on another site."""
    host = doc["url"].split("/")[2]
    portal = ["gesundheitsportal-regional.de", "news-aggregator-24.de", "wissen-heute-online.de",
              "ratgeber-sammlung.at"][n % 4]
    lines = doc["text"].split("\n")
    if len(lines) > 4:  # republishers often drop the last line (author box, date, link)
        lines = lines[:-1]
    text = ("Startseite › Ratgeber › Artikel\n" + "\n".join(lines)
            + f"\n\nDieser Beitrag erschien zuerst auf {host}. © {portal}")
    key = f"{doc['key']}-dup"
    return {**doc, "key": key, "text": text,
            "url": f"https://www.{portal}/artikel/{_h(key) % 100000}", "near_duplicate_of": doc["key"],
            "notes": f"near-duplicate (syndicated copy) of {doc['key']}"}


def _assign_splits(docs: list[dict]) -> dict[str, str]:
    """Stratified by medical-label bucket; near-duplicate clusters never straddle splits."""
    bucket = lambda m: "low" if m <= 1 else ("mid" if m == 2 else ("med3" if m == 3 else "high"))
    strata: dict[str, list[dict]] = defaultdict(list)
    for d in docs:
        if d.get("near_duplicate_of") is None:
            strata[f"{bucket(d['medical'])}/{d['lang']}"].append(d)
    split_of: dict[str, str] = {}
    for members in strata.values():
        members.sort(key=lambda d: _h(d["key"], "split"))
        n = len(members)
        cut1 = round(n * SPLITS[0][1])
        cut2 = cut1 + round(n * SPLITS[1][1])
        for i, d in enumerate(members):
            split_of[d["key"]] = "train" if i < cut1 else ("validation" if i < cut2 else "test")
    for d in docs:
        if d.get("near_duplicate_of") is not None:
            split_of[d["key"]] = split_of[d["near_duplicate_of"]]
    return split_of


def build(root: Path) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sources = sorted((root / "src").glob("docs_*.jsonl"))
    docs = [dict(r, near_duplicate_of=None) for f in sources for r in read_jsonl(f)]
    docs.sort(key=lambda d: d["key"])
    # Near-duplicates of a deterministic choice of German documents of several kinds.
    german = [d for d in docs if d["lang"] == "de" and d["kind"] not in ("junk", "injection") and len(d["text"].split()) > 250]
    chosen = sorted(german, key=lambda d: _h(d["key"], "dup"))[:NEAR_DUP_COUNT]
    docs += [_syndicate(d, i) for i, d in enumerate(chosen)]
    docs.sort(key=lambda d: _h(d["key"], "order"))  # crawl order: kinds mixed across files

    ids = {d["key"]: f"<urn:uuid:{uuid.uuid5(ID_NAMESPACE, d['key'])}>" for d in docs}
    cluster = defaultdict(int)
    for d in docs:
        cluster[d.get("near_duplicate_of") or d["key"]] += 1
    split_of = _assign_splits(docs)

    rows, labels, pii = [], [], []
    for d in docs:
        origin = d.get("near_duplicate_of") or d["key"]
        rows.append({"text": d["text"], "id": ids[d["key"]], "url": d["url"], **_crawl_meta(d["key"], d["lang"]),
                     "minhash_cluster_size": cluster[origin]})
        labels.append({"id": ids[d["key"]], "key": d["key"], "medical": d["medical"], "edu": d["edu"],
                       "split": split_of[d["key"]], "kind": d["kind"], "lang": d["lang"],
                       "near_duplicate_of": ids[d["near_duplicate_of"]] if d.get("near_duplicate_of") else None,
                       "notes": d.get("notes", "")})
        if d.get("pii") or d.get("non_pii_numbers"):
            pii.append({"id": ids[d["key"]], "key": d["key"], "pii": d.get("pii", []),
                        "non_pii_numbers": d.get("non_pii_numbers", [])})

    table = pa.Table.from_pylist([{c: r[c] for c in FINEWEB2_COLUMNS} for r in rows], schema=pa.schema([
        ("text", pa.string()), ("id", pa.string()), ("dump", pa.string()), ("url", pa.string()),
        ("date", pa.string()), ("file_path", pa.string()), ("language", pa.string()),
        ("language_score", pa.float64()), ("language_script", pa.string()),
        ("minhash_cluster_size", pa.int64()), ("top_langs", pa.string())]))
    out_dir = root / "fineweb2_deu"
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.parquet"):
        old.unlink()
    per_file = -(-table.num_rows // PARQUET_FILES)
    for i in range(PARQUET_FILES):
        pq.write_table(table.slice(i * per_file, per_file), out_dir / f"000_{i:05d}.parquet", compression="zstd")
    write_jsonl(root / "labels" / "fineweb2_deu_gold.jsonl", labels)
    write_jsonl(root / "labels" / "pii_planted.jsonl", pii)
    _write_counts(root, labels, rows)
    return {"documents": len(rows), "words": sum(len(r["text"].split()) for r in rows),
            "near_duplicates": len(chosen), "with_pii": len(pii)}


def _table(title: str, counter) -> str:
    lines = [f"| {title} | count |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))]
    return "\n".join(lines)


def _write_counts(root: Path, labels: list[dict], rows: list[dict]) -> None:
    """Regenerate the counts section of the data card, so it can never drift from the data."""
    from collections import Counter

    from definemed.runs import atomic_write_text

    card_path = root / "README.md"
    if not card_path.exists():
        return
    mcq = read_jsonl(root / "mcq_de" / "mcq_de.jsonl") if (root / "mcq_de" / "mcq_de.jsonl").exists() else []
    inst_path = root / "instructions_de" / "instructions_de.jsonl"
    inst = read_jsonl(inst_path) if inst_path.exists() else []
    words = sum(len(r["text"].split()) for r in rows)
    medical = sum(lab["medical"] >= 3 for lab in labels)
    parts = [
        f"**{len(labels)} documents**, {words:,} words: {medical} medical (medical ≥ 3), "
        f"{len(labels) - medical} other; {sum(bool(lab['near_duplicate_of']) for lab in labels)} near-duplicates.",
        _table("split", Counter(lab["split"] for lab in labels)),
        _table("medical label", Counter(lab["medical"] for lab in labels)),
        _table("edu label", Counter(lab["edu"] for lab in labels)),
        _table("language", Counter(lab["lang"] for lab in labels)),
        _table("kind", Counter(lab["kind"] for lab in labels)),
        f"**{len(mcq)} questions** (MCQ), "
        f"{sum(len(q['choices']) == 5 for q in mcq)} with 5 options, the rest with 4.",
        _table("MCQ subject", Counter(q["subject"] for q in mcq)),
        f"**{len(inst)} instructions**, {sum(bool(i['constraints']) for i in inst)} with verifiable constraints, "
        f"{sum(i['reference'] is not None for i in inst)} with a reference answer, "
        f"{sum(i['must_refer_to_professional'] for i in inst)} that must refer the user to a professional.",
        _table("instruction category", Counter(i["category"] for i in inst)),
    ]
    card = card_path.read_text(encoding="utf-8")
    start, end = "<!-- counts:start -->", "<!-- counts:end -->"
    head, rest = card.split(start, 1)
    tail = rest.split(end, 1)[1]
    atomic_write_text(card_path, head + start + "\n" + "\n\n".join(parts) + "\n" + end + tail)


if __name__ == "__main__":
    from definemed.data.sample import sample_dir

    print(json.dumps(build(sample_dir()), indent=2))
