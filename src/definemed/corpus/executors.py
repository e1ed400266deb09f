"""Executors: the same pipeline runs locally (multi-process), on Slurm or on Ray.

Phases depend on each other's files (annotation needs the prefiltered documents, the
classifier needs the annotations). Which phases Slurm itself can chain, and which need the
orchestrator to wait:

* ``prefilter`` → (annotation, classifier training) → ``classify``: annotation and training run
  Python in the orchestrator between the phases, so the orchestrator waits for ``prefilter``
  before it can go on, and ``classify`` is launched only after training wrote the classifier.
* ``classify`` → ``minhash_buckets`` → ``minhash_cluster`` → ``minhash_filter``: datatrove jobs
  only, so `run_phases` submits them at once, each with datatrove's ``depends=`` (an
  ``afterok`` Slurm dependency on the previous job, as in datatrove's MinHash example); the
  orchestrator then only watches them.

Waiting on Slurm never hangs: `definemed.corpus.slurm_watch` stops with one line naming the
phase, the job id and the logs folder when a job failed, can no longer start (failed
dependency), ended without its completion markers, or passed ``executor.slurm.max_wait_h``.
Locally and on Ray the executor returns when its tasks ended; the markers then say whether all
of them completed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from definemed.corpus.config import ExecutorConfig
from definemed.corpus.slurm_watch import completed_tasks, wait_for_job
from definemed.corpus.task_stats import record_wall_seconds, write_phase_stats
from definemed.errors import UserError

__all__ = ["Phase", "run_phase", "run_phases", "completed_tasks"]


@dataclass
class Phase:
    pipeline: list
    logging_dir: Path
    name: str
    tasks: int | None = None
    workers: int | None = None


def run_phase(pipeline: list, cfg: ExecutorConfig, logging_dir: Path, name: str, tasks: int | None = None,
              workers: int | None = None) -> None:
    """Run one phase to completion. Its wall time is appended on disk (not kept in the process: a
    resumed run sums the time of every invocation), and its `stats.json` is rewritten as the sum
    over all its tasks (datatrove's covers only the tasks this invocation ran)."""
    run_phases([Phase(pipeline, logging_dir, name, tasks, workers)], cfg)


def run_phases(phases: list[Phase], cfg: ExecutorConfig) -> None:
    """Run phases that only read each other's files, in order. On Slurm they are submitted at once,
    chained by datatrove's ``depends=``; elsewhere one after the other. Each phase's recorded wall
    time runs from the end of the previous one (or the start) to its own end, so the times add up."""
    if cfg.kind == "slurm":
        _run_slurm_chain(phases, cfg)
        return
    for p in phases:
        t0 = time.time()
        try:
            _run_phase(p.pipeline, cfg, p.logging_dir, p.name, p.tasks, p.workers)
            write_phase_stats(p.logging_dir)
        finally:
            record_wall_seconds(p.logging_dir, time.time() - t0)


def _run_phase(pipeline: list, cfg: ExecutorConfig, logging_dir: Path, name: str, tasks: int | None,
               workers: int | None) -> None:
    tasks = tasks or cfg.tasks
    if cfg.kind == "local":
        from datatrove.executor import LocalPipelineExecutor

        LocalPipelineExecutor(pipeline, tasks=tasks, workers=min(workers or cfg.workers, tasks),
                              logging_dir=str(logging_dir), skip_completed=True).run()
        _check_complete(logging_dir, tasks, name)
        return
    try:
        from datatrove.executor import RayPipelineExecutor
    except ImportError:
        raise UserError("executor kind 'ray' needs ray: pip install 'datatrove[ray]'") from None
    RayPipelineExecutor(pipeline, tasks=tasks, workers=workers or cfg.workers,
                        logging_dir=str(logging_dir), skip_completed=True).run()  # returns when its tasks ended
    _check_complete(logging_dir, tasks, name)


def _slurm_executor(p: Phase, cfg: ExecutorConfig, depends=None):
    from datatrove.executor import SlurmPipelineExecutor

    s = cfg.slurm
    return SlurmPipelineExecutor(p.pipeline, tasks=p.tasks or cfg.tasks, time=s.time, partition=s.partition,
                                 job_name=p.name, logging_dir=str(p.logging_dir), cpus_per_task=s.cpus_per_task,
                                 mem_per_cpu_gb=s.mem_per_cpu_gb, qos=s.qos, venv_path=s.venv_path,
                                 sbatch_args=s.sbatch_args or None, skip_completed=True, depends=depends)


def _run_slurm_chain(phases: list[Phase], cfg: ExecutorConfig) -> None:
    executors = []
    for p in phases:  # each depends on the previous: Slurm starts it only after that one succeeded
        executors.append(_slurm_executor(p, cfg, depends=executors[-1] if executors else None))
    t0 = time.time()
    executors[-1].run()  # datatrove launches the not yet launched dependencies first
    s = cfg.slurm
    deadline = time.monotonic() + s.max_wait_h * 3600 if s.max_wait_h else None
    for p, ex in zip(phases, executors):
        try:
            wait_for_job(p.logging_dir, p.tasks or cfg.tasks, ex.job_id, p.name, poll_s=s.poll_s, deadline=deadline)
            write_phase_stats(p.logging_dir)
        finally:
            now = time.time()
            record_wall_seconds(p.logging_dir, now - t0)
            t0 = now


def _check_complete(logging_dir: Path, tasks: int, name: str) -> None:
    done = completed_tasks(logging_dir)
    if done < tasks:
        raise RuntimeError(f"phase '{name}': only {done}/{tasks} tasks completed; see {logging_dir}/logs")
