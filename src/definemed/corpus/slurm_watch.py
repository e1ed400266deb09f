"""Waiting for a phase's Slurm job without hanging: completion markers, job state, a deadline.

datatrove's completion markers (``<logs>/completions/<rank>``) say a task finished; they never
say that one failed. So besides the markers we ask Slurm for the job's state
(``sacct -X -j ID --format=JobID,State --noheader -P``; ``squeue`` where accounting is off) and
stop, in one line naming the phase, the job id and the logs folder, when

* a task ended in a failed state (FAILED, CANCELLED, TIMEOUT, OUT_OF_MEMORY, NODE_FAIL, ...),
* the job waits on a dependency that can no longer be met (``DependencyNeverSatisfied``),
* every task of the job ended but markers are missing (checked twice: shared file systems lag),
* the overall deadline (``executor.slurm.max_wait_h``) passed.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from definemed.errors import UserError

FAILED_STATES = {"FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE",
                 "PREEMPTED", "REVOKED"}
ENDED_STATES = FAILED_STATES | {"COMPLETED"}
NEVER_REASONS = ("DependencyNeverSatisfied", "InvalidDependency")


def completed_tasks(logging_dir: Path) -> int:
    folder = Path(logging_dir) / "completions"
    return len(list(folder.iterdir())) if folder.exists() else 0


def _run(cmd: list[str]) -> str | None:
    """A Slurm command's stdout, or None when it is missing or fails (then we learn nothing from it)."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout if proc.returncode == 0 else None


def sacct_states(job_id: str) -> dict[str, str] | None:
    """{job or array-task id: state} from accounting; None when sacct is unavailable."""
    out = _run(["sacct", "-X", "-j", str(job_id), "--format=JobID,State", "--noheader", "-P"])
    if out is None:
        return None
    states = {}
    for line in out.splitlines():
        if "|" in line:
            jid, state = line.split("|", 1)
            states[jid.strip()] = state.split()[0].strip() if state.strip() else ""  # "CANCELLED by 42"
    return states


def squeue_reasons(job_id: str) -> dict[str, str] | None:
    """{job or array-task id: "STATE|reason"} of the job's tasks still queued or running (none: ended)."""
    out = _run(["squeue", "-h", "-j", str(job_id), "-o", "%i|%T|%r"])
    if out is None:
        return None
    rows = {}
    for line in out.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            rows[parts[0]] = f"{parts[1]}|{parts[2]}"
    return rows


def wait_for_job(logging_dir: Path, tasks: int, job_id: str | int | None, name: str, poll_s: float = 30.0,
                 deadline: float | None = None) -> None:
    """Return once all ``tasks`` completion markers exist; `UserError` when the job cannot get
    there. ``deadline``: a `time.monotonic()` value (None: no limit beyond the job's own)."""
    logs = Path(logging_dir) / "logs"
    where = f"phase '{name}' (Slurm job {job_id}; logs: {Path(logging_dir)}/slurm_logs and {logs})"
    ended_without_markers = 0
    while (done := completed_tasks(logging_dir)) < tasks:
        if job_id in (None, -1, "-1"):  # nothing was launched, yet tasks are missing
            raise UserError(f"{where}: no job was launched but only {done}/{tasks} tasks completed")
        states = sacct_states(str(job_id))
        queued = squeue_reasons(str(job_id))
        failed = sorted(f"{jid} {st}" for jid, st in (states or {}).items() if st in FAILED_STATES)
        if failed:
            raise UserError(f"{where} failed: {', '.join(failed[:5])}; {done}/{tasks} tasks completed")
        never = sorted(jid for jid, row in (queued or {}).items() if row.split("|")[1] in NEVER_REASONS)
        if never:
            raise UserError(f"{where} waits on a failed dependency ({', '.join(never[:5])} "
                            f"DependencyNeverSatisfied): an earlier phase failed")
        all_ended = (states is not None and states and all(st in ENDED_STATES for st in states.values())
                     and not queued) or (states is None and queued is not None and not queued)
        ended_without_markers = ended_without_markers + 1 if all_ended else 0
        if ended_without_markers >= 2:
            raise UserError(f"{where} ended with only {done}/{tasks} tasks completed")
        if deadline is not None and time.monotonic() > deadline:
            raise UserError(f"{where}: not done within executor.slurm.max_wait_h ({done}/{tasks} tasks completed); "
                            f"the job may still be queued or running")
        time.sleep(poll_s)
