"""The whole corpus stage on the real sample parquet: outputs, statistics, resume after SIGKILL,
determinism, rerun as a no-op, and bad inputs through the real CLI."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from conftest import ROOT, run_cli
from definemed.config import validate_config
from definemed.corpus.config import CorpusConfig
from definemed.corpus.labels import iter_intermediate
from definemed.corpus.writers import read_excluded
from definemed.data.schemas import FINEWEB2_COLUMNS

from .fakes import GullibleBackend
from .test_resume_stats import comparable

GOLD = str(ROOT / "data/sample/labels/fineweb2_deu_gold.jsonl")


def base_config(out: Path, **changes) -> dict:
    cfg = {
        "output_dir": str(out), "seed": 0,
        "input": {"paths": [str(ROOT / "data/sample/fineweb2_deu")]},
        "executor": {"tasks": 4, "workers": 1},
        "annotate": {"enabled": False},
        "classifier": {"labels_from": "gold", "gold_labels": GOLD},
    }
    for key, value in changes.items():
        cfg[key] = value
    return cfg


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def read_shards(out: Path) -> list[dict]:
    return [r for f in sorted((out / "shards").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def test_full_run_with_annotator_labels(tmp_path):
    from definemed.corpus.pipeline import run_corpus

    cfg = validate_config(CorpusConfig, base_config(
        tmp_path / "run",
        annotate={"enabled": True, "sample_size": 120, "gold_labels": GOLD, "compare_modes": ["generate"],
                  "compare_sample_size": 30},
        classifier={"labels_from": "annotator", "gold_labels": GOLD}))
    metrics = run_corpus(cfg, backend=GullibleBackend())
    out = tmp_path / "run"
    rows = read_shards(out)
    assert rows and list(rows[0])[: len(FINEWEB2_COLUMNS)] == list(FINEWEB2_COLUMNS)
    assert all(r["medical_score"] >= 0.5 and r["token_count"] > 0 for r in rows)
    stats = json.loads((out / "stats.json").read_text())
    p = stats["points"]
    from definemed.data.sample import load_docs

    assert p["input"]["documents"] == len(load_docs()) > p["prefiltered"]["documents"] \
        > p["classified"]["documents"] >= p["output"]["documents"] == len(rows)
    assert p["input"]["words"] > p["output"]["words"] > 0
    # tokens are counted at the output only (token_counts: output), exactly: the shards' column sums to it
    assert p["input"]["tokens"] is None and p["output"]["tokens"] == sum(r["token_count"] for r in rows)
    reasons = {r for s in stats["steps"] for r in s["reasons"]}
    assert {"low_language_score", "below_threshold", "near_duplicate"} <= reasons
    assert sum(stats["score_histogram"]["counts"]) == p["prefiltered"]["documents"]
    ann = metrics["annotation"]
    assert ann["loglik"]["agreement_medical"]["n"] > 50 and ann["generate"]["agreement_medical"]["n"] > 10
    assert ann["loglik"]["agreement_medical"]["spearman"] > 0.3  # the keyword fake is a decent annotator
    assert metrics["classifier"]["labels_from"] == "annotator"
    assert metrics["classifier"]["test_vs_gold"]["n"] >= 40
    # provenance: every kept document keeps its FineWeb2 id, url, dump and WARC path
    assert all(r["id"].startswith("<urn:uuid:") and r["url"] and r["dump"] and r["file_path"] for r in rows)
    # syndicated copies: of each planted pair that reaches dedup, exactly the copy read later is removed
    # (datatrove keeps a cluster's first document); fails if dedup is off or its signatures are wrong
    order = {d["id"]: n for n, d in enumerate(iter_intermediate(out / "work" / "classified"))}
    pairs = [(lab["id"], lab["near_duplicate_of"]) for lab in map(json.loads, open(GOLD)) if lab["near_duplicate_of"]]
    expected = {max(pair, key=order.__getitem__) for pair in pairs if all(i in order for i in pair)}
    removed = {d.id for d in read_excluded(out / "work" / "excluded" / "near_duplicates")}
    assert expected and removed == expected
    assert not removed & {r["id"] for r in rows}
    for f in ("config.yaml", "manifest.json", "metrics.json", "run.log", "classifier/classifier.safetensors"):
        assert (out / f).exists(), f


class FlakyBackend(GullibleBackend):
    """Gives no log-probs for every document whose length is divisible by 3."""

    def score_options(self, chats, options, prefix=""):
        from definemed.llm.base import Failed

        good = super().score_options(chats, options, prefix)
        return [Failed("no_logprobs") if len(self._doc(c)) % 3 == 0 else g for c, g in zip(chats, good)]


def test_failed_annotations_are_counted_and_never_become_labels(tmp_path):
    from definemed.corpus.pipeline import run_corpus

    cfg = validate_config(CorpusConfig, base_config(
        tmp_path / "run", annotate={"enabled": True, "sample_size": 120, "gold_labels": GOLD},
        classifier={"labels_from": "annotator", "gold_labels": GOLD}))
    metrics = run_corpus(cfg, backend=FlakyBackend())
    ann = metrics["annotation"]["loglik"]
    rows = [json.loads(x) for x in (tmp_path / "run" / "annotations" / "loglik.jsonl").read_text().splitlines()]
    failed = [r for r in rows if r["status"] == "failed"]
    assert 10 < len(failed) < len(rows) - 10 and all("medical" not in r for r in failed)
    assert ann["failed"] == len(failed) and ann["failed_reasons"] == {"no_logprobs": len(failed)}
    assert ann["stats"]["failed:no_logprobs"] == len(failed)
    gold_ids = {json.loads(x)["id"] for x in open(GOLD)}
    agreement = ann["agreement_medical"]
    assert agreement["failed"] == sum(r["id"] in gold_ids for r in failed)
    assert agreement["n"] == sum(r["id"] in gold_ids for r in rows) - agreement["failed"]
    assert metrics["classifier"]["annotations_failed_excluded"] == len(failed)


def _launch(config: Path) -> subprocess.Popen:
    exe = Path(sys.executable).parent / "definemed"
    return subprocess.Popen([str(exe), "corpus", "run", str(config)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


@pytest.mark.slow
def test_resume_after_sigkill_gives_identical_output(tmp_path):
    clean = write_config(tmp_path / "clean.yaml", base_config(tmp_path / "clean"))
    res = run_cli("corpus", "run", clean)
    assert res.returncode == 0, res.stderr[-2000:]
    expected = read_shards(tmp_path / "clean")

    killed_dir = tmp_path / "killed"
    cfg = write_config(tmp_path / "killed.yaml", base_config(killed_dir))
    proc = _launch(cfg)
    marker = killed_dir / "logs" / "classify" / "completions"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if marker.exists() and any(marker.iterdir()):
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: executor and its workers
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert json.loads((killed_dir / "manifest.json").read_text())["status"] == "running"
    done_before = len(list(marker.iterdir()))
    assert 1 <= done_before < 4

    res = run_cli("corpus", "run", cfg)
    assert res.returncode == 0, res.stderr[-2000:]
    assert read_shards(killed_dir) == expected  # same documents, same order, same scores
    assert comparable(killed_dir) == comparable(tmp_path / "clean")  # stats.json and card count every task
    assert "already been completed" in res.stderr or "Skipping" in res.stderr

    again = run_cli("corpus", "run", cfg)  # finished + same config: a no-op
    assert again.returncode == 0 and "nothing to do" in again.stderr
    changed = base_config(killed_dir)
    changed["filter"] = {"threshold": 0.9}
    res = run_cli("corpus", "run", write_config(tmp_path / "changed.yaml", changed))
    assert res.returncode == 2 and "different config" in res.stderr


def test_bad_documents_are_skipped_and_counted(tmp_path):
    from definemed.corpus.pipeline import run_corpus

    src = pq.read_table(next((ROOT / "data/sample/fineweb2_deu").glob("*.parquet"))).to_pylist()[:60]
    bad = [dict(src[0], text="", id="empty"), dict(src[1], text="Wort " * 300_000, id="huge")]
    (tmp_path / "in").mkdir()
    pq.write_table(pa.Table.from_pylist(src + bad), tmp_path / "in" / "a.parquet")
    cfg = validate_config(CorpusConfig, base_config(
        tmp_path / "run", input={"paths": [str(tmp_path / "in")]}, executor={"tasks": 1},
        dedup={"enabled": False}))
    run_corpus(cfg)
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    guard = next(s for s in stats["steps"] if "input guard" in s["step"])
    assert guard["reasons"] == {"huge": 1}
    assert stats["skipped_by_reader"] == {"skipped_empty": 1}
    assert stats["points"]["input"]["documents"] == 61  # the empty record never becomes a document


def test_cli_bad_inputs(tmp_path):
    missing = write_config(tmp_path / "m.yaml", base_config(tmp_path / "o1", input={"paths": [str(tmp_path / "x")]}))
    res = run_cli("corpus", "run", missing)
    assert res.returncode == 2 and "input not found" in res.stderr and "Traceback" not in res.stderr
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.parquet").write_bytes(b"garbage")
    corrupt = write_config(tmp_path / "c.yaml", base_config(tmp_path / "o2", input={"paths": [str(tmp_path / "bad")]}))
    res = run_cli("corpus", "run", corrupt)
    assert res.returncode == 2 and "not a readable parquet" in res.stderr
    wrong = base_config(tmp_path / "o3")
    wrong["classifier"] = {"labels_from": "gold"}
    res = run_cli("corpus", "run", write_config(tmp_path / "w.yaml", wrong))
    assert res.returncode == 2 and "gold_labels" in res.stderr


def test_shipped_configs_validate():
    for name in ("demo-corpus.yaml", "finemed-de-full.yaml"):
        res = run_cli("corpus", "validate", ROOT / "configs" / name)
        assert res.returncode == 0, res.stderr
