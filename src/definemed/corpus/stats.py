"""Merge datatrove's per-task stats into one `stats.json`: documents and tokens at each point of
the pipeline, drops by step and reason, and the classifier-score histogram. Read from the
per-task files of all tasks (`task_stats.phase_stats`), so a resumed run counts what earlier
invocations did."""

from __future__ import annotations

from pathlib import Path

from definemed.corpus.scoring import HISTOGRAM_BINS, SCORE_KEY
from definemed.corpus.task_stats import phase_stats

PHASES = ("prefilter", "classify", "minhash_filter")  # folders under logs/ with filters and tallies


def _total(stat: dict | None) -> int:
    if stat is None:
        return 0
    return int(stat.get("total", stat.get("n", 0))) if isinstance(stat, dict) else int(stat)


def collect_stats(logs: Path) -> dict:
    points: dict[str, dict] = {}
    steps: list[dict] = []
    histogram = [0] * HISTOGRAM_BINS
    reader: dict[str, int] = {}
    heldout: dict[str, int] = {}
    for phase in PHASES:
        for step in phase_stats(logs / phase):
            name, st = step["name"], step.get("stats", {})
            if "TALLY" in name:
                point = name.split(":", 1)[1].strip()
                points[point] = {"documents": _total(st.get("documents")), "words": _total(st.get("words")),
                                 "tokens": _total(st["tokens"]) if "tokens" in st else None}
            elif "forwarded" in st or "dropped" in st:  # filters (readers and writers only count)
                dropped = {k[len("dropped_"):]: _total(v) for k, v in st.items() if k.startswith("dropped_")}
                if "MinHash" in name and st.get("dropped"):
                    dropped = {"near_duplicate": _total(st["dropped"])}
                steps.append({"phase": phase, "step": name.split(":", 1)[-1].strip(), "in": _total(st.get("total")),
                              "out": _total(st.get("forwarded")), "dropped": _total(st.get("dropped")),
                              "reasons": dropped})
            for k, v in st.items():
                if k.startswith(f"{SCORE_KEY}_bin_"):
                    histogram[int(k.rsplit("_", 1)[1])] += _total(v)
                if k.startswith("skipped_"):
                    reader[k] = reader.get(k, 0) + _total(v)
                if k.startswith("dropped_heldout_"):  # by reason: id (id list) / split (split labels)
                    key = k[len("dropped_heldout_"):]
                    heldout[key] = heldout.get(key, 0) + _total(v)
    return {"points": points, "steps": steps, "skipped_by_reader": reader, "heldout_excluded": heldout,
            "score_histogram": {"bins": [round(i / HISTOGRAM_BINS, 2) for i in range(HISTOGRAM_BINS + 1)],
                                "counts": histogram}}
