"""User-facing errors.

A `UserError` is a mistake the user can fix (bad config, missing file). The CLI prints it as
one line and exits with code 2; anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the user's input, reported as one line without a traceback."""


class Terminated(BaseException):
    """SIGTERM (Slurm's time limit, `kill`, a container stop) turned into an exception, so that the
    stage's `RunDir` records the run as failed and releases its lock before the process ends.
    A BaseException, like KeyboardInterrupt: ``except Exception`` blocks must not swallow it."""
