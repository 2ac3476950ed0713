"""The checked definitions, kept between commands so that one command does not re-read
and re-validate every file when nothing changed.

``load(paths, var_dir)`` is :func:`workflow.definitions.loader.check` with a memory: the
resolved :class:`~workflow.core.plan.Definitions` of valid files are kept in
``VAR_DIR/cache/definitions-*.pickle``, under a key made of every definition file's path,
size, modification time and BLAKE2 digest (the files are read and hashed on every use, so
a change that keeps the size and the time is seen too), the working directory (files are
named relative to it), the Python and pydantic versions and the size and time of council's
own modules that build the definitions.

The file is pickle, so it is trusted only as far as it is council's own: the folder is
made owner-only (0700) and the files 0600; a file not owned by this user, open to others,
or whose HMAC-SHA256 (under a random key in ``VAR_DIR/cache/key``, 0600) does not match
is ignored and never unpickled. A cache that is missing, stale, unreadable or corrupt
means the files are read and checked again, never a wrong answer; it is safe to delete
at any time. Invalid definitions are never cached: their problems are found anew.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import pickle
import stat
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workflow.core.plan import Definitions
    from workflow.errors import Problem

#: What a cache file starts with; a change of format changes it.
MAGIC = b"council-definitions-cache/1\n"
_MAC = hashlib.sha256().digest_size
#: council's modules whose code decides what a loaded definition is.
_CODE = Path(__file__).resolve().parent.parent


def folder(var_dir: Path) -> Path:
    """Where the cache lives: ``VAR_DIR/cache``."""
    return var_dir / "cache"


def load(paths: Sequence[Path], var_dir: Path, *, create: bool = True) -> Definitions:
    """Load and resolve definitions, or raise :class:`DefinitionError` with every problem;
    from the cache when nothing changed. ``create=False`` keeps a cache only in a var dir
    that exists already (``council validate`` makes no folder)."""
    from workflow.errors import DefinitionError

    definitions, problems = check(paths, var_dir, create=create)
    if definitions is None:
        raise DefinitionError(problems)
    return definitions


def check(
    paths: Sequence[Path], var_dir: Path, *, create: bool = True
) -> tuple[Definitions | None, list[Problem]]:
    """:func:`workflow.definitions.loader.check`, from the cache when nothing changed."""
    from workflow.definitions.files import discover

    where = folder(var_dir)
    target = where / f"definitions-{hashlib.sha256(_where(paths)).hexdigest()[:16]}.pickle"
    try:
        key: bytes | None = _key(discover(paths), paths)
    except OSError:  # a file vanished or cannot be read: the loader says which
        key = None
    found = None if key is None else _read(target, where / "key", key)
    if found is not None:
        return found, []
    from workflow.definitions import loader  # only now: it costs a command 0.05 s

    definitions, problems = loader.check(paths)
    if key is None:
        return definitions, problems
    if definitions is not None and (create or var_dir.is_dir()):
        _write(target, where, key, definitions)
    return definitions, problems


def _where(paths: Iterable[Path]) -> bytes:
    """The working directory and the paths given: one cache file for each."""
    return repr((os.getcwd(), [str(p) for p in paths])).encode()


def _key(files: Iterable[Path], paths: Iterable[Path]) -> bytes:
    digest = hashlib.sha256(_where(paths))
    import pydantic

    digest.update(repr((sys.version, pydantic.VERSION)).encode())
    for package in ("core", "definitions"):
        for module in sorted((_CODE / package).glob("*.py")):
            info = module.stat()
            digest.update(repr((module.name, info.st_size, info.st_mtime_ns)).encode())
    for file in files:
        with file.open("rb") as stream:
            info = os.fstat(stream.fileno())
            content = hashlib.blake2b(stream.read()).hexdigest()
        digest.update(repr((str(file), info.st_size, info.st_mtime_ns, content)).encode())
    return digest.digest()


def _owned(path: Path) -> bool:
    """A regular file (or folder) of this user's, closed to everyone else."""
    info = path.lstat()
    private = info.st_uid == os.getuid() and not info.st_mode & 0o077
    return private and (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode))


def _secret(path: Path, *, create: bool) -> bytes | None:
    try:
        if _owned(path.parent) and _owned(path):
            secret = path.read_bytes()
            return secret if len(secret) == 32 else None
    except FileNotFoundError:
        pass
    except OSError:
        return None
    if not create:
        return None
    secret = os.urandom(32)
    _replace(path, secret)
    return secret


