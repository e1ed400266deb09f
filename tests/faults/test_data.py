"""Bad data gives one line or is handled, never a traceback (issue #12, "Data and models"):
corpus inputs corrupt in the middle or truncated, empty or mistyped eval files, user text that
matplotlib would parse as TeX."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest
import yaml

from ._data import cli, one_line_error

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data/sample/fineweb2_deu"
GOLD = str(ROOT / "data/sample/labels/fineweb2_deu_gold.jsonl")


# --- corpus inputs -------------------------------------------------------------------------------------
def corrupt_parquet(src: Path, out: Path) -> Path:
    """``src`` rewritten with 5 row groups, then 200 bytes of the third row group's text overwritten:
    the footer (schema, row-group metadata) is intact, reading fails in the middle of the file."""
    import pyarrow.parquet as pq

    table = pq.read_table(src)
    pq.write_table(table, out, row_group_size=20, compression="zstd")
    col = pq.ParquetFile(out).metadata.row_group(2).column(table.column_names.index("text"))
    data = bytearray(out.read_bytes())
    mid = col.data_page_offset + col.total_compressed_size // 2
    data[mid:mid + 200] = bytes((i * 37 + 11) % 256 for i in range(200))
    out.write_bytes(bytes(data))
    return out


@pytest.fixture()
def inputs(tmp_path):
    """The sample's four parquet files, the last one corrupt in the middle."""
    folder = tmp_path / "in"
    folder.mkdir()
    files = sorted(SAMPLE.glob("*.parquet"))
    for f in files[:-1]:
        shutil.copy2(f, folder / f.name)
    bad = corrupt_parquet(files[-1], folder / files[-1].name)
    return folder, bad


def corpus_config(tmp_path: Path, folder: Path, **input_fields) -> Path:
    cfg = {"output_dir": str(tmp_path / "run"), "seed": 0,
           "input": {"paths": [str(folder)], **input_fields},
           "executor": {"tasks": 2, "workers": 1},
           "annotate": {"enabled": False},
           "classifier": {"labels_from": "gold", "gold_labels": GOLD}}
    path = tmp_path / "corpus.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_corrupt_parquet_fails_with_one_line_naming_the_file(inputs, tmp_path, capsys, monkeypatch):
    folder, bad = inputs
    code, out, err = cli(capsys, monkeypatch, "corpus", "run", corpus_config(tmp_path, folder))
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and "Traceback" not in err + out, err[-3000:]
    assert len(errors) == 1 and str(bad) in errors[0] and "on_bad_file" in errors[0], errors
    # the task that met the file is not marked completed: a rerun after the fix reads it again
    assert len(list((tmp_path / "run" / "logs" / "prefilter" / "completions").iterdir())) < 2
    shutil.copy2(sorted(SAMPLE.glob("*.parquet"))[-1], bad)  # the user fixes the file
    from definemed.config import load_config
    from definemed.corpus.config import CorpusConfig
    from definemed.corpus.pipeline import run_corpus

    metrics = run_corpus(load_config(CorpusConfig, corpus_config(tmp_path, folder)))
    assert metrics["input_bad_files"]["count"] == 0
    assert metrics["points"]["input"]["documents"] == 4 * 91  # every document of the fixed file read once


def test_corrupt_parquet_skipped_and_counted(inputs, tmp_path, capsys, monkeypatch):
    folder, bad = inputs
    notext = folder / "zz_notext.parquet"  # found bad by the preflight (no text column)
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"inhalt": ["x"]}), notext)
    code, out, err = cli(capsys, monkeypatch, "corpus", "run", corpus_config(tmp_path, folder, on_bad_file="skip"))
    assert code == 0 and "Traceback" not in err, err[-3000:]
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    info = stats["input_bad_files"]
    assert info["policy"] == "skip" and info["count"] == 2
    by_file = {b["file"]: b for b in info["files"]}
    assert set(by_file) == {str(bad), str(notext)}
    before = by_file[str(bad)]["documents_read_before_error"]  # datatrove reads 1000-row batches: 0 here
    assert before < 91 and "text" in by_file[str(notext)]["reason"]
    assert stats["points"]["input"]["documents"] == 3 * 91 + before
    card = (tmp_path / "run" / "README.md").read_text()
    assert "Unreadable input files skipped" in card and bad.name in card and notext.name in card
    assert "skipped 2 unreadable input file(s)" in err


