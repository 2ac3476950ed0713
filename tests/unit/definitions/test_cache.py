"""The cache of checked definitions: used when nothing changed, never a wrong answer."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import DEFINITIONS
from workflow.definitions import cache, loader
from workflow.errors import DefinitionError

ASSIGNMENT = "assignments/hedersrelaterat-vald-2022.yaml"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DEFINITIONS, tmp_path / "definitions"))


@pytest.fixture
def var(tmp_path: Path) -> Path:
    return tmp_path / "var"


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the times the files are really read and checked."""
    count: list[int] = []
    real = loader.check

    def counted(paths: object) -> object:
        count.append(1)
        return real(paths)  # type: ignore[arg-type]

    monkeypatch.setattr(loader, "check", counted)
    return count


def _files(var: Path) -> list[Path]:
    return sorted(cache.folder(var).glob("definitions-*.pickle"))


def test_the_second_load_reads_no_file_again(tree: Path, var: Path, reads: list[int]) -> None:
    first = cache.load([tree], var)
    second = cache.load([tree], var)
    assert len(reads) == 1
    assert second.summary() == first.summary()
    assert second.assignments == first.assignments


def test_the_cache_is_its_owners_only(tree: Path, var: Path) -> None:
    cache.load([tree], var)
    folder = cache.folder(var)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in [*_files(var), folder / "key"]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_change_that_keeps_size_and_time_is_seen(tree: Path, var: Path, reads: list[int]) -> None:
    cache.load([tree], var)
    path = tree / ASSIGNMENT
    before = path.stat()
    text = path.read_text()
    changed = text.replace("reference: KS 2022/0417", "reference: KS 2022/0418")
    assert changed != text
    assert len(changed) == len(text)
    path.write_text(changed)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    definitions = cache.load([tree], var)
    assert len(reads) == 2
    assert definitions.assignments["kf-2022-hedersvald"].reference == "KS 2022/0418"


def test_a_new_or_removed_file_is_seen(tree: Path, var: Path, reads: list[int]) -> None:
    cache.load([tree], var)
    copy = (tree / ASSIGNMENT).read_text().replace("id: kf-2022-hedersvald", "id: copy")
    (tree / "assignments" / "copy.yaml").write_text(copy)
    assert "copy" in cache.load([tree], var).assignments
    (tree / "assignments" / "copy.yaml").unlink()
    assert "copy" not in cache.load([tree], var).assignments
    assert len(reads) == 3


def test_a_broken_file_after_a_cached_load_is_reported_and_not_cached(
    tree: Path, var: Path, reads: list[int]
) -> None:
    cache.load([tree], var)
    cached = _files(var)[0].read_bytes()
    (tree / ASSIGNMENT).write_text("id: x\nid: y\n")
    for _ in range(2):
        with pytest.raises(DefinitionError, match="duplicate key 'id'"):
            cache.load([tree], var)
    assert len(reads) == 3
    assert _files(var)[0].read_bytes() == cached


@pytest.mark.parametrize(
    "spoil",
    [
        lambda data: data[:-10],
        lambda data: data[:40] + bytes([data[40] ^ 1]) + data[41:],
        lambda data: b"garbage",
        lambda data: b"",
    ],
    ids=["truncated", "one-bit", "garbage", "empty"],
)
def test_a_corrupt_cache_is_read_again_and_rewritten(
    tree: Path, var: Path, reads: list[int], spoil: object
) -> None:
    first = cache.load([tree], var)
    path = _files(var)[0]
    path.write_bytes(spoil(path.read_bytes()))  # type: ignore[operator]
    assert cache.load([tree], var).summary() == first.summary()
    assert cache.load([tree], var).summary() == first.summary()
    assert len(reads) == 2


