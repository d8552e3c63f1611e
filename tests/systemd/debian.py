"""Find a command line tool, installing its Debian package when the machine lacks it.

Only as root and only with apt-get; otherwise (or when the install fails) the
test is skipped with what to install by hand.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

APT_TIMEOUT = 300  # seconds for each apt-get step


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    return subprocess.run(["apt-get", *args], capture_output=True, text=True, env=env,
                          timeout=APT_TIMEOUT, check=False)


def _install(package: str) -> str:
    """Why the install failed, or "" when it worked."""
    try:
        done = _apt("install", "-y", "--no-install-recommends", package)
        if done.returncode != 0:  # an empty or stale package list: update once, try again
            _apt("update")
            done = _apt("install", "-y", "--no-install-recommends", package)
    except subprocess.TimeoutExpired:
        return f"apt-get took more than {APT_TIMEOUT} s"
    tail = (done.stderr.strip().splitlines() or ["?"])[-1]
    return "" if done.returncode == 0 else f"apt-get install {package} failed: {tail}"


def debian_tool(command: str, package: str) -> str:
    """The path of ``command``; installs ``package`` if needed, or skips the test."""
    found = shutil.which(command)
    if found:
        return found
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(f"{command} is missing and cannot be installed here "
                    f"(needs root and apt-get): install the Debian package {package!r}")
    why = _install(package)
    found = shutil.which(command)
    if found is None:
        pytest.skip(f"{command} is missing and installing {package!r} did not provide it: "
                    f"{why or 'no such command in the package'}")
    return found
