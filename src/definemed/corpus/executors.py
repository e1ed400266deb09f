"""Executors: the same pipeline runs locally (multi-process), on Slurm or on Ray.

Phases depend on each other's files (annotation needs the prefiltered documents, the
classifier needs the annotations), so the orchestrator runs one phase at a time and waits:
locally that is automatic; on Slurm/Ray we wait for datatrove's completion markers.
"""

from __future__ import annotations

import time
from pathlib import Path

from definemed.corpus.config import ExecutorConfig
from definemed.corpus.task_stats import record_wall_seconds, write_phase_stats
from definemed.errors import UserError


def run_phase(pipeline: list, cfg: ExecutorConfig, logging_dir: Path, name: str, tasks: int | None = None,
              workers: int | None = None) -> None:
    """Run one phase to completion. Its wall time is appended on disk (not kept in the process: a
    resumed run sums the time of every invocation), and its `stats.json` is rewritten as the sum
    over all its tasks (datatrove's covers only the tasks this invocation ran)."""
    t0 = time.time()
    try:
        _run_phase(pipeline, cfg, logging_dir, name, tasks, workers)
        write_phase_stats(logging_dir)
    finally:
        record_wall_seconds(logging_dir, time.time() - t0)


def _run_phase(pipeline: list, cfg: ExecutorConfig, logging_dir: Path, name: str, tasks: int | None,
               workers: int | None) -> None:
    tasks = tasks or cfg.tasks
    if cfg.kind == "local":
        from datatrove.executor import LocalPipelineExecutor

        LocalPipelineExecutor(pipeline, tasks=tasks, workers=min(workers or cfg.workers, tasks),
                              logging_dir=str(logging_dir), skip_completed=True).run()
        _check_complete(logging_dir, tasks, name)
        return
    if cfg.kind == "slurm":
        from datatrove.executor import SlurmPipelineExecutor

        s = cfg.slurm
        SlurmPipelineExecutor(pipeline, tasks=tasks, time=s.time, partition=s.partition, job_name=name,
                              logging_dir=str(logging_dir), cpus_per_task=s.cpus_per_task,
                              mem_per_cpu_gb=s.mem_per_cpu_gb, qos=s.qos, venv_path=s.venv_path,
                              sbatch_args=s.sbatch_args or None, skip_completed=True).run()
    else:
        try:
            from datatrove.executor import RayPipelineExecutor
        except ImportError:
            raise UserError("executor kind 'ray' needs ray: pip install 'datatrove[ray]'") from None
        RayPipelineExecutor(pipeline, tasks=tasks, workers=workers or cfg.workers,
                            logging_dir=str(logging_dir), skip_completed=True).run()
    wait_for_completion(logging_dir, tasks)


def completed_tasks(logging_dir: Path) -> int:
    folder = Path(logging_dir) / "completions"
    return len(list(folder.iterdir())) if folder.exists() else 0


def wait_for_completion(logging_dir: Path, tasks: int, poll_s: float = 30.0) -> None:
    while completed_tasks(logging_dir) < tasks:
        time.sleep(poll_s)


def _check_complete(logging_dir: Path, tasks: int, name: str) -> None:
    done = completed_tasks(logging_dir)
    if done < tasks:
        raise RuntimeError(f"phase '{name}': only {done}/{tasks} tasks completed; see {logging_dir}/logs")
