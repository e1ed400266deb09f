import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def bundled_model_path():
    """The real bundled model, converted once (cached in ~/.cache/definemed or $DEFINEMED_CACHE)."""
    from definemed.models.bundled import ensure_bundled_model

    return ensure_bundled_model()


@pytest.fixture(scope="session")
def bundled(bundled_model_path):
    from definemed.models import load_causal_lm

    return load_causal_lm(bundled_model_path)


def run_cli(*args, cwd=None, timeout=900, env=None):
    """Run the real console script in a subprocess."""
    exe = Path(sys.executable).parent / "definemed"
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **(env or {})}
    return subprocess.run([str(exe), *map(str, args)], cwd=cwd or ROOT, capture_output=True, text=True,
                          timeout=timeout, env=full_env)
