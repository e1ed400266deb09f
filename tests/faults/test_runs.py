"""Run directories under faults (issue #12): a failed run takes a corrected config, a finished one
stays protected, failures are recorded in the manifest, one process per folder, a killed holder's
lock is taken over, and leftovers of interrupted writes are removed by the next run."""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest
import yaml

from definemed.errors import UserError
from definemed.runs import RunDir, read_json

from ._runs import DOCS, ROOT, assert_one_line_error, cli, corpus_config, hold_lock, write_yaml

# ---------------------------------------------------------------------------------------------
# A corpus run that failed on bad input (a tokenizer that does not exist, noticed after the run
# started), then the corrected command: one module-scoped sequence, the stage takes ~5 s.


@pytest.fixture(scope="module")
def corpus_fail_then_fix(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("corpus")
    out = tmp / "run"
    bad = write_yaml(tmp / "bad.yaml", corpus_config(out, tokenizer=str(tmp / "no-such-tokenizer")))
    failed = cli("corpus", "run", bad)
    failed_manifest = read_json(out / "manifest.json") if (out / "manifest.json").exists() else None
    good = write_yaml(tmp / "good.yaml", corpus_config(out))
    fixed = cli("corpus", "run", good)
    return {"tmp": tmp, "out": out, "failed": failed, "failed_manifest": failed_manifest, "fixed": fixed}


def test_corpus_failure_on_bad_input_is_recorded_as_failed(corpus_fail_then_fix):
    r = corpus_fail_then_fix
    assert_one_line_error(r["failed"], "no-such-tokenizer")
    man = r["failed_manifest"]
    assert man["status"] == "failed"
    assert man["error"].startswith("UserError: ") and "no-such-tokenizer" in man["error"]
    assert man["finished"] and man["seconds"] >= 0


def test_corpus_run_failed_on_bad_input_restarts_with_corrected_config(corpus_fail_then_fix):
    r = corpus_fail_then_fix
    assert r["fixed"].returncode == 0, r["fixed"].stderr[-3000:]
    man = read_json(r["out"] / "manifest.json")
    assert man["status"] == "finished" and "error" not in man
    assert yaml.safe_load((r["out"] / "config.yaml").read_text())["tokenizer"] is None  # the new config


def test_finished_run_stays_protected_from_another_config(corpus_fail_then_fix):
    r = corpus_fail_then_fix
    other = write_yaml(r["tmp"] / "other.yaml", corpus_config(r["out"], seed=1))
    res = cli("corpus", "run", other)
    assert_one_line_error(res, str(r["out"]), "finished", "different config")
    assert read_json(r["out"] / "manifest.json")["status"] == "finished"


# ---------------------------------------------------------------------------------------------
# The lifecycle itself (every stage runs inside `with RunDir(...)`)


def test_started_run_with_resumable_state_refuses_another_config_and_says_how_to_start_over(tmp_path):
    with pytest.raises(RuntimeError):
        with RunDir(tmp_path / "r", "train") as run:
            run.start({"lr": 1}, seed=0)
            (run.path / "checkpoints" / "step_0000002").mkdir(parents=True)  # resumable state
            raise RuntimeError("killed mid-run")
    with pytest.raises(UserError, match="to start over") as err:
        with RunDir(tmp_path / "r", "train") as run:
            run.reuse({"lr": 2})
    assert "checkpoints" in str(err.value) and "resume" in str(err.value)


def test_run_failed_before_any_state_takes_the_new_config(tmp_path):
    with pytest.raises(UserError):
        with RunDir(tmp_path / "r", "train") as run:
            run.start({"data": "missing.parquet"}, seed=0)
            raise UserError("data not found: missing.parquet")
    with RunDir(tmp_path / "r", "train") as run:
        assert run.reuse({"data": "fixed.parquet"}) is None
        run.start({"data": "fixed.parquet"}, seed=0)
        run.finish({"ok": 1})
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text()) == {"data": "fixed.parquet"}


@pytest.mark.parametrize("exc, reason", [
    (UserError("input not found: x.parquet"), "UserError: input not found: x.parquet"),
    (ZeroDivisionError("division by zero\nmore detail"), "ZeroDivisionError: division by zero"),
    (KeyboardInterrupt(), "KeyboardInterrupt"),
])
def test_failure_is_recorded_in_the_manifest(tmp_path, exc, reason):
    with pytest.raises(type(exc)):
        with RunDir(tmp_path / "r", "merge") as run:
            run.start({"a": 1}, seed=0)
            raise exc
    man = read_json(tmp_path / "r" / "manifest.json")
    assert man["status"] == "failed" and man["error"] == reason
    assert man["finished"] is not None and "seconds" in man


