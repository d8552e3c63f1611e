"""A stand-in for systemd's end of NOTIFY_SOCKET: a datagram socket the test binds."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator

Message = dict[str, str]


def parse(datagram: bytes) -> Message:
    """``NAME=value`` lines, as systemd reads them."""
    return dict(line.split("=", 1) for line in datagram.decode().split("\n") if line)


class Receiver:
    """The receiving socket; ``path`` is what goes into NOTIFY_SOCKET."""

    def __init__(self, sock: socket.socket, path: str) -> None:
        self.sock = sock
        self.path = path

    def drain(self) -> list[Message]:
        """Every datagram queued so far, without waiting."""
        out = []
        while True:
            try:
                out.append(parse(self.sock.recv(4096)))
            except BlockingIOError:
                return out

    async def next(self) -> Message:
        """The next datagram, waiting on the event loop for it."""
        loop = asyncio.get_running_loop()
        return parse(await loop.sock_recv(self.sock, 4096))


@contextlib.contextmanager
def receiver(kind: str) -> Iterator[Receiver]:
    """A receiver bound to a file path (``kind="path"``) or an abstract name (``"abstract"``)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setblocking(False)
    # pytest's tmp_path can exceed the 107 bytes a unix socket path may have.
    folder = tempfile.mkdtemp(prefix="bo-notify-")
    try:
        if kind == "abstract":
            name = f"breakoutd-test-{os.getpid()}-{os.path.basename(folder)}"
            sock.bind("\0" + name)
            yield Receiver(sock, "@" + name)
        else:
            path = os.path.join(folder, "notify")
            sock.bind(path)
            yield Receiver(sock, path)
    finally:
        sock.close()
        shutil.rmtree(folder, ignore_errors=True)
