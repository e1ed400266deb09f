"""Held-out documents (an id list, evaluation splits) are dropped right after the reader: none
reaches the shards, they are counted and kept, and the classifier is still measured on the test split."""

import json

import pyarrow.parquet as pq
import pytest

from conftest import ROOT
from definemed.config import validate_config
from definemed.corpus.config import CorpusConfig
from definemed.corpus.heldout import heldout_documents, heldout_reasons, read_id_file
from definemed.errors import UserError

GOLD = ROOT / "data/sample/labels/fineweb2_deu_gold.jsonl"


def _gold() -> list[dict]:
    return [json.loads(line) for line in GOLD.open()]


def _config(out, **inp) -> CorpusConfig:
    return validate_config(CorpusConfig, {
        "output_dir": str(out), "seed": 0,
        "input": {"paths": [str(ROOT / "data/sample/fineweb2_deu")], **inp},
        "executor": {"tasks": 4, "workers": 1}, "annotate": {"enabled": False},
        "classifier": {"labels_from": "gold", "gold_labels": str(GOLD)}, "tokenizer": None,
    })


def test_config_errors_name_the_field(tmp_path):
    with pytest.raises(UserError, match=r"field 'input.exclude_ids': Path does not point to a file"):
        _config(tmp_path, exclude_ids=str(tmp_path / "missing.txt"))
    with pytest.raises(UserError, match=r"field 'input.split_labels'"):
        _config(tmp_path, exclude_split=["test"], split_labels=str(tmp_path / "missing.jsonl"))
    with pytest.raises(UserError, match=r"field 'input.exclude_split'.*split_labels"):
        _config(tmp_path, exclude_split=["test"])
    (tmp_path / "ids.csv").write_text("a\n")
    with pytest.raises(UserError, match=r"field 'input.exclude_ids'.*\.txt"):
        _config(tmp_path, exclude_ids=str(tmp_path / "ids.csv"))


def test_id_files_and_reasons(tmp_path):
    (tmp_path / "ids.txt").write_text("# held out by hand\n<urn:a>\n\n  <urn:b>  \n")
    (tmp_path / "ids.jsonl").write_text('{"id": "<urn:a>"}\n{"id": "<urn:c>", "note": 1}\n')
    assert read_id_file(tmp_path / "ids.txt") == {"<urn:a>", "<urn:b>"}
    assert read_id_file(tmp_path / "ids.jsonl") == {"<urn:a>", "<urn:c>"}
    (tmp_path / "bad.jsonl").write_text('{"key": "x"}\n')
    with pytest.raises(UserError, match="no string 'id'"):
        read_id_file(tmp_path / "bad.jsonl")
    test_id = next(r["id"] for r in _gold() if r["split"] == "test")
    (tmp_path / "one.txt").write_text(test_id + "\n<urn:a>\n")
    reasons = heldout_reasons(tmp_path / "one.txt", ["test"], GOLD)
    assert reasons[test_id] == "heldout_id" and reasons["<urn:a>"] == "heldout_id"  # counted once, as listed
    assert sum(r == "heldout_split" for r in reasons.values()) == sum(r["split"] == "test" for r in _gold()) - 1


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from definemed.corpus.pipeline import run_corpus

    base = tmp_path_factory.mktemp("heldout")
    train_ids = [r["id"] for r in _gold() if r["split"] == "train"][:3]
    (base / "ids.txt").write_text("\n".join(train_ids) + "\n")
    plain = run_corpus(_config(base / "plain"))
    held = run_corpus(_config(base / "held", exclude_ids=str(base / "ids.txt"), exclude_split=["test"],
                              split_labels=str(GOLD)))
    return base, train_ids, plain, held


def test_no_heldout_document_reaches_the_shards(runs):
    base, train_ids, plain, held = runs
    test_ids = {r["id"] for r in _gold() if r["split"] == "test"}
    shard_ids = lambda out: {r["id"] for f in (out / "shards").glob("*.parquet")  # noqa: E731
                             for r in pq.read_table(f, columns=["id"]).to_pylist()}
    assert shard_ids(base / "plain") & test_ids  # without the exclusion the test split leaks into the shards
    assert not shard_ids(base / "held") & (test_ids | set(train_ids))
    stats = json.loads((base / "held" / "stats.json").read_text())
    assert stats["heldout_excluded"] == {"split": len(test_ids), "id": 3}
    p = stats["points"]
    assert p["input"]["documents"] == 364  # the input tally counts what was read, before the exclusion
    step = next(s for s in stats["steps"] if "held-out" in s["step"])
    assert step["in"] == 364 and step["out"] == 364 - len(test_ids) - 3
    kept = {d.id for d in heldout_documents(base / "held" / "work" / "excluded")}
    assert kept == test_ids | set(train_ids)
    card = (base / "held" / "README.md").read_text()
    assert f"{len(test_ids) + 3} — 3 listed in" in card and f"{len(test_ids)} of split test" in card
    assert "No held-out exclusion" in (base / "plain" / "README.md").read_text()


def test_classifier_is_still_measured_on_the_test_split(runs):
    _, _, plain, held = runs
    m_plain, m_held = plain["classifier"]["test_vs_gold"], held["classifier"]["test_vs_gold"]
    assert m_held["n"] >= 40
    # the same documents are measured: held-out ones that the prefilters would have kept
    assert m_held == m_plain
    # 3 fewer training documents (the listed ones), never trained on
    assert held["classifier"]["train_documents"] == plain["classifier"]["train_documents"] - 3
