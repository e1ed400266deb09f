"""The identity of a checkpoint's contents, for caches: a model retrained or re-merged into the same
folder must get a new fingerprint, while an unchanged 15 GB checkpoint must not be re-read on
every run.

The fingerprint hashes the contents of every file that can change an answer: the weights
(``*.safetensors``), the configs and tokenizer (``*.json``, ``*.jinja``, ``tokenizer.model``).
Hashing the weights costs a full read, so each file's hash is memoised in a small SQLite table
under the definemed cache dir (`definemed.models.bundled.cache_root`), keyed by (resolved path,
inode, size, mtime_ns, ctime_ns), as git's index does: rewriting or replacing a file changes at
least one of them, and then the file is hashed again. ctime matters because a copy that keeps
timestamps (``cp -p``, ``rsync -a``) can restore the old mtime and size, but never the ctime.
As in git's "racy clean" rule, a file changed in the last few seconds is hashed but not
memoised: file-system timestamps are coarse (a few ms), so a file rewritten twice within one
tick with the same size would otherwise keep its old hash.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

from definemed.models.bundled import cache_root
from definemed.runs import sha256_file

_SUFFIXES = (".safetensors", ".json", ".jinja")
_NAMES = ("tokenizer.model",)
RACY_SECONDS = 3.0


def _identity_files(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir()
                  if f.is_file() and (f.suffix in _SUFFIXES or f.name in _NAMES) and not f.name.startswith("."))


class _Memo:
    """(path, inode, size, mtime_ns, ctime_ns) → sha256 of the file's contents."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, timeout=60)
        self.db.execute("CREATE TABLE IF NOT EXISTS file_sha256_v2 (path TEXT, ino INTEGER, size INTEGER, "
                        "mtime_ns INTEGER, ctime_ns INTEGER, sha256 TEXT NOT NULL, "
                        "PRIMARY KEY (path, ino, size, mtime_ns, ctime_ns))")

    def sha256(self, f: Path) -> str:
        st = f.stat()
        key = (str(f.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        row = self.db.execute("SELECT sha256 FROM file_sha256_v2 WHERE path=? AND ino=? AND size=? AND mtime_ns=? "
                              "AND ctime_ns=?", key).fetchone()
        if row:
            return row[0]
        digest = sha256_file(f)
        if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_SECONDS * 1e9:
            return digest  # too fresh to trust its timestamps next time
        with self.db:
            self.db.execute("DELETE FROM file_sha256_v2 WHERE path=?", key[:1])  # older versions of the file
            self.db.execute("INSERT OR REPLACE INTO file_sha256_v2 VALUES (?, ?, ?, ?, ?, ?)", (*key, digest))
        return digest


def folder_fingerprint(folder: str | Path) -> str:
    """sha256 over the names and content hashes of a checkpoint folder's identity files."""
    folder = Path(folder)
    memo = _Memo(cache_root() / "fingerprints.sqlite")
    try:
        h = hashlib.sha256()
        for f in _identity_files(folder):
            h.update(f"{f.name}\x1f{memo.sha256(f)}\n".encode())
        return h.hexdigest()
    finally:
        memo.db.close()


def model_fingerprint(ref: str) -> str:
    """A model reference's identity: the content fingerprint of a local folder (the bundled model
    included), or a hub id as is (its revision is whatever the hub serves; we cannot do better
    offline)."""
    from definemed.models.loading import resolve_model

    resolved = resolve_model(ref, check=False)  # hashes the folder, loads nothing
    p = Path(resolved)
    return f"weights:{folder_fingerprint(p)}" if p.is_dir() else f"hub:{resolved}"
