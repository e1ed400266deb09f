"""The report shows the numbers the stages wrote: every value below is read from the file the real
stage code wrote in the session fixture (conftest.py) and looked up in the rendered tables."""

from __future__ import annotations

import json
import re

import pytest

from definemed.report.build import render_report
from definemed.report.load import load_runs

from .tables import rows_by_first_cell, table_with


def read(path):
    return json.loads(path.read_text(encoding="utf-8"))


def close(cell: str, value: float, as_pct: bool = False) -> bool:
    """The first number in a table cell equals ``value`` up to the digits the cell shows."""
    m = re.match(r"-?[\d,]+(?:\.(\d+))?", cell.strip())
    assert m, cell
    shown = float(m.group(0).replace(",", "")) / (100 if as_pct else 1)
    digits = len(m.group(1) or "") + (2 if as_pct else 0)
    return abs(shown - value) <= 0.5 * 10 ** -digits + 1e-12


@pytest.fixture(scope="module")
def page(report_runs):
    r = report_runs
    return render_report(load_runs([r["main"], r["biased"], r["train"], r["merge"], r["corpus"]]))


def test_train_section_and_heldout_perplexities(page, report_runs):
    m = read(report_runs["train"] / "metrics.json")
    losses = [json.loads(line)["loss"] for line in (report_runs["train"] / "metrics.jsonl").read_text().splitlines()]
    assert m["final_loss"] == pytest.approx(losses[-1])
    table = table_with(page, "final loss")
    row = dict(zip(table[0], table[1]))
    assert int(row["steps"]) == m["steps"] and int(row["tokens"].replace(",", "")) == m["tokens"]
    assert close(row["final loss"], m["final_loss"])
    assert int(row["processes"]) == m["world_size"] and int(row["sequences per step"]) == m["global_batch_sequences"]
    # how many held-out documents the perplexities are over, and how many were dropped as trained on
    assert row["held-out documents"] == ", ".join(f"{k} {v}" for k, v in m["heldout_docs"].items())
    assert row["excluded (in the training data)"] == ", ".join(f"{k} {v}" for k, v in
                                                              m["heldout_overlap_docs"].items())
    ppl = rows_by_first_cell(table_with(page, "held-out medical"))
    header = table_with(page, "held-out medical")[0]
    col = header.index("held-out medical")
    assert close(ppl["train before CPT"][col], m["heldout_ppl_start"]["medical"])
    assert close(ppl["train after CPT"][col], m["heldout_ppl_end"]["medical"])


def test_merge_section(page, report_runs):
    sweep = read(report_runs["merge"] / "sweep.json")
    table = table_with(page, "medical perplexity ↓")
    header, rows = table[0], rows_by_first_cell(table)
    written = sweep["parents"] + sweep["points"]
    assert sorted(rows) == sorted(r["label"] for r in written)
    for r in written:
        row = dict(zip(header, rows[r["label"]]))
        assert close(row["t"], r["t"])
        assert close(row["medical perplexity ↓"], r["eval"]["medical_ppl"])
        assert close(row["IF strict ↑"], r["eval"]["if_strict"], as_pct=True)
        assert close(row["IF loose ↑"], r["eval"]["if_loose"], as_pct=True)
        assert int(row["ppl docs"]) == r["eval"]["docs"]
        if "checks" in r:  # merged points are checked; the parents are not
            assert r["checks"]["ok"] and row["checks"] == "ok"
        else:
            assert row["checks"] == "–"
    assert f"excluded from the perplexity because a parent was trained on them: {sweep['heldout_overlap_docs']}" \
        in page
    # the same perplexities in the perplexity section
    ppl = rows_by_first_cell(table_with(page, "merge eval: medical"))
    col = table_with(page, "merge eval: medical")[0].index("merge eval: medical")
    for r in written:
        assert close(ppl[f"merge {r['label']} (t={r['t']})"][col], r["eval"]["medical_ppl"])


def test_corpus_section(page, report_runs):
    stats = read(report_runs["corpus"] / "stats.json")
    table = table_with(page, "point")
    header, rows = table[0], rows_by_first_cell(table)
    assert list(rows) == list(stats["points"])
    for point, v in stats["points"].items():
        row = dict(zip(header, rows[point]))
        assert int(row["documents"].replace(",", "")) == v["documents"]
        assert int(row["words"].replace(",", "")) == v["words"]  # counted at every point
        assert row["tokens"] == ("–" if v["tokens"] is None else f"{v['tokens']:,}")
    steps = table_with(page, "dropped")
    assert len(steps) - 1 == len(stats["steps"])
    for row, s in zip(steps[1:], stats["steps"]):
        assert row[1] == s["step"] and [int(x) for x in row[2:5]] == [s["in"], s["out"], s["dropped"]]
    clf = stats["classifier"]["test_vs_gold"]
    assert f"f1 {clf['f1']:.3f}" in page and f"n {clf['n']}" in page


def test_mcq_section(page, report_runs):
    mcq = read(report_runs["main"] / "mcq.json")
    table = table_with(page, "acc_norm")
    header, rows = table[0], {k.split(" (")[0]: v for k, v in rows_by_first_cell(table).items()}
    assert sorted(rows) == sorted(mcq["models"])
    for label, r in mcq["models"].items():
        row = dict(zip(header, rows[label]))
        assert close(row["acc"], r["acc"]["mean"], as_pct=True)
        assert close(row["acc_norm"], r["acc_norm"]["mean"], as_pct=True)
        assert int(row["n"]) == r["acc"]["n"] == mcq["items"]
    assert f"chance level {100 * mcq['chance']:.1f}%" in page


def test_failures_section(page, report_runs):
    failures = read(report_runs["main"] / "failures.json")["models"]
    table = table_with(page, "metric (↓ lower is better, ↑ higher)")
    labels = [h.split(" (")[0] for h in table[0][1:]]
    rows = {k.rstrip(" ↑↓"): v for k, v in rows_by_first_cell(table).items()}
    assert sorted(labels) == sorted(failures)
    for name, key in (("hit the token limit", "hit_token_limit"), ("stopped on its own", "stopped_on_own")):
        for label, cell in zip(labels, rows[name][1:]):
            assert close(cell, failures[label]["verbosity"][key]["mean"], as_pct=True), (name, label)
    for label, cell in zip(labels, rows["words per answer that stopped on its own"][1:]):
        stat = failures[label]["verbosity"]["words_per_stopped_answer"]
        assert (cell == "–") if stat["n"] == 0 else close(cell, stat["mean"]), label
    # the generated answers of the 2-layer random model all run to the token limit
    assert failures["instruct"]["verbosity"]["hit_token_limit"]["mean"] == 1.0


def test_pairwise_section(page, report_runs):
    judge = next(iter(read(report_runs["main"] / "pairwise.json")["judges"].values()))
    table = table_with(page, "A wins / ties / B wins")
    shown = {(row[0].split(" (")[0], row[1].split(" (")[0]): row[4] for row in table[1:]}
    for p in judge["pairs"]:
        assert shown[(p["a"], p["b"])] == f"{p['wins']} / {p['ties']} / {p['losses']}"
    ranking = table_with(page, "score (log-strength)")
    assert [row[1].split(" (")[0] for row in ranking[1:]] == [r["model"] for r in judge["bradley_terry"]]
