"""Shared pieces of tests/faults/test_runs.py and test_printer.py: a tiny corpus config, the real
CLI in a subprocess, and a helper process that holds a run directory's lock."""

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
GOLD = str(ROOT / "data/sample/labels/fineweb2_deu_gold.jsonl")
DOCS = str(ROOT / "data/sample/fineweb2_deu")


def corpus_config(out: Path, **changes) -> dict:
    """The corpus stage on the sample (about 5 s): one task, no annotator, gold labels, word counts."""
    cfg = {"output_dir": str(out), "seed": 0, "input": {"paths": [DOCS]},
           "executor": {"tasks": 1, "workers": 1}, "annotate": {"enabled": False},
           "classifier": {"labels_from": "gold", "gold_labels": GOLD}, "tokenizer": None}
    cfg.update(changes)
    return cfg


def write_yaml(path: Path, cfg: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def cli(*args, cwd=None, timeout=300):
    """``definemed ARGS`` in a subprocess, with this checkout's sources first on the path."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-c", "from definemed.cli import main; main()", *map(str, args)],
                          cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def assert_one_line_error(res, *fragments):
    """Exit 2, exactly one line on stderr, every fragment in it verbatim, no traceback."""
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


HOLDER = """
import sys, time
from definemed.runlock import acquire
acquire(sys.argv[1])
print("locked", flush=True)
time.sleep(120)
"""


def hold_lock(folder: Path) -> subprocess.Popen:
    """A separate process that holds ``folder``'s run lock until killed (it says "locked" once it has it)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ})
    line = proc.stdout.readline()
    if line.strip() != "locked":
        proc.kill()
        raise AssertionError(f"the lock holder did not start: {proc.stderr.read()[-2000:]}")
    return proc
