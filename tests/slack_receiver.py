"""A Slack webhook (and Web API) stand-in on loopback: the real notifiers post to it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class SlackReceiver:
    """A Slack webhook (and Web API) stand-in on loopback that records what it is sent.

    :param mode: ``ok`` answers 200 ``ok``; ``error`` answers 500; ``hang`` answers only after
        ``hang_seconds``
    """

    def __init__(self) -> None:
        self.mode = "ok"
        self.hang_seconds = 10.0
        self.received: list[dict] = []
        self.paths: list[str] = []
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.paths.append(self.path)
                receiver.received.append(json.loads(body))
                if receiver.mode == "hang":
                    receiver.release.wait(receiver.hang_seconds)
                status, reply = (500, b"internal_error") if receiver.mode == "error" else (200, b"ok")
                if self.path.endswith("chat.postMessage"):
                    reply = json.dumps({"ok": status == 200, "channel": "C1", "ts": "1.2"}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:  # the client gave up waiting
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/services/T0/B0/secret"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def texts(self) -> list[str]:
        return [message["text"] for message in self.received]

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
