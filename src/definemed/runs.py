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


class RunDir:
    """One stage run on disk: ``config.yaml``, ``manifest.json``, ``metrics.json``, ``run.log``.

    The manifest is written at start (status "running") and again at finish, so an
    interrupted run is recognisable and a finished one can be skipped.
    """

    def __init__(self, path: str | Path, stage: str):
        self.path = Path(path)
        self.stage = stage
        self.manifest_path = self.path / "manifest.json"
        self.metrics_path = self.path / "metrics.json"
        self._t0 = time.time()
        self._log_handler: logging.Handler | None = None

    # -- lifecycle ---------------------------------------------------------------------
    def start(self, config: Any, seed: int | None = None,
              inputs: dict[str, str | Path] | None = None) -> "RunDir":
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
        self._attach_log()
        return self

    def finish(self, metrics: dict[str, Any], outputs: dict[str, str | Path] | None = None,
               manifest: dict[str, Any] | None = None) -> None:
        """``manifest``: facts about the run's data that belong beside its inputs (e.g. the
        held-out check's ``heldout_overlap_docs``)."""
        atomic_write_json(self.metrics_path, metrics)
        self.manifest.update(manifest or {})
        self.manifest.update(
            status="finished",
            finished=_now(),
            seconds=round(time.time() - self._t0, 2),
            outputs={k: str(v) for k, v in (outputs or {}).items()},
        )
        atomic_write_json(self.manifest_path, self.manifest)
        self._detach_log()

    def ensure_same_config(self, config: Any) -> None:
        """Refuse to resume or skip into a folder that holds a run with a different config:
        its checkpoints, completion markers or caches would silently mix two experiments."""
        from definemed.errors import UserError

        path = self.path / "config.yaml"
        if path.exists() and yaml.safe_load(path.read_text(encoding="utf-8")) != yaml.safe_load(config_yaml(config)):
            raise UserError(f"{self.path} holds a run with a different config: use another output_dir or delete it")

    def reuse(self, config: Any, announce: bool = True) -> dict | None:
        """The metrics of a finished run with this config (a rerun is a no-op), else None.
        Refuses a folder that holds a run with a different config."""
        self.ensure_same_config(config)
        if not self.is_finished():
            return None
        if announce:
            from definemed.console import console

            console.print(f"[green]{self.stage} run {self.path} already finished with this config: nothing to do[/]")
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