def test_a_forged_cache_is_never_unpickled(
    tree: Path, var: Path, reads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the key, a pickle written by someone else fails its HMAC unread."""
    import hashlib
    import hmac
    import pickle

    cache.load([tree], var)
    path = _files(var)[0]
    payload = pickle.dumps(("key", "anything"))
    path.write_bytes(cache.MAGIC + hmac.new(b"x" * 32, payload, hashlib.sha256).digest() + payload)
    unpickled: list[bytes] = []
    monkeypatch.setattr(cache.pickle, "loads", lambda data: unpickled.append(data))
    cache.load([tree], var)
    assert unpickled == []
    assert len(reads) == 2


def test_a_cache_open_to_others_is_ignored(tree: Path, var: Path, reads: list[int]) -> None:
    cache.load([tree], var)
    path = _files(var)[0]
    path.chmod(0o644)
    cache.load([tree], var)
    assert len(reads) == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # rewritten, owner-only again


def test_a_lost_key_means_reading_again(tree: Path, var: Path, reads: list[int]) -> None:
    cache.load([tree], var)
    (cache.folder(var) / "key").unlink()
    cache.load([tree], var)
    cache.load([tree], var)
    assert len(reads) == 2


def test_the_cache_is_safe_to_delete(tree: Path, var: Path, reads: list[int]) -> None:
    cache.load([tree], var)
    shutil.rmtree(cache.folder(var))
    cache.load([tree], var)
    assert len(reads) == 2
    assert _files(var)


def test_without_create_no_var_dir_is_made(tree: Path, var: Path) -> None:
    definitions, problems = cache.check([tree], var, create=False)
    assert definitions is not None
    assert problems == []
    assert not var.exists()


def test_another_working_directory_has_its_own_entry(
    tree: Path, var: Path, reads: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paths are shown relative to the working directory: a cache per directory."""
    monkeypatch.chdir(tree.parent)
    here = cache.load([Path("definitions")], var)
    monkeypatch.chdir(tree)
    there = cache.load([Path("../definitions")], var)
    assert len(reads) == 2
    assert set(here.sources.values()) != set(there.sources.values())


def test_only_the_latest_sets_of_definitions_are_kept(
    tree: Path, var: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "KEEP", 2)
    for name in ("a", "b", "c"):
        (tree.parent / name).mkdir()
        monkeypatch.chdir(tree.parent / name)
        cache.load([tree], var)
    assert len(_files(var)) == 2


def test_a_cache_that_cannot_be_written_is_no_error(tree: Path, var: Path) -> None:
    var.mkdir()
    cache.folder(var).write_text("not a folder")
    assert cache.load([tree], var).summary()


# --- the days off ------------------------------------------------------------------------


@pytest.fixture
def fresh_calendar(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The calendar module as in a new process: nothing seeded, nothing computed."""
    from workflow.core import calendar

    monkeypatch.setattr(calendar, "_SEEDED", {})
    monkeypatch.setattr(calendar, "_COMPUTED", {})
    calendar._swedish_days_off.cache_clear()
    yield
    calendar._swedish_days_off.cache_clear()


@pytest.mark.usefixtures("fresh_calendar")
def test_days_off_computed_once_are_kept_and_seeded(var: Path) -> None:
    import datetime as dt

    from workflow.core import calendar
    from workflow.core.calendar import Calendar

    var.mkdir()
    assert not Calendar().is_business_day(dt.date(2024, 6, 21))  # midsommarafton
    computed = calendar.computed_days_off()
    assert (2024, "sv") in computed
    cache.save_days_off(var)
    path = cache.folder(var) / "days-off.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    calendar._COMPUTED.clear()
    calendar._swedish_days_off.cache_clear()
    cache.load_days_off(var)
    assert computed == calendar._SEEDED
    assert not Calendar().is_business_day(dt.date(2024, 6, 21))
    assert calendar.computed_days_off() == {}  # answered from the seed


@pytest.mark.usefixtures("fresh_calendar")
def test_tampered_days_off_are_not_used(var: Path) -> None:
    import datetime as dt

    from workflow.core import calendar
    from workflow.core.calendar import Calendar

    var.mkdir()
    Calendar().is_business_day(dt.date(2024, 6, 21))
    cache.save_days_off(var)
    path = cache.folder(var) / "days-off.json"
    path.write_bytes(path.read_bytes().replace(b"2024-06-21", b"2024-06-20"))
    cache.load_days_off(var)
    assert calendar._SEEDED == {}


def test_no_days_off_are_saved_without_a_var_dir(var: Path) -> None:
    cache.save_days_off(var)
    assert not var.exists()
