"""The ib_async version the fence was written for, checked at start-up.

The fence (:mod:`breakoutd.ibkr.wire`) reads and writes ib_async's private
members; another version may rename or change them without notice, and the
daemon would then misread market data or orders silently. So it refuses to
start on any version but the one pinned in pyproject.toml.
"""

from __future__ import annotations

from importlib import metadata

from breakoutd.errors import OperationalError

REQUIRED = "2.1.0"  # pyproject.toml pins ib_async==2.1.0


def installed_version() -> str | None:
    """The installed ib_async distribution's version; None when none is installed."""
    try:
        return metadata.version("ib_async")
    except metadata.PackageNotFoundError:
        return None


def check_version(installed: str | None = None) -> None:
    """OperationalError (one line) unless ``installed`` (default: the installed
    ib_async's version) is the one the fence was written for."""
    found = installed_version() if installed is None else installed
    if found != REQUIRED:
        raise OperationalError(
            f"ib_async {found or '(not installed)'} is installed but breakoutd needs "
            f"ib_async=={REQUIRED} (it uses that version's internals); "
            f"install it with: pip install ib_async=={REQUIRED}")