def test_corpus_bug_is_recorded_as_failed(tmp_path, monkeypatch):
    """A bug (not a user error) inside a real stage: the manifest says failed, with the reason."""
    import definemed.corpus.train_classifier as tc
    from definemed.config import validate_config
    from definemed.corpus.config import CorpusConfig
    from definemed.corpus.pipeline import run_corpus

    def broken(*a, **k):
        raise KeyError("labels")

    monkeypatch.setattr(tc, "train_phase", broken)
    cfg = validate_config(CorpusConfig, corpus_config(tmp_path / "run", input={"paths": [DOCS], "limit": 40}))
    with pytest.raises(KeyError):
        run_corpus(cfg)
    man = read_json(tmp_path / "run" / "manifest.json")
    assert man["status"] == "failed" and man["error"] == "KeyError: 'labels'"


def test_eval_failure_is_recorded_and_releases_the_lock(tmp_path):
    from definemed.eval.config import MCQEvalConfig
    from definemed.eval.rundir import EvalRun
    from definemed.runlock import is_held
    from definemed.runs import guarded

    @guarded
    def evaluation():
        EvalRun(tmp_path / "ev", "mcq").start(MCQEvalConfig(models=["m"], data=tmp_path / "x.jsonl", output_dir=tmp_path / "ev"))
        raise RuntimeError("model crashed")

    with pytest.raises(RuntimeError):
        evaluation()
    man = read_json(tmp_path / "ev" / "manifest.json")
    assert man["status"] == "failed" and man["error"] == "RuntimeError: model crashed"
    assert not is_held(tmp_path / "ev")


def test_eval_manifest_seconds_cover_all_sections(tmp_path, monkeypatch):
    """An eval folder holds several evaluations: its `seconds` is their sum, not the last one's."""
    import definemed.runs as runs
    from definemed.eval.config import MCQEvalConfig
    from definemed.eval.rundir import EvalRun

    clock = [1000.0]
    monkeypatch.setattr(runs.time, "time", lambda: clock[0])
    cfg = MCQEvalConfig(models=["m"], data=tmp_path / "x.jsonl", output_dir=tmp_path / "ev")
    run = EvalRun(tmp_path / "ev", "mcq").start(cfg)
    clock[0] += 120.0  # two minutes of scoring
    run.finish({"m": {"acc": 0.5}})
    run = EvalRun(tmp_path / "ev", "failures").start(cfg)
    clock[0] += 0.09
    run.finish({"m": {"x": 1}})
    man = read_json(tmp_path / "ev" / "manifest.json")
    assert man["section_seconds"] == {"mcq": 120.0, "failures": 0.09}
    assert man["seconds"] == 120.09


def test_stage_seconds_include_the_work_before_start(tmp_path, monkeypatch):
    """`seconds` covers the stage from its beginning (checks and loading before `start` included)."""
    import definemed.runs as runs

    clock = [0.0]
    monkeypatch.setattr(runs.time, "time", lambda: clock[0])
    with RunDir(tmp_path / "r", "merge") as run:
        clock[0] += 30.0  # pre-checks
        run.start({"a": 1})
        clock[0] += 60.0
        run.finish({})
    assert read_json(tmp_path / "r" / "manifest.json")["seconds"] == 90.0


# ---------------------------------------------------------------------------------------------
# One process per run directory


@pytest.mark.parametrize("command", ["corpus", "pipeline"])
def test_second_run_on_a_busy_folder_exits_2_naming_the_holder(tmp_path, command):
    out = tmp_path / "run"
    if command == "corpus":
        args = ["corpus", "run", write_yaml(tmp_path / "c.yaml", corpus_config(out))]
    else:
        args = ["pipeline", write_yaml(tmp_path / "p.yaml", {
            "output_dir": str(out), "stages": ["report"], "corpus_config": None, "train_config": None,
            "merge_config": None})]
    holder = hold_lock(out)
    try:
        res = cli(*args)
        line = assert_one_line_error(res, str(out), "in use", f"pid {holder.pid}", socket.gethostname())
        assert "started" in line
        assert not (out / "manifest.json").exists()  # the refused run wrote nothing
    finally:
        holder.kill()
        holder.wait()


