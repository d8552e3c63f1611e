"""status.json is always whole, follows events quickly, and beats while nothing happens."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

from breakoutd.core import events as ev
from breakoutd.core.params import StrategyParams, WatcherSpec
from breakoutd.daemon.status import StatusBoard, status_path


def _spec(n: int) -> WatcherSpec:
    return WatcherSpec(id=f"W{n}@{n}", symbol=f"S{n}", level=n * 1_000_000,
                       params=StrategyParams())


def test_a_reader_never_sees_a_half_written_file(tmp_path: Path) -> None:
    path = status_path(tmp_path)
    board = StatusBoard(path, clock=lambda: 0, pid=1)
    board.write()
    done = threading.Event()
    reads: list[int] = []
    failures: list[str] = []

    def read_in_a_loop() -> None:
        while not done.is_set():
            text = path.read_text()
            try:
                reads.append(len(json.loads(text)["watchers"]))
            except ValueError as exc:
                failures.append(f"{exc}: {text[:80]!r}")

    reader = threading.Thread(target=read_in_a_loop)
    reader.start()
    try:
        for n in range(300):  # the file grows and shrinks: sizes differ write to write
            board.set_watcher_specs([_spec(k) for k in range(1, n % 40 + 2)], {})
            board.write()
    finally:
        done.set()
        reader.join()
    assert failures == []
    assert len(reads) > 0 and len(set(reads)) > 1  # it did read while the writer rewrote
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]  # no temp files left


def test_run_writes_soon_after_an_event_and_beats_without_events(tmp_path: Path) -> None:
    path = status_path(tmp_path)
    beats = iter(range(1_773_066_600, 1_773_066_600 + 10**6))
    board = StatusBoard(path, clock=lambda: 0, wall=lambda: float(next(beats)), pid=1,
                        interval=0.05)

    def read() -> dict[str, object]:
        return json.loads(path.read_text()) if path.exists() else {}

    async def until(predicate: object) -> None:
        async def loop() -> None:
            while not predicate():  # type: ignore[operator]
                await asyncio.sleep(0.01)
        await asyncio.wait_for(loop(), 10)

    async def scenario() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(board.run(stop))
        await until(lambda: read().get("state") == "starting")
        board.on_event(ev.DaemonState(at=1, state="running"))
        await until(lambda: read().get("state") == "running")
        first = read()["heartbeat"]
        await until(lambda: read()["heartbeat"] != first)  # no event: the heartbeat moves
        stop.set()
        board.on_event(ev.DaemonState(at=2, state="stopped"))
        await asyncio.wait_for(task, 10)
        assert read()["state"] == "stopped"  # the last word is written on the way out

    asyncio.run(scenario())


def test_a_status_file_that_cannot_be_written_does_not_stop_the_daemon(tmp_path: Path) -> None:
    blocker = tmp_path / "var"
    blocker.write_text("a file where the directory should be")
    board = StatusBoard(status_path(blocker), clock=lambda: 0, pid=1)
    board.on_event(ev.ConnectionLost(at=1, reason="socket closed"))
    board.write()  # logged, not raised
    assert json.loads(board.encode())["broker"]["last_disconnect_reason"] == "socket closed"
