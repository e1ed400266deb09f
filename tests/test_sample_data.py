"""The project's own sample data: schemas, counts, splits, near-duplicates, reproducible build."""

import re
from collections import Counter

import pyarrow.parquet as pq
import pytest

from definemed.data import sample
from definemed.data.build_sample import build
from definemed.data.schemas import FINEWEB2_COLUMNS


@pytest.fixture(scope="module")
def docs():
    return sample.load_docs()


@pytest.fixture(scope="module")
def labels():
    return sample.load_labels()


def test_parquet_has_exactly_fineweb2_columns():
    files = sorted(sample.docs_dir().glob("*.parquet"))
    assert files
    for f in files:
        schema = pq.read_schema(f)
        assert tuple(schema.names) == FINEWEB2_COLUMNS
        assert str(schema.field("language_score").type) == "double"
        assert str(schema.field("minhash_cluster_size").type) == "int64"


def test_document_counts(docs, labels):
    assert len(docs) >= 300
    assert sum(len(d["text"].split()) for d in docs) >= 60_000
    assert len({d["id"] for d in docs}) == len(docs)
    assert {d["id"] for d in docs} == {lab.id for lab in labels}
    medical = [lab for lab in labels if lab.medical >= 3]
    other = [lab for lab in labels if lab.medical <= 2]
    assert len(medical) >= 120 and len(other) >= 150
    kinds = Counter(lab.kind for lab in labels)
    for kind in ("patient_info", "drug_info", "nursing", "guideline", "lab_values", "health_news", "forum",
                 "clinic_page", "prevention", "wellness_esoteric", "cosmetics_ad", "veterinary",
                 "sports_injury_news", "insurance_law", "recipe_health_claim", "junk"):
        assert kinds[kind] >= 3, kind
    langs = Counter(lab.lang for lab in labels)
    assert langs["en"] >= 5 and langs["mixed"] >= 5


def test_fineweb2_metadata_is_plausible(docs):
    for d in docs:
        assert d["id"].startswith("<urn:uuid:") and d["url"].startswith("http")
        assert re.fullmatch(r"CC-MAIN-\d{4}-\d{2}", d["dump"])
        assert d["file_path"].startswith("s3://commoncrawl/crawl-data/" + d["dump"])
        assert d["language"] == "deu" and d["language_script"] == "Latn"
        assert 0 < d["language_score"] <= 1 and d["minhash_cluster_size"] >= 1


def test_splits_are_disjoint_stratified_and_keep_duplicates_together(labels):
    by_id = {lab.id: lab for lab in labels}
    splits = Counter(lab.split for lab in labels)
    assert set(splits) == {"train", "validation", "test"}
    assert 0.6 < splits["train"] / len(labels) < 0.8
    for split in ("validation", "test"):  # each split has medical and non-medical documents
        meds = [lab.medical for lab in labels if lab.split == split]
        assert sum(m >= 4 for m in meds) >= 10 and sum(m <= 1 for m in meds) >= 10
    dups = [lab for lab in labels if lab.near_duplicate_of]
    assert len(dups) >= 5
    for lab in dups:
        original = by_id[lab.near_duplicate_of]
        assert original.split == lab.split and original.medical == lab.medical


def test_near_duplicates_are_near_and_marked(docs, labels):
    text = {d["id"]: d["text"] for d in docs}
    cluster = {d["id"]: d["minhash_cluster_size"] for d in docs}

    def shingles(t, n=5):
        w = t.lower().split()
        return {" ".join(w[i:i + n]) for i in range(len(w) - n + 1)}

    for lab in labels:
        if lab.near_duplicate_of:
            a, b = shingles(text[lab.id]), shingles(text[lab.near_duplicate_of])
            assert len(a & b) / len(a | b) > 0.75
            assert text[lab.id] != text[lab.near_duplicate_of]
            assert cluster[lab.id] == cluster[lab.near_duplicate_of] == 2


def test_build_is_reproducible(tmp_path, docs, labels):
    import shutil

    shutil.copytree(sample.sample_dir() / "src", tmp_path / "src")
    build(tmp_path)
    rebuilt = [r for f in sorted((tmp_path / "fineweb2_deu").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    assert rebuilt == docs
    assert (tmp_path / "labels" / "fineweb2_deu_gold.jsonl").read_text() == sample.labels_path().read_text()


def test_mcq_set():
    items = sample.load_mcq()
    assert len(items) >= 150
    assert len({q.id for q in items}) == len(items)
    assert all(len(q.choices) in (4, 5) for q in items)
    subjects = Counter(q.subject for q in items)
    for s in ("internal_medicine", "pharmacology", "anatomy", "physiology", "paediatrics",
              "emergency_medicine", "nursing"):
        assert subjects[s] >= 8, s
    positions = Counter(q.answer for q in items)
    assert max(positions.values()) / len(items) < 0.4  # no favourite answer position
    longest = sum(len(q.choices[q.answer]) == max(map(len, q.choices)) for q in items)
    assert longest / len(items) < 0.5  # the longest option is not a giveaway


def test_instruction_set():
    from definemed.eval.ifeval import check_constraints

    items = sample.load_instructions()
    assert len(items) >= 80
    assert len({i.id for i in items}) == len(items)
    assert sum(i.reference is not None for i in items) >= 40
    assert sum(bool(i.constraints) for i in items) >= 20
    assert sum(i.must_refer_to_professional for i in items) >= 5
    cats = Counter(i.category for i in items)
    for c in ("patient_question", "explain_findings", "summarise_letter", "handover", "dosage_safety"):
        assert cats[c] >= 5, c
    # every reference answer satisfies its own instruction's verifiable constraints
    for i in items:
        if i.reference and i.constraints:
            results = check_constraints(i.reference, i.constraints)
            assert all(r["strict"] for r in results), (i.id, results)


def test_data_card_matches_counts(labels):
    card = (sample.sample_dir() / "README.md").read_text(encoding="utf-8")
    assert f"{len(labels)} documents" in card
    assert f"{len(sample.load_mcq())} questions" in card
    assert f"{len(sample.load_instructions())} instructions" in card
