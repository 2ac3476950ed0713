"""Files at rest readable by their owner only: the process umask, and a check for the doctor.

council's processes (the CLI, workers, beat, the embedded Redis they start) create every
file 0600 and every directory 0700: the SQLite database and its -wal and -shm files,
the broker's append-only file, beat's schedule, the maildir, the generated reply secret.
A mail or a note may hold what only the administration should read.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

#: Group and others get nothing.
UMASK = 0o077


def keep_files_private() -> int:
    """From now on, this process (and what it starts) creates files for its owner only.

    Returns the umask it replaces, for a caller that runs inside a longer-lived process
    (the CLI under a test runner) to put back when it is done.
    """
    return os.umask(UMASK)


def readable_by_others(paths: Iterable[Path]) -> list[Path]:
    """Those of ``paths`` that exist and that the group or others may read or enter."""
    found = []
    for path in paths:
        try:
            mode = path.stat().st_mode
        except OSError:
            continue
        if stat.S_IMODE(mode) & 0o077:
            found.append(path)
    return found


def council_files(var_dir: Path, database: Path | None) -> list[Path]:
    """The directory council writes to and the files in it that hold data."""
    paths = [var_dir, var_dir / "reply-secret", var_dir / "redis", var_dir / "mail"]
    if database is not None:
        paths += [database, Path(f"{database}-wal"), Path(f"{database}-shm")]
    redis = var_dir / "redis"
    if redis.is_dir():
        paths += sorted(redis.iterdir())
    return paths
