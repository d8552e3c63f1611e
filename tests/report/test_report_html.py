"""The HTML page in a real headless browser: no console errors, and the equity curve drawn."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from breakoutd.cli.main import main
from tests.report.test_report_real import TAPE, WATCHLIST

pytestmark = pytest.mark.realdata

CHROMIUM = Path("/usr/bin/chromium")  # Debian's package
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--enable-logging=stderr", "--v=0", "--hide-scrollbars"]
EQUITY_BLUE = (31, 119, 180)  # the equity curve's colour (#1f77b4)


@pytest.fixture
def page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    if not TAPE.exists():
        pytest.skip("recorded tapes are not beside the checkout")
    wl = tmp_path / "w.yaml"
    wl.write_text(WATCHLIST)
    assert main(["report", "--tape", str(TAPE), "--watchlist", str(wl),
                 "--html", str(tmp_path / "out")]) == 0
    assert "wrote" in capsys.readouterr().out
    return tmp_path / "out" / "report.html"


def test_the_page_needs_nothing_but_itself(page: Path) -> None:
    text = page.read_text()
    sources = re.findall(r"""(?:src|href)=['"]([^'"]*)""", text)
    assert len(sources) == 3 + 5  # the three pictures and one chart per trade
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http" not in text and "<script" not in text and "<link" not in text


def _screenshot(page: Path, tmp_path: Path, shot: Path) -> str:
    if not CHROMIUM.exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    done = subprocess.run(
        [str(CHROMIUM), *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         "--window-size=1200,700", f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=90, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stderr


def test_chromium_shows_the_equity_curve_without_console_errors(
        page: Path, tmp_path: Path) -> None:
    from PIL import Image

    shot = tmp_path / "shot.png"
    log = _screenshot(page, tmp_path, shot)
    assert "CONSOLE" not in log, [line for line in log.splitlines() if "CONSOLE" in line]
    image = Image.open(shot).convert("RGB")
    width, height = image.size
    pixels = image.load()
    # The equity picture is the first of the row under the totals: its left third.
    columns = {x for x in range(width // 3) for y in range(height)
               if _near(pixels[x, y], EQUITY_BLUE)}
    assert len(columns) > 200, "no equity curve drawn across the picture"


def _near(rgb: tuple[int, int, int], want: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 12 for a, b in zip(rgb, want, strict=True))
