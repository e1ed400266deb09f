"""Readers and prefilters on real files: FineWeb2 parquet, robust jsonl, bad inputs."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datatrove.data import Document

from definemed.corpus.config import PrefilterConfig
from definemed.corpus.prefilters import (BoilerplateSpamFilter, FunctionWordFilter, InputGuard,
                                         LanguageScoreFilter, make_prefilters)
from definemed.corpus.readers import make_reader, preflight
from definemed.data import sample
from definemed.errors import UserError


def test_parquet_reader_keeps_fineweb2_metadata():
    (reader,) = make_reader([str(sample.docs_dir())], "parquet")
    docs = list(reader.run(rank=0, world_size=1))
    assert len(docs) == len(sample.load_docs())
    meta = docs[0].metadata
    for col in ("dump", "url", "date", "file_path", "language", "language_score", "minhash_cluster_size",
                "top_langs"):
        assert col in meta
    shards = [len(list(make_reader([str(sample.docs_dir())], "parquet")[0].run(rank=r, world_size=4)))
              for r in range(4)]
    assert sum(shards) == len(docs) and min(shards) > 0  # tasks shard by file


def test_jsonl_reader_skips_bad_lines_and_counts_them(tmp_path):
    good = {"text": "Ein ganz normaler Text.", "id": "a", "language_score": 0.9}
    raw = (json.dumps(good).encode() + b"\n" + b'{"text": "kaputt \xff\xfe", "id": "b"}\n'
           + b"not json at all\n" + json.dumps({"id": "c"}).encode() + b"\n"
           + json.dumps({**good, "id": "d"}).encode() + b"\n")
    with gzip.open(tmp_path / "x.jsonl.gz", "wb") as f:
        f.write(raw)
    (reader,) = make_reader([str(tmp_path)], "jsonl")
    docs = list(reader.run(rank=0, world_size=1))
    assert [d.id for d in docs] == ["a", "d"]
    stats = reader.stats.to_dict()["stats"]
    assert stats["skipped_invalid_utf8"] == stats["skipped_invalid_json"] == stats["skipped_no_text"] == 1


def test_preflight_errors(tmp_path):
    with pytest.raises(UserError, match="input not found"):
        preflight([str(tmp_path / "nope")], "parquet")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no parquet files"):
        preflight([str(tmp_path / "empty")], "parquet")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(UserError, match="not a readable parquet"):
        preflight([str(tmp_path / "bad.parquet")], "parquet")
    pq.write_table(pa.table({"content": ["x"]}), tmp_path / "notext.parquet")
    with pytest.raises(UserError, match="no 'text' column"):
        preflight([str(tmp_path / "notext.parquet")], "parquet")
    assert preflight([str(sample.docs_dir())], "parquet")


def _doc(text, **meta):
    return Document(text=text, id="x", metadata=meta)


def test_individual_prefilters():
    assert InputGuard(100).filter(_doc("   ")) == (False, "empty")
    assert InputGuard(100).filter(_doc("x" * 101)) == (False, "huge")
    lang = LanguageScoreFilter("deu", 0.65)
    assert lang.filter(_doc("t", language="deu", language_score=0.5)) == (False, "low_language_score")
    assert lang.filter(_doc("t", language="fra", language_score=0.99)) == (False, "wrong_language")
    assert lang.filter(_doc("t", language="deu", language_score=0.9)) is True
    fw = FunctionWordFilter(PrefilterConfig().function_words, 0.08)
    assert fw.filter(_doc("Der Patient ist mit dem Arzt in der Klinik und hat keine Schmerzen.")) is True
    assert fw.filter(_doc("The patient went to the doctor and has no pain at all today.")) == (False, "few_function_words")
    bp = BoilerplateSpamFilter(PrefilterConfig())
    spam = " ".join(["Potenzmittel günstig kaufen ohne Rezept."] * 8)
    assert bp.filter(_doc(spam)) == (False, "keyword_stuffing")
    menu = "\n".join(["Startseite", "Über uns", "Produkte", "Kontakt", "Impressum", "Datenschutz"])
    assert bp.filter(_doc(menu))[0] is False


def test_prefilters_on_the_sample_keep_german_medicine_and_drop_junk():
    filters = make_prefilters(PrefilterConfig())
    kept_medical = dropped_medical = dropped_junk = 0
    labels = {lab.id: lab for lab in sample.load_labels()}
    for d in sample.load_docs():
        doc = Document(text=d["text"], id=d["id"], metadata={k: d[k] for k in ("language", "language_score")})
        keep = all(f.filter(doc) is True for f in filters)
        lab = labels[d["id"]]
        if lab.lang == "de" and lab.medical >= 3:
            kept_medical += keep
            dropped_medical += not keep
        if lab.kind == "junk":
            dropped_junk += not keep
    assert dropped_medical == 0 and kept_medical >= 120
    assert dropped_junk >= 10