def _unseal(target: Path, key_file: Path) -> bytes | None:
    """The payload of a sealed file of this user's whose HMAC matches, or None."""
    try:
        if not (_owned(target.parent) and _owned(target)):
            return None
        secret = _secret(key_file, create=False)
        if secret is None:
            return None
        data = target.read_bytes()
    except OSError:
        return None
    head = len(MAGIC)
    if not data.startswith(MAGIC) or len(data) < head + _MAC:
        return None
    mac, payload = data[head : head + _MAC], data[head + _MAC :]
    if not hmac.compare_digest(mac, hmac.new(secret, payload, hashlib.sha256).digest()):
        return None
    return payload


def _seal(target: Path, payload: bytes) -> None:
    """Write ``payload`` with its HMAC, owner-only; a cache that cannot be written is no
    error."""
    where = target.parent
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _owned(where):
            return
        secret = _secret(where / "key", create=True)
        if secret is None:
            return
        mac = hmac.new(secret, payload, hashlib.sha256).digest()
        _replace(target, MAGIC + mac + payload)
    except OSError:
        return


def _read(target: Path, key_file: Path, key: bytes) -> Definitions | None:
    """The cached definitions for ``key``, or None for anything else."""
    payload = _unseal(target, key_file)
    if payload is None:
        return None
    try:
        # Only council's own bytes get here: an owner-only file whose HMAC matched.
        stored_key, definitions = pickle.loads(payload)  # noqa: S301
    except Exception:  # a file from another release of council: read the files again
        return None
    from workflow.core.plan import Definitions

    if stored_key != key or not isinstance(definitions, Definitions):
        return None
    return definitions


#: How many sets of definitions (working directory and paths) are kept; the least
#: recently written go first.
KEEP = 8


def _write(target: Path, where: Path, key: bytes, definitions: Definitions) -> None:
    """Keep the definitions for next time, and only the KEEP latest sets."""
    try:
        payload = pickle.dumps((key, definitions), protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, RecursionError, TypeError, AttributeError):
        return
    _seal(target, payload)
    try:
        kept = sorted(
            where.glob("definitions-*.pickle"), key=lambda p: p.stat().st_mtime_ns, reverse=True
        )
        for old in kept[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        return


# --- the calendar's days off ------------------------------------------------------------


def _days_off_key() -> str:
    """The holidays package's release and the calendar's code: a change of either makes
    the kept tables stale."""
    from importlib.machinery import PathFinder  # importlib.util would cost 10 ms

    spec = PathFinder.find_spec("holidays")
    parts: list[object] = [sys.version]
    origin = Path(spec.origin) if spec is not None and spec.origin else None
    for path in ([origin, origin.parent / "version.py"] if origin else []) + [
        _CODE / "core" / "calendar.py"
    ]:
        info = path.stat()
        parts.append((str(path), info.st_size, info.st_mtime_ns))
    return hashlib.sha256(repr(parts).encode()).hexdigest()


def _kept_days_off(var_dir: Path, key: str) -> dict[tuple[int, str], dict[dt.date, str]]:
    """The tables kept in ``VAR_DIR/cache/days-off.json`` for ``key``; none when amiss."""
    import json

    payload = _unseal(folder(var_dir) / "days-off.json", folder(var_dir) / "key")
    if payload is None:
        return {}
    try:
        data = json.loads(payload)
        if data.get("key") != key:
            return {}
        return {
            (int(year), str(language)): {dt.date.fromisoformat(d): str(n) for d, n in days}
            for year, language, days in data["tables"]
        }
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}


def load_days_off(var_dir: Path) -> None:
    """Seed the calendar with the Swedish days off an earlier command computed, so this one
    need not load the ``holidays`` package (about 0.2 s); anything amiss: computed anew."""
    from workflow.core import calendar

    try:
        key = _days_off_key()
    except OSError:
        return
    calendar.seed_days_off(_kept_days_off(var_dir, key))


def save_days_off(var_dir: Path) -> None:
    """Keep the tables this process computed, beside those kept already (only in a var dir
    that exists: a command that made none leaves none)."""
    import json

    from workflow.core import calendar

    computed = calendar.computed_days_off()
    if not computed or not var_dir.is_dir():
        return
    try:
        key = _days_off_key()
    except OSError:
        return
    tables = {**_kept_days_off(var_dir, key), **computed}
    text = json.dumps(
        {
            "key": key,
            "tables": [
                [year, language, [[d.isoformat(), n] for d, n in sorted(days.items())]]
                for (year, language), days in sorted(tables.items())
            ],
        },
        ensure_ascii=False,
    )
    _seal(folder(var_dir) / "days-off.json", text.encode())


def _replace(path: Path, data: bytes) -> None:
    """Write ``path`` whole (0600), through a temporary file renamed over it."""
    import tempfile

    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
