"""A TCP proxy in front of a server, for network faults: refuse, stall or forward.

``refuse`` resets every new connection (a server that is down), ``stall`` accepts and
never answers and freezes the connections already open (a server that hangs),
``forward`` passes bytes both ways; ``drop()`` cuts the connections already open and
refuses new ones (a server that goes away mid-request). The proxy runs in its own
process: deltalake holds the GIL through some of its requests, which would freeze a
proxy thread of the test.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from urllib.parse import urlparse


class FaultProxy:
    """Controls the proxy process: ``mode`` to set, ``connections`` accepted so far."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._process = subprocess.Popen(
            [sys.executable, __file__, target_host, str(target_port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.port = int(self._process.stdout.readline())

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _ask(self, line: str) -> str:
        self._process.stdin.write(line + "\n")
        return self._process.stdout.readline().strip()

    @property
    def mode(self) -> str:
        return self._ask("mode")

    @mode.setter
    def mode(self, mode: str) -> None:
        assert mode in ("forward", "refuse", "stall"), mode
        self._ask(mode)

    def drop(self) -> None:
        """Cut every open connection and refuse new ones (``mode`` becomes ``refuse``)."""
        self._ask("drop")

    @property
    def connections(self) -> int:
        return int(self._ask("connections"))

    def close(self) -> None:
        self._process.kill()
        self._process.wait()


class _Proxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.mode = "forward"
        self.connections = 0
        self.open: set[socket.socket] = set()
        self.listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            client, _ = self.listener.accept()
            self.connections += 1
            if self.mode == "refuse":
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                client.close()  # a reset, as from a closed port
                continue
            if self.mode == "stall":
                continue  # accepted, never answered
            upstream = socket.create_connection(self.target)
            self.open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                while self.mode == "stall":
                    threading.Event().wait(0.05)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                self.open.discard(sock)
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def drop(self) -> None:
        self.mode = "refuse"
        for sock in list(self.open):  # the pipes' threads wake and close them
            self.open.discard(sock)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def main(host: str, port: str) -> None:
    proxy = _Proxy((host, int(port)))
    print(proxy.listener.getsockname()[1], flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command in ("forward", "refuse", "stall"):
            proxy.mode = command
        elif command == "drop":
            proxy.drop()
        answer = proxy.connections if command == "connections" else proxy.mode
        print(answer, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])


@contextlib.contextmanager
def proxy_before(endpoint: str) -> Iterator[FaultProxy]:
    """A :class:`FaultProxy` in front of the server at ``endpoint`` (``http://host:port``), closed after."""
    target = urlparse(endpoint)
    proxy = FaultProxy(target.hostname, target.port)
    try:
        yield proxy
    finally:
        proxy.close()
