"""The Slurm orchestrator cannot hang (issue #12): fake `sbatch`, `sacct`, `squeue` on PATH.

The fake sbatch numbers jobs from 101 and, in mode "complete", writes the completion markers of
the array's tasks as a finished job would; sacct reports ``state`` (or ``state_<id>``), squeue
the lines of ``squeue_<id>``. `time.sleep` is replaced by a counter that gives up after many
polls, so the old endless wait fails the test instead of hanging it.
"""

import json
import os
import re
import stat
import sys
import time

import pytest

from definemed.corpus.config import ExecutorConfig
from definemed.errors import UserError

SBATCH = r'''
import json, os, re, sys
from pathlib import Path
d = Path(os.environ["FAKE_SLURM"])
log = d / "sbatch.jsonl"
n = len(log.read_text().splitlines()) if log.exists() else 0
job = 101 + n
script = Path(sys.argv[-1]).read_text()
with log.open("a") as f:
    f.write(json.dumps({"job": job, "args": sys.argv[1:-1], "merge": "merge_stats" in script}) + "\n")
m = re.search(r"launch_pickled_pipeline (\S+)/executor.pik", script)
if m and os.environ.get("FAKE_MODE") == "complete":
    done = Path(m.group(1)) / "completions"
    done.mkdir(parents=True, exist_ok=True)
    for rank in json.loads((Path(m.group(1)) / "ranks_to_run.json").read_text()):
        (done / f"{rank:05d}").touch()
print(f"Submitted batch job {job}")
'''
SACCT = r'''
import os, sys
from pathlib import Path
d = Path(os.environ["FAKE_SLURM"])
job = sys.argv[sys.argv.index("-j") + 1]
f = d / f"state_{job}" if (d / f"state_{job}").exists() else d / "state"
print(f"{job}|{f.read_text().strip() if f.exists() else 'COMPLETED'}")
'''
SQUEUE = r'''
import os, sys
from pathlib import Path
d = Path(os.environ["FAKE_SLURM"])
job = sys.argv[sys.argv.index("-j") + 1]
f = d / f"squeue_{job}"
print(f.read_text().strip() if f.exists() else "")
'''


@pytest.fixture()
def slurm(tmp_path, monkeypatch):
    """The fake Slurm's folder; FAKE_MODE=fail unless a test says "complete"."""
    d = tmp_path / "fake_slurm"
    (d / "bin").mkdir(parents=True)
    for name, code in (("sbatch", SBATCH), ("sacct", SACCT), ("squeue", SQUEUE)):
        exe = d / "bin" / name
        exe.write_text(f"#!{sys.executable}\n{code}")
        exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{d / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM", str(d))
    monkeypatch.setenv("FAKE_MODE", "fail")
    polls, real_sleep = {"n": 0}, time.sleep

    def sleep(seconds):
        if not sys._getframe(1).f_globals.get("__name__", "").startswith("definemed"):
            return real_sleep(seconds)  # subprocess and friends poll with short sleeps too
        polls["n"] += 1
        if polls["n"] > 200:
            raise AssertionError("the orchestrator is still waiting after 200 polls: it hangs")

    monkeypatch.setattr("time.sleep", sleep)
    return d


def ex(**slurm):
    return ExecutorConfig(kind="slurm", tasks=2, slurm={"poll_s": 0.01, **slurm} if slurm else {})


def submitted(d):
    return [json.loads(line) for line in (d / "sbatch.jsonl").read_text().splitlines()]


def one_line(err):
    return "\n" not in str(err.value)


def test_failed_job_stops_with_one_line_naming_phase_job_and_logs(slurm, tmp_path):
    from definemed.corpus.executors import run_phase

    (slurm / "state").write_text("FAILED")
    logs = tmp_path / "logs" / "prefilter"
    with pytest.raises(UserError) as err:
        run_phase([], ex(), logs, "prefilter")
    assert "prefilter" in str(err.value) and "101" in str(err.value) and str(logs) in str(err.value)
    assert "FAILED" in str(err.value) and one_line(err)


def test_job_that_ended_without_its_markers_stops(slurm, tmp_path):
    """sacct says COMPLETED, yet no task wrote its marker (e.g. a wrong venv): stop, do not wait."""
    from definemed.corpus.executors import run_phase

    (slurm / "state").write_text("COMPLETED")
    with pytest.raises(UserError, match=r"ended with only 0/2 tasks completed") as err:
        run_phase([], ex(), tmp_path / "logs" / "classify", "classify")
    assert "101" in str(err.value) and one_line(err)


def test_pending_forever_stops_at_the_deadline(slurm, tmp_path):
    from definemed.corpus.executors import run_phase

    (slurm / "state").write_text("PENDING")
    (slurm / "squeue_101").write_text("101_0|PENDING|Priority\n101_1|PENDING|Priority")
    with pytest.raises(UserError, match="max_wait_h") as err:
        run_phase([], ex(max_wait_h=1e-6), tmp_path / "logs" / "prefilter", "prefilter")
    assert "101" in str(err.value) and one_line(err)


def test_dependency_never_satisfied_stops(slurm, tmp_path):
    from definemed.corpus.executors import run_phase

    (slurm / "state").write_text("PENDING")
    (slurm / "squeue_101").write_text("101|PENDING|DependencyNeverSatisfied")
    with pytest.raises(UserError, match="DependencyNeverSatisfied") as err:
        run_phase([], ex(), tmp_path / "logs" / "minhash_buckets", "minhash_buckets")
    assert "minhash_buckets" in str(err.value) and one_line(err)


def test_datatrove_phases_are_chained_by_slurm_dependencies(slurm, tmp_path, monkeypatch):
    """classify → minhash_buckets: both submitted at once, the second with afterok on the first;
    the orchestrator then only waits for the markers."""
    from definemed.corpus.executors import Phase, run_phases

    monkeypatch.setenv("FAKE_MODE", "complete")
    logs = tmp_path / "logs"
    run_phases([Phase([], logs / "classify", "classify"), Phase([], logs / "minhash_buckets", "minhash_buckets",
                                                                 tasks=3)], ex())
    jobs = [j for j in submitted(slurm) if not j["merge"]]
    assert len(jobs) == 2 and not any(a.startswith("--dependency") for a in jobs[0]["args"])
    assert f"--dependency=afterok:{jobs[0]['job']}" in jobs[1]["args"]
    assert len(list((logs / "minhash_buckets" / "completions").iterdir())) == 3
    assert (logs / "classify" / "wall_seconds.jsonl").exists()


def test_a_failed_first_link_of_the_chain_names_that_phase(slurm, tmp_path):
    from definemed.corpus.executors import Phase, run_phases

    (slurm / "state_101").write_text("OUT_OF_MEMORY")
    (slurm / "state").write_text("PENDING")
    logs = tmp_path / "logs"
    with pytest.raises(UserError) as err:
        run_phases([Phase([], logs / "classify", "classify"), Phase([], logs / "minhash_buckets", "minhash_buckets")],
                   ex())
    assert re.search(r"phase 'classify' \(Slurm job 101", str(err.value)) and "OUT_OF_MEMORY" in str(err.value)


def test_completed_job_returns(slurm, tmp_path, monkeypatch):
    """Guards what already held: a job that completes ends the wait."""
    from definemed.corpus.executors import run_phase

    monkeypatch.setenv("FAKE_MODE", "complete")
    run_phase([], ex(), tmp_path / "logs" / "prefilter", "prefilter")
    assert len(list((tmp_path / "logs" / "prefilter" / "completions").iterdir())) == 2
