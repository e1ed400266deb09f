"""The eval run directory (``runs/eval/<name>/``) and the labels of the models evaluated in it
(their identity for caches: `definemed.models.fingerprint`).

One eval run holds several evaluations (``mcq.json``, ``answers/*.jsonl``, later pairwise
judging and failure modes), so its ``config.yaml`` and ``metrics.json`` have one section per
evaluation; running one evaluation replaces only its own section and keeps the others, and the
manifest keeps the inputs and outputs of all of them, and the seconds of each
(``section_seconds``; ``seconds`` is their sum, the work the folder's results took).

An evaluation takes the folder's lock at `EvalRun.start` and gives it back at `EvalRun.finish`;
its function is wrapped in `definemed.runs.guarded`, so an exception records it as failed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from definemed.runs import RunDir, atomic_write_json, read_json


class EvalRun:
    def __init__(self, path: str | Path, section: str):
        self.path = Path(path)
        self.section = section
        self.run = RunDir(self.path, "eval")

    def start(self, config: Any, seed: int | None = None, inputs: dict[str, str | Path] | None = None) -> "EvalRun":
        self.run.acquire()  # before reading the other sections: another process may be writing them
        cfg_path = self.path / "config.yaml"
        sections = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) if cfg_path.exists() else None
        sections = sections if isinstance(sections, dict) else {}
        old = _read(self.run.manifest_path)
        sections[self.section] = config.model_dump(mode="json")
        self.run.start(sections, seed=seed, inputs={f"{self.section}.{k}": v for k, v in (inputs or {}).items()})
        self.run.manifest["inputs"] = {**old.get("inputs", {}), **self.run.manifest["inputs"]}
        self._old_outputs = old.get("outputs", {})
        self._old_seconds = old.get("section_seconds", {})
        atomic_write_json(self.run.manifest_path, self.run.manifest)
        return self

    def finish(self, metrics: dict[str, Any], outputs: dict[str, str | Path] | None = None) -> None:
        all_metrics = _read(self.run.metrics_path)
        all_metrics[self.section] = metrics
        seconds = {**self._old_seconds, self.section: self.run.seconds()}
        self.run.finish(all_metrics, outputs={**self._old_outputs, **(outputs or {})},
                        manifest={"section_seconds": seconds, "seconds": round(sum(seconds.values()), 2)})


def _read(path: Path) -> dict:
    try:
        data = read_json(path)
        return data if isinstance(data, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}


def split_model_arg(arg: str) -> tuple[str | None, str]:
    """``label=ref`` → (label, ref); a plain ref → (None, ref)."""
    if "=" in arg and not Path(arg).exists():
        label, ref = arg.split("=", 1)
        return label.strip(), ref.strip()
    return None, arg


def model_labels(args: list[str]) -> list[tuple[str, str]]:
    """(label, ref) per model argument; labels are file-name safe and unique."""
    out, seen = [], set()
    for arg in args:
        label, ref = split_model_arg(arg)
        if label is None:
            p = Path(ref)
            if p.exists():  # run outputs such as runs/train/x/final or runs/merge/y/t0.5: keep the run name
                generic = p.name in ("final", "merged") or re.fullmatch(r"t?[\d.]+", p.name)
                label = f"{p.parent.name}-{p.name}" if generic else p.name
            else:
                label = ref.replace("/", "__")
        label = re.sub(r"[^\w.+-]", "_", label) or "model"
        base, n = label, 2
        while label in seen:
            label, n = f"{base}-{n}", n + 1
        seen.add(label)
        out.append((label, ref))
    return out
