"""Reading run directories for the report: what each stage wrote, nothing more.

A run directory is recognised by its ``manifest.json`` and the ``stage`` recorded there (eval,
train, merge, corpus, demo). The report reads only the files a stage publishes (DESIGN.md: a
stage reads the outputs of earlier stages, never their internals):

- eval: ``mcq.json``, ``mcq/<label>.jsonl`` (for the chance level), ``pairwise.json``, ``failures.json``, ``failures_examples.jsonl``,
  ``answers/*.jsonl``
- train: ``metrics.json`` (held-out perplexities at start and end), ``metrics.jsonl`` (loss curve)
- merge: ``sweep.json`` (one row per sweep point and parent)
- corpus: ``stats.json``
- demo: ``metrics.json`` (base-model perplexities)

and for every run ``config.yaml`` (shown verbatim) and ``manifest.json``. A file that is absent
or unreadable is simply missing (its section is skipped with a note); only a path that is not a
run directory at all is a user error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from definemed.data.io import read_jsonl_tolerant
from definemed.errors import UserError

STAGES = ("eval", "train", "merge", "corpus", "demo")
EVAL_FILES = ("mcq.json", "pairwise.json", "failures.json", "study.json")


@dataclass
class Run:
    path: Path
    stage: str
    manifest: dict
    config_text: str | None = None
    metrics: dict = field(default_factory=dict)
    files: dict[str, Any] = field(default_factory=dict)  # file name → parsed content
    answers: dict[str, list[dict]] = field(default_factory=dict)  # eval: model label → answer rows
    problems: list[str] = field(default_factory=list)  # files that exist but could not be read

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def status(self) -> str:
        return str(self.manifest.get("status", "unknown"))


def _json(run: Run, name: str) -> Any:
    path = run.path / name
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        run.problems.append(f"{name}: unreadable ({type(err).__name__})")
        return None


def _jsonl(run: Run, path: Path) -> list[dict]:
    try:
        return read_jsonl_tolerant(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        run.problems.append(f"{path.relative_to(run.path)}: unreadable ({type(err).__name__})")
        return []


def load_run(path: str | Path) -> Run:
    """One run directory; UserError when the path is missing or is not a run directory."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"run directory not found: {path}")
    if not path.is_dir():
        raise UserError(f"{path}: not a directory (give a run directory such as runs/eval/<name>)")
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file():
        raise UserError(f"{path}: not a run directory (no manifest.json)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(f"{manifest_path}: not valid JSON") from None
    stage = manifest.get("stage") if isinstance(manifest, dict) else None
    if stage not in STAGES:
        raise UserError(f"{manifest_path}: field 'stage' must be one of {', '.join(STAGES)}, got {stage!r}")
    run = Run(path=path, stage=stage, manifest=manifest)
    cfg = path / "config.yaml"
    if cfg.is_file():
        run.config_text = cfg.read_text(encoding="utf-8", errors="replace")
    metrics = _json(run, "metrics.json")
    run.metrics = metrics if isinstance(metrics, dict) else {}
    if stage == "eval":
        for name in EVAL_FILES:
            data = _json(run, name)
            if isinstance(data, dict):
                run.files[name] = data
        items = {f.stem: _jsonl(run, f) for f in sorted((path / "mcq").glob("*.jsonl"))}
        if items:
            run.files["mcq_items"] = items
        examples = path / "failures_examples.jsonl"
        if examples.is_file():
            run.files["failures_examples.jsonl"] = _jsonl(run, examples)
        for f in sorted((path / "answers").glob("*.jsonl")):
            rows = _jsonl(run, f)
            if rows:
                run.answers[str(rows[0].get("model", f.stem))] = rows
    elif stage == "merge":
        data = _json(run, "sweep.json")
        if isinstance(data, dict):
            run.files["sweep.json"] = data
    elif stage == "corpus":
        data = _json(run, "stats.json")
        if isinstance(data, dict):
            run.files["stats.json"] = data
    elif stage == "train" and (path / "metrics.jsonl").is_file():
        run.files["metrics.jsonl"] = _jsonl(run, path / "metrics.jsonl")
    return run


def load_runs(paths: list[str | Path]) -> list[Run]:
    if not paths:
        raise UserError("give at least one run directory")
    runs = [load_run(p) for p in paths]
    seen: set[Path] = set()
    for r in runs:
        key = r.path.resolve()
        if key in seen:
            raise UserError(f"{r.path}: given twice")
        seen.add(key)
    return runs
