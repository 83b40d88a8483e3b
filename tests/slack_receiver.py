"""A Slack webhook (and Web API) stand-in on loopback: the real notifiers post to it."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: What an Incoming Webhook answers when it refuses a message: the error code as the body,
#: under these statuses (api.slack.com/messaging/webhooks#handling_errors).
WEBHOOK_ERRORS = {
    "invalid_payload": 400,
    "action_prohibited": 403,
    "channel_not_found": 404,
    "channel_is_archived": 410,
}


class SlackReceiver:
    """A Slack webhook (and Web API) stand-in on loopback that records what it is sent.

    :param mode: ``ok`` answers 200 ``ok``; ``error`` answers 500; ``hang`` answers only after
        ``hang_seconds``; ``refuse`` answers as Slack does when it refuses a message for
        ``refusal`` (an error code): a webhook with the code's 4xx status
        (:data:`WEBHOOK_ERRORS`), ``chat.postMessage`` with 200 ``{"ok": false, "error": code}``
    """

    def __init__(self) -> None:
        self.mode = "ok"
        self.hang_seconds = 10.0
        self.refusal = "channel_not_found"
        self.received: list[dict] = []
        self.paths: list[str] = []
        self.answered = 0  # replies written (or given up on by the client)
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.paths.append(self.path)
                receiver.received.append(json.loads(body))
                if receiver.mode == "hang":
                    receiver.release.wait(receiver.hang_seconds)
                status, reply = receiver._answer(self.path)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:  # the client gave up waiting
                    pass
                receiver.answered += 1

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/services/T0/B0/secret"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def refuse(self, error: str) -> None:
        """Refuse every message from now on with Slack's error code ``error``."""
        self.mode, self.refusal = "refuse", error

    def _answer(self, path: str) -> tuple[int, bytes]:
        api = path.endswith("chat.postMessage")
        if self.mode == "refuse":
            if api:
                return 200, json.dumps({"ok": False, "error": self.refusal}).encode()
            return WEBHOOK_ERRORS[self.refusal], self.refusal.encode()
        status, reply = (500, b"internal_error") if self.mode == "error" else (200, b"ok")
        if api:
            reply = json.dumps({"ok": status == 200, "channel": "C1", "ts": "1.2"}).encode()
        return status, reply

    def texts(self) -> list[str]:
        return [message["text"] for message in self.received]

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