def _jsonl_lines(n: int) -> bytes:
    return b"".join(json.dumps({"id": f"d{i}", "text": f"Dokument {i} über Fieber. " * 20}).encode() + b"\n"
                    for i in range(n))


def _read_all(folder: Path, bad_dir: Path, on_bad_file: str):
    from definemed.corpus import bad_files
    from definemed.corpus.readers import make_reader

    (reader,) = make_reader([str(folder)], "jsonl", bad_files_dir=str(bad_dir), on_bad_file=on_bad_file)
    docs = list(reader.run(rank=0, world_size=1))
    return docs, bad_files.collect(bad_dir), reader.stats


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst"])
def test_truncated_compressed_jsonl_is_recorded_not_raised(tmp_path, suffix):
    import zstandard

    folder = tmp_path / "in"
    folder.mkdir()
    raw = _jsonl_lines(400)
    packed = gzip.compress(raw) if suffix == ".jsonl.gz" else zstandard.ZstdCompressor().compress(raw)
    (folder / f"a{suffix}").write_bytes(packed[: len(packed) // 2])  # a cut-off download
    (folder / f"b{suffix}").write_bytes(gzip.compress(_jsonl_lines(3)) if suffix == ".jsonl.gz"
                                        else zstandard.ZstdCompressor().compress(_jsonl_lines(3)))
    docs, bad, _ = _read_all(folder, tmp_path / "bad", "skip")
    assert [b["file"] for b in bad] == [str(folder / f"a{suffix}")]
    assert bad[0]["documents_read_before_error"] < 400  # what came before the cut (zstd: whole blocks only)
    assert len(docs) == bad[0]["documents_read_before_error"] + 3  # the next file is still read
    # fail: the task stops at the bad file (the orchestrator turns the record into one line)
    docs, bad, _ = _read_all(folder, tmp_path / "bad-fail", "fail")
    assert len(bad) == 1 and len(docs) == bad[0]["documents_read_before_error"]


def test_preflight_reads_compressed_jsonl_and_corrupt_lines_are_counted(tmp_path):
    from definemed.corpus.readers import preflight

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jsonl.gz").write_bytes(gzip.compress(_jsonl_lines(2) + b"{kaputt\n\xff\xfe\n" + _jsonl_lines(1)))
    files, bad = preflight([str(folder)], "jsonl")
    assert files == [folder / "a.jsonl.gz"] and bad == []
    docs, bad, stats = _read_all(folder, tmp_path / "bad", "fail")
    assert len(docs) == 3 and bad == []
    counted = {k: v.total for k, v in stats.stats.items()}
    assert counted["skipped_invalid_json"] == 1 and counted["skipped_invalid_utf8"] == 1


def test_preflight_bad_file_fails_by_default_with_one_line(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jsonl.gz").write_bytes(gzip.compress(_jsonl_lines(5))[:-30])
    (folder / "b.jsonl").write_bytes(b"\x00\x01 nicht json\n")
    line = one_line_error(capsys, monkeypatch, "corpus", "run", corpus_config(tmp_path, folder, format="jsonl"))
    assert "b.jsonl" in line and "not JSON" in line


# --- eval sets and answer files ------------------------------------------------------------------------
def test_empty_instruction_set_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "instructions.jsonl"
    empty.write_text("\n\n")
    line = one_line_error(capsys, monkeypatch, "eval", "generate", "--model", "m=/nicht/geladen", "--data", empty,
                          "--out", tmp_path / "ev")
    assert str(empty) in line and "no instruction items" in line
    assert not (tmp_path / "ev" / "manifest.json").exists()  # refused before the run starts


def test_empty_mcq_set_is_one_line_naming_the_file(tmp_path, capsys, monkeypatch):
    """Guards behaviour that already held (mcq_data.load_items refused an empty file)."""
    empty = tmp_path / "mcq.jsonl"
    empty.write_text("")
    line = one_line_error(capsys, monkeypatch, "eval", "mcq", "--model", "m=/nicht/geladen", "--data", empty,
                          "--out", tmp_path / "ev")
    assert str(empty) in line and "no items" in line


def test_sweep_instruction_set_without_constraints_is_one_line(tmp_path):
    from definemed.errors import UserError
    from definemed.merge.config import MergeEvalConfig
    from definemed.merge.sweep_eval import load_eval_data

    plain = tmp_path / "inst.jsonl"
    plain.write_text(json.dumps({"id": "i1", "category": "x", "instruction": "Erkläre Fieber."}) + "\n")
    settings = MergeEvalConfig(instructions_data=plain, heldout={"path": str(SAMPLE)})
    with pytest.raises(UserError, match="no instruction with constraints") as err:
        load_eval_data(settings, None)
    assert str(plain) in str(err.value) and "\n" not in str(err.value)


ANSWER = {"id": "i1", "model": "m", "model_ref": "x", "prompt": "Was ist Fieber?", "answer": "Erhöhte Temperatur."}


@pytest.mark.parametrize("field,value", [("id", ["i1"]), ("model", {"name": "m"}), ("answer", None),
                                         ("prompt", 3)])
def test_answer_rows_with_wrong_types_name_file_line_and_field(tmp_path, capsys, monkeypatch, field, value):
    answers = tmp_path / "answers.jsonl"
    rows = [ANSWER, {**ANSWER, "id": "i2", field: value}]
    answers.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    line = one_line_error(capsys, monkeypatch, "eval", "failures", "--answers", answers, "--out", tmp_path / "ev")
    assert f"{answers}:2:" in line and f"'{field}'" in line, line


def test_empty_answer_file_is_one_line(tmp_path, capsys, monkeypatch):
    """Guards behaviour that already held ("no answers")."""
    answers = tmp_path / "answers.jsonl"
    answers.write_text("")
    line = one_line_error(capsys, monkeypatch, "eval", "failures", "--answers", answers, "--out", tmp_path / "ev")
    assert str(answers) in line and "no answers" in line


# --- user text in the report's plots -------------------------------------------------------------------
TEX_LIKE = ["$\\foo$", "Kosten in $", "C:\\pfad", "100%", "x_{x}^2", "$a$ und $b_{1}$"]


def _ci(mean):
    return {"mean": mean, "ci_low": mean - 0.1, "ci_high": mean + 0.1}


def test_plots_render_tex_like_user_text_literally():
    """matplotlib parses text between two `$` as mathtext: `$\\foo$` raised 'Unknown symbol' and
    broke the report; subject, label and model names must come out as written."""
    import html

    from definemed.report import plots

    models = {name: [_ci(0.5), _ci(0.6)] for name in TEX_LIKE[:3]}
    colors = plots.colors_for(list(models))
    svgs = [
        plots.grouped_bars(TEX_LIKE[3:5], models, colors, "acc $\\bar{x}$", "MCQ"),
        plots.grouped_bars(TEX_LIKE, {"m$1$": [_ci(0.5)] * len(TEX_LIKE)}, colors, "acc", "subjects"),
        plots.heatmap(TEX_LIKE[:3], {TEX_LIKE[0]: {TEX_LIKE[1]: 0.7}}, "pairs"),
        plots.forest([(f"{TEX_LIKE[0]} vs {TEX_LIKE[1]}", _ci(0.5)), (TEX_LIKE[5], _ci(0.4))], colors, "x", "c"),
        plots.stacked_outcomes([(TEX_LIKE[0], 1, 2, 3), (TEX_LIKE[4], 0, 0, 1)], "outcomes"),
        plots.lines({TEX_LIKE[0]: ([0, 1], [2.0, 1.0]), TEX_LIKE[5]: ([0, 1], [3.0, 2.0])}, {}, "step $t$", "loss",
                    "c"),
    ]
    text = html.unescape("".join(str(s) for s in svgs))
    for name in TEX_LIKE:
        assert name in text, name  # literal, not typeset (mathtext drops the `$` and draws glyph paths)
