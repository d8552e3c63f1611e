"""The last applied configuration, kept as ``<var>/state/config.json``.

The daemon writes it after applying a configuration; ``breakoutctl plan``
reads it to show what a reload would change. Format (JSON object):
``format`` (``"breakoutd.config/1"``), ``digest``, ``files``, ``risk``,
``presets`` (name -> parameters) and ``watchers`` (list), with the encoding
of :mod:`breakoutd.config.codec`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from breakoutd.config.codec import (
    params_from_json,
    params_to_json,
    risk_from_json,
    risk_to_json,
    spec_from_json,
    spec_to_json,
)
from breakoutd.config.errors import ConfigError, Problem
from breakoutd.config.scan_block import scan_from_json, scan_to_json
from breakoutd.config.watchlist import Watchlist, make_watchlist
from breakoutd.core.prices import PriceError

FORMAT = "breakoutd.config/1"
SNAPSHOT_PATH = Path("state") / "config.json"


def snapshot_path(var_dir: str | Path) -> Path:
    """Where the snapshot lives below the daemon's var directory."""
    return Path(var_dir) / SNAPSHOT_PATH


def snapshot_json(watchlist: Watchlist) -> str:
    """The snapshot text of a configuration."""
    payload = {
        "format": FORMAT,
        "digest": watchlist.digest,
        "files": list(watchlist.files),
        "risk": risk_to_json(watchlist.risk),
        "presets": {name: params_to_json(p) for name, p in watchlist.presets.items()},
        "watchers": [spec_to_json(w) for w in watchlist.watchers],
    }
    if watchlist.scan is not None:  # absent in snapshots of watchlists without one
        payload["scan"] = scan_to_json(watchlist.scan)
    return json.dumps(payload, indent=1, sort_keys=True) + "\n"


def write_snapshot(path: str | Path, watchlist: Watchlist) -> None:
    """Write the snapshot atomically (a reader never sees half a file)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".config.", suffix=".tmp")
    try:
        # Group-readable like the daemon's other files: `breakoutctl plan` of an
        # operator in the daemon's group reads it (mkstemp makes it 0600).
        os.fchmod(fd, 0o640)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(snapshot_json(watchlist))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def parse_snapshot(text: str, file: str = "<snapshot>") -> Watchlist:
    """The configuration recorded in a snapshot text, or ConfigError."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"format is not {FORMAT!r}")
        watchers = [spec_from_json(w) for w in data["watchers"]]
        presets = {str(k): params_from_json(v) for k, v in data["presets"].items()}
        scan = scan_from_json(data["scan"]) if data.get("scan") is not None else None
        return make_watchlist(
            watchers, presets, risk_from_json(data["risk"]), [str(f) for f in data["files"]],
            scan)
    except (ValueError, KeyError, TypeError, AttributeError, ArithmeticError, PriceError) as exc:
        raise ConfigError([Problem(file, None, "", f"not a config snapshot: {exc!r}")]) from None


def read_snapshot(path: str | Path) -> Watchlist | None:
    """The snapshot at ``path``, None when there is none; ConfigError when unreadable."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(os.fspath(path), None, "", f"cannot read: {exc}")]) from None
    return parse_snapshot(text, os.fspath(path))
