"""Run directories: resolved config, manifest (inputs + hashes, versions, seed, times), metrics.

Every stage writes through here so that all runs look the same on disk, and every file is
written atomically (temp file + rename): a crash never leaves a half-written JSON behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

import yaml

from definemed.runlock import HOLDER_NAME, LOCK_NAME, is_held
from definemed.runlock import acquire as acquire_lock
from definemed.runlock import release as release_lock

# Packages whose versions decide results; recorded in every manifest.
TRACKED_PACKAGES = (
    "definemed", "torch", "transformers", "accelerate", "datatrove", "mergekit", "lm-eval",
    "safetensors", "tokenizers", "numpy", "pyarrow", "scikit-learn",
)


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=False) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_path(path: str | Path) -> str:
    """Hash of a file, or of a folder's files (relative names + contents, sorted)."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    h = hashlib.sha256()
    for p in sorted(q for q in path.rglob("*") if q.is_file()):
        h.update(str(p.relative_to(path)).encode())
        h.update(sha256_file(p).encode())
    return h.hexdigest()


def package_versions(names: Iterable[str] = TRACKED_PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def config_yaml(config: Any) -> str:
    """The resolved config as written to config.yaml (pydantic models in JSON mode)."""
    data = config.model_dump(mode="json") if hasattr(config, "model_dump") else config
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# The run directory's own bookkeeping: not state that a run could resume from.
BOOKKEEPING = frozenset({"config.yaml", "manifest.json", "metrics.json", "run.log", LOCK_NAME, HOLDER_NAME})


def is_leftover(name: str) -> bool:
    """Names of half-written things that only an interrupted write leaves behind: atomic writes'
    ``.<name>.<random>.tmp``, the final model's ``.final-*`` and checkpoints' ``.tmp-step-*``
    (train), merge points' ``.<label>.partial``."""
    return name.startswith(".") and (name.endswith(".tmp") or name.endswith(".partial")
                                     or name.startswith((".final-", ".tmp-step-")))


def remove_leftovers(folder: Path) -> list[str]:
    """Delete `is_leftover` files and folders anywhere below ``folder``; returns their relative paths.
    Only safe while holding the folder's lock (another run's writes in progress look the same)."""
    import shutil

    removed = []
    for root, dirs, files in os.walk(folder):
        for name in [d for d in dirs if is_leftover(d)]:
            shutil.rmtree(Path(root) / name, ignore_errors=True)
            dirs.remove(name)
            removed.append(str((Path(root) / name).relative_to(folder)))
        for name in files:
            if is_leftover(name):
                (Path(root) / name).unlink(missing_ok=True)
                removed.append(str((Path(root) / name).relative_to(folder)))
    return removed


def _note(text: str) -> None:
    """A notice on the console (user text: never parsed as markup) and in the log."""
    from definemed.console import console

    console.print(text, style="yellow", markup=False, highlight=False, soft_wrap=True)
    logging.getLogger("definemed.runs").info(text)


def _reason(err: BaseException) -> str:
    """One line: exception type and the first line of its message."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


# Runs of this process that hold their lock or log (innermost last); `guarded` closes them.
_open: list["RunDir"] = []


class RunDir:
    """One stage run on disk: ``config.yaml``, ``manifest.json``, ``metrics.json``, ``run.log``.

    Use it as a context manager around the whole stage::

        with RunDir(out, "train") as run:     # the folder's lock (a second run exits 2), leftovers removed
            if (done := run.reuse(cfg)) is not None:
                return done
            run.start(cfg, ...)               # manifest: status "running"
            ...
            run.finish(metrics)               # status "finished", seconds = the whole stage
        # an exception (user error, bug, Ctrl-C) leaves status "failed" with its one-line reason

    ``start`` without ``with`` takes the lock itself and ``finish`` gives it back (`guarded`
    records failures then). ``lock=False``: a process that shares the run with a main process
    (the other ranks of a DDP run) and never writes its manifest.
    """

    def __init__(self, path: str | Path, stage: str, lock: bool = True):
        self.path = Path(path)
        self.stage = stage
        self.manifest_path = self.path / "manifest.json"
        self.metrics_path = self.path / "metrics.json"
        self._t0 = time.time()
        self._log_handler: logging.Handler | None = None
        self._lock = lock
        self._locked = False
        self._entered = False
        self._state = "new"  # new → started → finished | failed

    # -- lock and lifetime ---------------------------------------------------------------
    def __enter__(self) -> "RunDir":
        self._entered = True
        self.acquire()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.close(exc)
        return False

    def acquire(self) -> "RunDir":
        """Take the folder's lock (no-op if held or ``lock=False``); the first holder in this
        process removes what interrupted writes left behind."""
        if self._lock and not self._locked:
            first = not is_held(self.path)
            acquire_lock(self.path)
            self._locked = True
            _open.append(self)
            if first and (removed := remove_leftovers(self.path)):
                _note(f"{self.path}: removed leftovers of an interrupted run: {', '.join(removed)}")
        return self

    def close(self, err: BaseException | None = None) -> None:
        """End this process's hold on the run: a started, unfinished run with ``err`` is recorded
        as failed; then the log is detached and the lock released."""
        try:
            if err is not None and self._state == "started":
                self.fail(err)
        finally:
            self._detach_log()
            if self in _open:
                _open.remove(self)
            if self._locked:
                self._locked = False
                release_lock(self.path)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, config: Any, seed: int | None = None,
              inputs: dict[str, str | Path] | None = None) -> "RunDir":
        self.acquire()
        if self not in _open:
            _open.append(self)  # unlocked ranks: the log handler still needs closing
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.path / "config.yaml", config_yaml(config))
        input_hashes = {}
        for key, p in (inputs or {}).items():
            p = Path(p)
            input_hashes[key] = {"path": str(p), "sha256": sha256_path(p) if p.exists() else None}
        self.manifest = {
            "stage": self.stage,
            "status": "running",
            "seed": seed,
            "inputs": input_hashes,
            "versions": package_versions(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "command": sys.argv,
            "started": _now(),
            "finished": None,
        }
        atomic_write_json(self.manifest_path, self.manifest)
        self._state = "started"
        self._attach_log()
        return self

    def seconds(self) -> float:
        """Since this RunDir was made: the stage's own duration (checks, loading, work, saving)."""
        return round(time.time() - self._t0, 2)

    def finish(self, metrics: dict[str, Any], outputs: dict[str, str | Path] | None = None,
               manifest: dict[str, Any] | None = None) -> None:
        """``manifest``: facts about the run's data that belong beside its inputs (e.g. the
        held-out check's ``heldout_overlap_docs``); applied last."""
        atomic_write_json(self.metrics_path, metrics)
        self.manifest.update(
            status="finished",
            finished=_now(),
            seconds=self.seconds(),
            outputs={k: str(v) for k, v in (outputs or {}).items()},
        )
        self.manifest.update(manifest or {})
        atomic_write_json(self.manifest_path, self.manifest)
        self._state = "finished"
        if not self._entered:
            self.close()
        else:
            self._detach_log()

    def fail(self, err: BaseException) -> None:
        """Record the run as failed: status, the one-line reason, finish time and duration."""
        self.manifest.update(status="failed", error=_reason(err), finished=_now(), seconds=self.seconds())
        atomic_write_json(self.manifest_path, self.manifest)
        self._state = "failed"

    def state_files(self) -> list[str]:
        """What the folder holds beyond the run's bookkeeping: checkpoints, completion markers,
        caches, outputs (anything a rerun would resume from or reuse)."""
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if p.name not in BOOKKEEPING and not is_leftover(p.name))

    def ensure_same_config(self, config: Any) -> None:
        """Refuse to resume or skip into a folder that holds a run with a different config whose
        checkpoints, completion markers or caches would silently mix two experiments. A run that
        failed (or was killed) before leaving any such state takes the new config."""
        from definemed.errors import UserError

        path = self.path / "config.yaml"
        if not path.exists() or yaml.safe_load(path.read_text(encoding="utf-8")) == yaml.safe_load(config_yaml(config)):
            return
        if self.is_finished():
            raise UserError(f"{self.path} holds a finished {self.stage} run with a different config: "
                            "use another output_dir, or delete the folder to start over")
        if state := self.state_files():
            shown = ", ".join(state[:4]) + (", ..." if len(state) > 4 else "")
            raise UserError(f"{self.path} holds an unfinished {self.stage} run with a different config and "
                            f"resumable state ({shown}): rerun with its config ({path}) to resume, or delete "
                            "the folder (or use another output_dir) to start over")
        _note(f"{self.path}: the previous {self.stage} run ended before producing anything; its config is replaced")

    def reuse(self, config: Any, announce: bool = True) -> dict | None:
        """The metrics of a finished run with this config (a rerun is a no-op), else None.
        Refuses a folder that holds a run with a different config (see `ensure_same_config`)."""
        self.ensure_same_config(config)
        if not self.is_finished():
            return None
        if announce:
            from rich.text import Text

            from definemed.console import console

            console.print(Text(f"{self.stage} run {self.path} already finished with this config: nothing to do",
                               style="green"), soft_wrap=True)
        return read_json(self.metrics_path)

    def is_finished(self) -> bool:
        if not self.manifest_path.exists():
            return False
        try:
            return read_json(self.manifest_path).get("status") == "finished"
        except (OSError, json.JSONDecodeError):
            return False

    # -- logging ---------------------------------------------------------------------
    def _attach_log(self) -> None:
        handler = logging.FileHandler(self.path / "run.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger("definemed").addHandler(handler)
        logging.getLogger("definemed").setLevel(logging.INFO)
        self._log_handler = handler

    def _detach_log(self) -> None:
        if self._log_handler is not None:
            logging.getLogger("definemed").removeHandler(self._log_handler)
            self._log_handler.close()
            self._log_handler = None


def guarded(fn):
    """Decorator for functions that use `RunDir` without ``with`` (start … finish): when an
    exception leaves ``fn``, every run it started and did not finish is recorded as failed, and
    every lock it took is released."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        mark = len(_open)
        try:
            return fn(*args, **kwargs)
        except BaseException as err:
            for run in reversed(_open[mark:]):
                run.close(err)
            raise

    return wrapper
