"""A phase's statistics from datatrove's per-task files, over ALL its tasks, whichever process ran them.

datatrove writes `logs/<phase>/stats/<rank>.json` when a task finishes (then its completion
marker), and a merged `logs/<phase>/stats.json` at the end of each executor run — merged over the
tasks *that run* executed only. After a kill and a rerun, completed tasks are skipped, so that
file (and anything counted in the process) misses them. Everything in `stats.json` and the
dataset card is therefore summed here from the per-task files, the way datatrove's own
`merge_stats` tool does (`sum(PipelineStats.from_json(...))`).

Wall time is the one number the task files cannot give (they hold each task's step times, not
the phase's elapsed time), so each invocation of a phase appends its wall seconds to
`logs/<phase>/wall_seconds.jsonl`; `phase_seconds` is their sum. An invocation that is
SIGKILLed cannot record its time; `task_seconds` (the summed step times of all tasks) is
complete in every case.
"""

from __future__ import annotations

import json
from pathlib import Path

from datatrove.utils.stats import PipelineStats

# the orchestrator's phases, in pipeline order (folders under logs/)
PHASES = ("prefilter", "classify", "minhash_buckets", "minhash_cluster", "minhash_filter")


def _completed_task_files(logging_dir: Path) -> list[Path]:
    """Per-task stats of tasks with a completion marker (a task killed between writing its
    stats and its marker reruns, and its file is rewritten)."""
    folder, done = Path(logging_dir) / "stats", Path(logging_dir) / "completions"
    if not folder.exists():
        return []
    return [f for f in sorted(folder.glob("*.json")) if (done / f.stem).exists()]


def phase_stats(logging_dir: Path) -> list[dict]:
    """datatrove's step stats (the `stats.json` format) summed over every completed task."""
    merged = PipelineStats()
    for f in _completed_task_files(logging_dir):
        merged = merged + PipelineStats.from_json(json.loads(f.read_text(encoding="utf-8")))
    return [s.to_dict() for s in merged.stats]


def write_phase_stats(logging_dir: Path) -> None:
    """Replace datatrove's per-invocation `stats.json` with the sum over all tasks, so that the
    file a user opens agrees with our `stats.json`."""
    steps = phase_stats(logging_dir)
    if steps:
        (Path(logging_dir) / "stats.json").write_text(json.dumps(steps, indent=4), encoding="utf-8")


def task_seconds(logging_dir: Path) -> float:
    """Seconds spent in the steps of every completed task (each task file holds one task)."""
    return sum(PipelineStats.from_json(json.loads(f.read_text(encoding="utf-8"))).total_time
               for f in _completed_task_files(logging_dir))


def record_wall_seconds(logging_dir: Path, seconds: float) -> None:
    Path(logging_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(logging_dir) / "wall_seconds.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"seconds": round(seconds, 3)}) + "\n")


def wall_seconds(logging_dir: Path) -> float | None:
    path = Path(logging_dir) / "wall_seconds.jsonl"
    if not path.exists():
        return None
    return round(sum(json.loads(line)["seconds"] for line in path.read_text().splitlines() if line.strip()), 3)


def timings(logs: Path) -> dict:
    """{"phase_seconds": {phase: wall seconds over all invocations}, "task_seconds": {phase: step seconds
    over all tasks}} for the phases that ran."""
    present = [p for p in PHASES if (Path(logs) / p).exists()]
    return {"phase_seconds": {p: wall_seconds(Path(logs) / p) for p in present},
            "task_seconds": {p: round(task_seconds(Path(logs) / p), 3) for p in present}}