def test_lock_of_a_killed_run_is_taken_over(tmp_path):
    out = tmp_path / "run"
    holder = hold_lock(out)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    # a run that then fails fast on its own input: it got past the lock, and said whose it took over
    bad = write_yaml(tmp_path / "c.yaml", corpus_config(out, tokenizer=str(tmp_path / "no-such-tokenizer")))
    res = cli("corpus", "run", bad)
    assert res.returncode == 2 and "in use" not in res.stderr, res.stderr
    assert "took over" in res.stderr and f"pid {holder.pid}" in res.stderr
    assert "no-such-tokenizer" in res.stderr
    assert not (out / ".definemed.lock.json").exists()  # released at exit, holder file gone


def test_same_process_may_lock_a_folder_twice(tmp_path):
    """The pipeline holds its folder while an eval suite re-takes it per evaluation."""
    from definemed.runlock import held, is_held

    with held(tmp_path):
        with RunDir(tmp_path, "eval") as run:
            run.start({"a": 1})
            run.finish({})
        assert is_held(tmp_path)
    assert not is_held(tmp_path)


# ---------------------------------------------------------------------------------------------
# Leftovers of interrupted writes


def _plant_leftovers(folder):
    (folder / ".final-abc123").mkdir(parents=True)
    (folder / ".final-abc123" / "model.safetensors").write_bytes(b"x" * 1000)
    (folder / "checkpoints" / ".tmp-step-q1").mkdir(parents=True)
    (folder / "checkpoints" / "step_0000002").mkdir(parents=True)
    (folder / ".t0.5.partial").mkdir()
    (folder / ".metrics.json.k3j2.tmp").write_text("{")
    (folder / "keep.txt").write_text("mine")


def test_next_run_removes_leftovers_of_interrupted_writes(tmp_path):
    run_dir = tmp_path / "r"
    _plant_leftovers(run_dir)
    with RunDir(run_dir, "train"):
        pass
    names = {str(p.relative_to(run_dir)) for p in run_dir.rglob("*")}
    assert not any(n.startswith(".final-") or ".tmp-step-" in n or n.endswith((".partial", ".tmp")) for n in names)
    assert {"keep.txt", "checkpoints/step_0000002"} <= names


def test_leftovers_are_kept_while_another_run_holds_the_folder(tmp_path):
    run_dir = tmp_path / "r"
    _plant_leftovers(run_dir)
    holder = hold_lock(run_dir)
    try:
        with pytest.raises(UserError, match="in use"):
            with RunDir(run_dir, "train"):
                pass
        assert (run_dir / ".final-abc123" / "model.safetensors").exists()  # maybe the holder's own save
    finally:
        holder.kill()
        holder.wait()


def test_corpus_stage_removes_leftovers(tmp_path):
    out = tmp_path / "run"
    (out / ".stats.json.x1.tmp").parent.mkdir(parents=True)
    (out / ".stats.json.x1.tmp").write_text("{")
    bad = write_yaml(tmp_path / "c.yaml", corpus_config(out, tokenizer=str(tmp_path / "no-such-tokenizer")))
    cli("corpus", "run", bad)
    assert not (out / ".stats.json.x1.tmp").exists()


SIGTERM_IN_STAGE = """
import os, signal, sys, time
import definemed.corpus.train_classifier as tc

def killed(*a, **k):  # Slurm's time limit (or `kill`) arrives in the middle of the stage
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)

tc.train_phase = killed
from definemed.cli import main
main()
"""


def test_sigterm_is_recorded_as_failed_and_releases_the_folder(tmp_path):
    """SIGTERM (Slurm's time limit, `kill`) must not leave the run "running": the manifest says
    failed with the reason, the command exits 143 with one line, and the next run may start."""
    cfg = write_yaml(tmp_path / "c.yaml", corpus_config(tmp_path / "run", input={"paths": [DOCS], "limit": 40}))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    res = subprocess.run([sys.executable, "-c", SIGTERM_IN_STAGE, "corpus", "run", str(cfg)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 143, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith("error: terminated"), res.stderr[-500:]
    man = read_json(tmp_path / "run" / "manifest.json")
    assert man["status"] == "failed" and "SIGTERM" in man["error"], man
    assert not (tmp_path / "run" / ".definemed.lock.json").exists()
