"""An unreadable state file stops the start in one line and is never written over."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from breakoutd.errors import OperationalError
from tests.daemon.daemonkit import DAY, running_daemon
from tests.daemon.test_daemon_sim import BRACKET, ramp


def test_a_corrupt_state_file_refuses_the_start_and_stays_as_it_was(tmp_path: Path) -> None:
    state = tmp_path / "state" / f"{DAY.isoformat()}.json"
    state.parent.mkdir(parents=True)
    state.write_text("{garbage")

    async def body() -> None:
        async with running_daemon(ramp("09:29:50", 20, "9.95"), BRACKET, tmp_path) as r:
            await r.finish()

    with pytest.raises(OperationalError) as refused:
        asyncio.run(asyncio.wait_for(body(), 60))
    message = str(refused.value)
    assert message.startswith(f"{state}: today's state cannot be read (")
    assert "move it aside to start anyway" in message and "\n" not in message
    assert state.read_text() == "{garbage"
