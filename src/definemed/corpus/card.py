"""The dataset card of a finished corpus run: `README.md` in Hugging Face dataset-card style.

Written from the run directory alone (config.yaml, manifest.json, stats.json), so it can be
regenerated at any time (`write_dataset_card(run_dir)`), and it states what a user of the data
must know: where the text comes from and under which terms, what every filter removed, what
personal data was redacted and what was kept, which sites opted out, which benchmarks were
checked for contamination, and how documents were scored. Sections whose step did not run
(older runs, compliance disabled) say so instead of inventing numbers.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from definemed.corpus.compliance import collect_compliance_stats
from definemed.corpus.pii import KEEP_NUMBERS, PLACEHOLDERS
from definemed.errors import UserError
from definemed.runs import atomic_write_text, read_json

FINEWEB2_TERMS = ("FineWeb2 (`HuggingFaceFW/fineweb-2`) is released under the **Open Data Commons Attribution "
                  "License (ODC-By) 1.0** and is subject to the **Common Crawl terms of use**; the text itself "
                  "remains the property of the original websites.")
_SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
          (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))


def size_category(n: int) -> str:
    return next((label for limit, label in _SIZES if n < limit), "n>1B")


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _fmt(x) -> str:
    return "–" if x is None else (f"{x:.3f}" if isinstance(x, float) else f"{x:,}" if isinstance(x, int) else str(x))


def _sources(cfg: dict, manifest: dict) -> str:
    rows = [[f"`{v['path']}`", f"`{(v.get('sha256') or '')[:12]}`"] for v in manifest.get("inputs", {}).values()]
    paths = cfg.get("input", {}).get("paths", [])
    out = [f"Input: {', '.join(f'`{p}`' for p in paths)} ({cfg.get('input', {}).get('format', 'parquet')}).", "",
           FINEWEB2_TERMS]
    if any("data/sample" in str(p) for p in paths):
        out += ["", "This run used definemed's bundled sample (`data/sample`): FineWeb2-format pages written for "
                    "the project, CC BY 4.0, with invented sites and fake personal data."]
    if rows:
        out += ["", _table(["input file", "sha256"], rows)]
    return "\n".join(out)


def _filters(stats: dict) -> str:
    points = _table(["point", "documents", "words", "tokens"],
                    [[k, _fmt(v.get("documents")), _fmt(v.get("words")), _fmt(v.get("tokens"))]
                     for k, v in stats.get("points", {}).items()])
    steps = _table(["phase", "step", "in", "out", "dropped by reason"],
                   [[s.get("phase", ""), s.get("step", ""), _fmt(s.get("in")), _fmt(s.get("out")),
                     ", ".join(f"{k}: {v}" for k, v in s.get("reasons", {}).items()) or "–"]
                    for s in stats.get("steps", [])])
    skipped = stats.get("skipped_by_reader") or {}
    tail = f"\n\nSkipped by the reader: {', '.join(f'{k}: {v}' for k, v in skipped.items())}." if skipped else ""
    bad = stats.get("input_bad_files") or {}
    if bad.get("count"):
        tail += f"\n\nUnreadable input files skipped (`input.on_bad_file: skip`): {bad['count']}.\n\n" + _table(
            ["file", "reason", "documents read before the error"],
            [[f"`{b['file']}`", b["reason"].replace("|", "\\|"), _fmt(b.get("documents_read_before_error"))]
             for b in bad["files"]])
    return f"{points}\n\nEvery filter, with the documents it dropped (dropped documents are kept with their " \
           f"reason under `work/excluded/`):\n\n{steps}{tail}"


def _heldout(cfg: dict, stats: dict) -> str:
    i = cfg.get("input", {})
    if not i.get("exclude_ids") and not i.get("exclude_split"):
        return ("No held-out exclusion was configured (`input.exclude_ids` / `input.exclude_split`): evaluation "
                "documents among the inputs are in the shards.")
    n = stats.get("heldout_excluded") or {}
    parts = []
    if i.get("exclude_ids"):
        parts.append(f"{n.get('id', 0)} listed in `{i['exclude_ids']}`")
    if i.get("exclude_split"):
        parts.append(f"{n.get('split', 0)} of split {', '.join(i['exclude_split'])} in `{i.get('split_labels')}`")
    return (f"Held-out documents dropped right after the reader, before any filter (none of them is in the "
            f"shards; kept under `work/excluded/heldout/`): {sum(n.values())} — {'; '.join(parts)}.")


def _pii(cfg: dict, comp: dict) -> str:
    pc = cfg.get("compliance", {}).get("pii")
    counts = comp.get("pii")
    if pc is not None and not pc.get("enabled", True):
        return "PII scrubbing was **disabled** for this run."
    types = (pc or {}).get("types") or list(PLACEHOLDERS)
    policy = _table(["type", "replaced by"], [[t, f"`{PLACEHOLDERS[t]}`"] for t in types if t in PLACEHOLDERS])
    kept = ("Kept on purpose: dosages and schedules (`5 mg 1-0-1`), ICD-10/11 codes, lab values and ranges, "
            "years, dates not next to a name or a birth keyword, private-network IP addresses, emergency and "
            "helpline numbers (112, 110, 116117, 116xxx), poison-information centres and toll-free 0800/0801 "
            f"numbers of organisations ({len(KEEP_NUMBERS)} numbers listed in `definemed.corpus.pii.KEEP_NUMBERS`"
            + (f", plus {len(pc['keep_numbers'])} from the config" if pc and pc.get("keep_numbers") else "") + ").")
    if counts is None:
        return f"{policy}\n\n{kept}\n\nNo PII counts were recorded for this run (the scrubber did not run)."
    rows = [[t, _fmt(n)] for t, n in sorted(counts.get("by_type", {}).items())]
    return (f"{policy}\n\n{kept}\n\nRedactions in this run ({_fmt(counts.get('documents', 0))} documents "
            f"changed):\n\n{_table(['type', 'redactions'], rows or [['–', 0]])}")


def _optout(cfg: dict, comp: dict) -> str:
    oc = cfg.get("compliance", {}).get("optout")
    if not oc or not oc.get("enabled", True) or not oc.get("lists"):
        return "No opt-out list was applied in this run."
    drops = comp.get("optout", {})
    lists = ", ".join(f"`{p}`" for p in oc["lists"])
    return (f"Documents whose URL matches an entry of {lists} (domain with subdomains, exact host, or URL path "
            f"prefix) were dropped: {drops.get('optout_domain', 0)} by domain/host, "
            f"{drops.get('optout_path', 0)} by path prefix.")


def _decontam(cfg: dict, comp: dict) -> str:
    dc = cfg.get("compliance", {}).get("decontam")
    if not dc or not dc.get("enabled", True):
        return "No benchmark decontamination was recorded for this run."
    res = comp.get("decontamination", {"dropped": 0, "by_benchmark": {}})
    rows = [[f"`{Path(b).stem}`", f"`{b}`", res["by_benchmark"].get(Path(b).stem, 0)] for b in dc.get("benchmarks", [])]
    verb = "dropped" if dc.get("mode", "drop") == "drop" else "flagged (`contaminated_by` metadata, kept)"
    return (f"Documents sharing any {dc.get('n', 13)}-word sequence (NFKC, lowercase, words only) with an "
            f"evaluation item were {verb}; items shorter than n words count whole if they have at least "
            f"{dc.get('min_words', 8)} words.\n\n{_table(['benchmark', 'file', 'documents'], rows)}")


def _scoring(cfg: dict, stats: dict) -> str:
    ann = cfg.get("annotate", {})
    a = ann.get("annotator", {})
    lines = []
    if ann.get("enabled", True):
        lines.append(f"- Annotator: `{a.get('backend', {}).get('model')}` ({a.get('backend', {}).get('kind')}), "
                     f"mode `{a.get('mode')}`, prompt version `{a.get('prompt', {}).get('version', 'de-med-v1')}`, "
                     f"{ann.get('sample_size')} documents.")
        for mode, res in (stats.get("annotation") or {}).items():
            ag = res.get("agreement_medical") if isinstance(res, dict) else None
            if ag:
                lines.append(f"  - `{mode}` vs gold: n={ag.get('n')}, failed={ag.get('failed')}, Spearman "
                             f"{_fmt(ag.get('spearman'))}, ROC-AUC {_fmt(ag.get('roc_auc'))}")
    clf = stats.get("classifier") or {}
    c = cfg.get("classifier", {})
    kind, labels = clf.get("kind", c.get("kind")), clf.get("labels_from", c.get("labels_from"))
    lines.append(f"- Classifier: `{kind}` trained on {labels} labels ({clf.get('train_documents', '–')} documents), "
                 f"threshold {cfg.get('filter', {}).get('threshold')}.")
    if m := clf.get("test_vs_gold"):
        lines.append(f"  - held-out test split vs gold (n={m.get('n')}): precision {_fmt(m.get('precision'))}, "
                     f"recall {_fmt(m.get('recall'))}, F1 {_fmt(m.get('f1'))}")
    d = cfg.get("dedup", {})
    if d.get("enabled", True):
        lines.append(f"- Near-duplicates: datatrove MinHash, {d.get('n_grams')}-grams, {d.get('num_buckets')} buckets "
                     f"× {d.get('hashes_per_bucket')} hashes.")
        if method := (stats.get("dedup") or {}).get("method"):
            lines.append(f"  - method: {method}")
    return "\n".join(lines)


def _schema() -> str:
    from definemed.corpus.writers import output_schema

    notes = {"medical_score": "classifier probability of medical relevance", "token_count": "tokens (or words)"}
    rows = [[f"`{f.name}`", str(f.type), notes.get(f.name, "FineWeb2 column")] for f in output_schema()]
    return "Parquet shards in `shards/`, one row per document:\n\n" + _table(["column", "type", "meaning"], rows)


def dataset_card(run_dir: Path) -> str:
    run_dir = Path(run_dir)
    for name in ("config.yaml", "manifest.json", "stats.json"):
        if not (run_dir / name).exists():
            raise UserError(f"{run_dir}: no {name} (not a finished corpus run)")
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
    manifest, stats = read_json(run_dir / "manifest.json"), read_json(run_dir / "stats.json")
    comp = stats.get("compliance") or collect_compliance_stats(run_dir / "logs")
    out = stats.get("points", {}).get("output", {})
    front = {"license": "odc-by", "language": ["de"], "task_categories": ["text-generation"],
             "size_categories": [size_category(int(out.get("documents", 0)))], "pretty_name": cfg.get("name"),
             "tags": ["medical", "german", "fineweb2", "definemed"],
             "configs": [{"config_name": "default", "data_files": "shards/*.parquet"}]}
    versions = ", ".join(f"{k} {v}" for k, v in manifest.get("versions", {}).items() if v)
    sections = [
        f"# {cfg.get('name', 'corpus')}",
        f"German medical web text selected from FineWeb2 by the definemed corpus stage: "
        f"{_fmt(out.get('documents'))} documents, {_fmt(out.get('tokens'))} tokens. Run finished "
        f"{manifest.get('finished') or '–'} (status: {manifest.get('status')}), seed {manifest.get('seed')}.",
        "## Sources and licences", _sources(cfg, manifest),
        "## Filters", _heldout(cfg, stats) + "\n\n" + _filters(stats),
        "## Personal data", _pii(cfg, comp),
        "## Rights reservations (opt-out)", _optout(cfg, comp),
        "## Benchmark decontamination", _decontam(cfg, comp),
        "## Relevance scoring", _scoring(cfg, stats),
        "## Output schema", _schema(),
        "## Reproduce", f"`definemed corpus run <config>` with this folder's `config.yaml`.\n\nVersions: {versions}.",
    ]
    head = yaml.safe_dump(front, sort_keys=False, allow_unicode=True)
    return "---\n" + head + "---\n\n" + "\n\n".join(sections) + "\n"


def write_dataset_card(run_dir: str | Path) -> Path:
    """Write `README.md` into a finished corpus run directory; returns its path."""
    path = Path(run_dir) / "README.md"
    atomic_write_text(path, dataset_card(Path(run_dir)))
    return path
