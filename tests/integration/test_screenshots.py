"""`make screenshots` (scripts/screenshots.py): four full-page PNGs of the public site, the
register and a point page at desktop and phone width, in real Chromium."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser import chromium
from tests.support import ROOT

PNG = b"\x89PNG\r\n\x1a\n"
WIDTHS = {"desktop": 1280, "phone": 390}
SHOTS = [f"{page}.{device}.png" for device in WIDTHS for page in ("register", "point")]


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG's header (its first chunk, IHDR)."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG, f"{path.name} is not a PNG"
    assert head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.screenshots", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The script run once into a temporary directory; it prints each file it wrote."""
    browser = chromium()  # skips locally without Chromium, fails in CI
    out = tmp_path_factory.mktemp("screenshots")
    done = run_script("--out", str(out), "--chromium", browser)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(out / name) for name in SHOTS]
    assert sorted(p.name for p in out.iterdir()) == sorted(SHOTS)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("name", SHOTS)
def test_a_full_page_screenshot_at_its_width(shots: Path, name: str) -> None:
    width, height = png_size(shots / name)
    assert width == WIDTHS[name.split(".")[1]]
    assert height > 400  # a whole page, not an empty one


def test_screenshots_says_in_one_line_when_chromium_is_missing(tmp_path: Path) -> None:
    done = run_script("--out", str(tmp_path), "--chromium", str(tmp_path / "no-chromium"))
    assert done.returncode == 1
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1
    assert "no Chromium at" in done.stderr
