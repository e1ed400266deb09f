"""One process per run directory: an advisory lock (``<dir>/.definemed.lock``) held for a whole stage.

Two runs writing the same folder at once would both "succeed" and mix their checkpoints,
caches and statistics. The lock is `filelock`'s OS lock (``flock`` on Unix), which the kernel
releases when its holder dies, so a lock left by a killed run is never stale: the next run simply
gets it (and says whose lock it took over). The holder's pid, host, command and start time are
written beside it (``.definemed.lock.json``) only to name the holder in the refusal message.

Within one process the lock is re-entrant (the pipeline holds its output folder while a stage
holds its own, and an eval suite holds its folder while each evaluation takes it again).
Limits: ``flock`` must work on the filesystem (local disks and NFSv4 do; Lustre needs ``-o flock``).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path

from definemed.errors import UserError

LOCK_NAME = ".definemed.lock"
HOLDER_NAME = ".definemed.lock.json"

# resolved folder → [filelock object, depth]: re-entrancy within this process
_held: dict[Path, list] = {}


def _holder_text(info: dict) -> str:
    cmd = " ".join(info.get("command") or []) or "?"
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')}, started {info.get('started', '?')}: {cmd}"


def _read_holder(folder: Path) -> dict | None:
    try:
        info = json.loads((folder / HOLDER_NAME).read_text(encoding="utf-8"))
        return info if isinstance(info, dict) else None
    except (OSError, ValueError):
        return None


def acquire(folder: str | Path) -> str | None:
    """Take the lock of ``folder`` (created if needed) or raise `UserError` naming the holder.

    When the previous holder died without releasing it (its holder file was left behind), says so
    on the console and returns that note, else None. Re-entrant: a second call in the same process only counts."""
    from filelock import FileLock, Timeout

    folder = Path(folder)
    key = folder.resolve()
    if key in _held:
        _held[key][1] += 1
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"{folder}: cannot create the run directory ({err.strerror or err})") from None
    lock = FileLock(str(folder / LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        info = _read_holder(folder)
        who = _holder_text(info) if info else "another process (no holder details)"
        raise UserError(f"{folder} is in use by another run ({who}); wait for it to end or use another "
                        "output_dir") from None
    except OSError as err:  # read-only folder, or a filesystem without locks
        raise UserError(f"{folder}: cannot lock the run directory ({err.strerror or err})") from None
    previous = _read_holder(folder)  # still there: its holder ended without releasing (killed)
    note = None
    if previous is not None and previous.get("pid") != os.getpid():
        note = f"{folder}: took over the lock of a run that ended without releasing it ({_holder_text(previous)})"
    from definemed.runs import atomic_write_json  # runs imports this module at use, not at load

    atomic_write_json(folder / HOLDER_NAME, {
        "pid": os.getpid(), "host": socket.gethostname(), "command": sys.argv,
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    _held[key] = [lock, 1]
    if note:
        from definemed.console import console

        console.print(note, markup=False, highlight=False, soft_wrap=True)
    return note


def release(folder: str | Path) -> None:
    """Undo one `acquire`; the last one removes the holder file, then unlocks (in that order, so
    a holder file never names a process that no longer holds the lock)."""
    key = Path(folder).resolve()
    entry = _held.get(key)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] > 0:
        return
    del _held[key]
    try:
        (Path(folder) / HOLDER_NAME).unlink(missing_ok=True)
    finally:
        entry[0].release()


def is_held(folder: str | Path) -> bool:
    """Does this process hold the lock of ``folder``?"""
    return Path(folder).resolve() in _held


class held:
    """``with held(folder):`` — the lock for the duration of the block."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    def __enter__(self) -> "held":
        acquire(self.folder)
        return self

    def __exit__(self, *exc) -> None:
        release(self.folder)
