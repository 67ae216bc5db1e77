"""A webhook receiver on loopback, as another government system would run one."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def event(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.body)
        return found


@dataclass
class Receiver:
    """Answers 500 to the first ``fail_first`` tries of each message (pings excepted), or
    redirects everything when ``redirect_to`` is set; keeps what it was sent."""

    fail_first: int = 0
    redirect_to: str | None = None
    # The first try of each message waits this long before answering (a slow endpoint).
    stall_first: float = 0.0
    # Bytes of the 200 answer's body (a chatty or hostile endpoint).
    answer_bytes: int = 0
    requests: list[Received] = field(default_factory=list)
    tries: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    # Each request waits this long (a slow endpoint), and the most in flight at once.
    stall_each: float = 0.0
    in_flight: int = 0
    most_in_flight: int = 0

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                msg_id = self.headers.get("webhook-id", "")
                with receiver.lock:
                    receiver.tries[msg_id] += 1
                    tries = receiver.tries[msg_id]
                with receiver.lock:
                    receiver.in_flight += 1
                    receiver.most_in_flight = max(receiver.most_in_flight, receiver.in_flight)
                time.sleep(receiver.stall_each)
                with receiver.lock:
                    receiver.in_flight -= 1
                if tries == 1 and receiver.stall_first:
                    time.sleep(receiver.stall_first)
                if receiver.redirect_to is not None:
                    status = 302
                elif tries <= receiver.fail_first and not msg_id.startswith("ping_"):
                    status = 500
                else:
                    status = 200
                answer = b"received" if status == 200 else b"not now"
                if status == 200 and receiver.answer_bytes:
                    answer = b"x" * receiver.answer_bytes
                # Recorded before the answer goes out: once the sender has its answer, the
                # test may look, and the request must already be there.
                received = Received({k.lower(): v for k, v in self.headers.items()}, body, status)
                with receiver.lock:
                    receiver.requests.append(received)
                try:
                    self.send_response(status)
                    if status == 302:
                        self.send_header("Location", str(receiver.redirect_to))
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    # The sender went away before the answer.
                    with receiver.lock:
                        at = receiver.requests.index(received)
                        receiver.requests[at] = replace(received, status=-1)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/nscl-events"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    def delivered(self) -> list[Received]:
        """Messages answered 200, pings left out, in the order they arrived."""
        with self.lock:
            return [
                r
                for r in self.requests
                if r.status == 200 and not r.headers.get("webhook-id", "").startswith("ping_")
            ]

    async def wait_for(self, predicate: Any, within: float = 60.0) -> list[Received]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = self.delivered()
            if predicate(found):
                return found
            await asyncio.sleep(0.1)
        raise AssertionError(f"not received in {within} s: {[r.event['type'] for r in found]}")
