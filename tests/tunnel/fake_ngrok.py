"""A fake ngrok agent (for tests only): speaks what pyngrok reads of a real one, with no network.

pyngrok starts `ngrok start --none --log stdout ...`, reads its logfmt start-up lines on stdout for the
local API's address, then creates tunnels with `POST /api/tunnels`. This script does the same on
loopback and answers with a made-up public URL, so the whole path (`python -m app --tunnel` -> pyngrok ->
agent process -> printed URL -> agent stopped at shutdown) runs for real. Its arguments are written to
the file named by FAKE_NGROK_ARGS (inherited from the service's environment) for the test to check.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

PUBLIC_URL = "https://fake-slipway-tunnel.ngrok-free.app"
tunnels: dict[str, dict[str, object]] = {}


class Api(BaseHTTPRequestHandler):
    def _send(self, status: int, body: object | None = None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path.startswith("/api/tunnels/"):
            name = self.path.rsplit("/", 1)[1]
            return self._send(200, tunnels[name]) if name in tunnels else self._send(404, {"msg": "not found"})
        self._send(200, {"tunnels": list(tunnels.values()), "uri": "/api/tunnels"})

    def do_POST(self) -> None:
        options = json.loads(self.rfile.read(int(self.headers["content-length"])))
        name = options.get("name") or "tunnel"
        tunnels[name] = {
            "name": name,
            "uri": f"/api/tunnels/{name}",
            "public_url": PUBLIC_URL,
            "proto": "https",
            "config": {"addr": options.get("addr"), "inspect": True},
            "metrics": {},
        }
        self._send(201, tunnels[name])

    def do_DELETE(self) -> None:
        tunnels.pop(self.path.rsplit("/", 1)[1], None)
        self._send(204)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    if os.environ.get("FAKE_NGROK_ARGS"):
        Path(os.environ["FAKE_NGROK_ARGS"]).write_text(json.dumps(sys.argv[1:]))
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    signal.signal(signal.SIGTERM, lambda *_: (server.shutdown(), sys.exit(0)))
    host, port = server.server_address[:2]
    for line in (
        f't=now lvl=info msg="starting web service" obj=web addr={host}:{port}',
        'lvl=info msg="tunnel session started" obj=tunnels.session',
        'lvl=info msg="client session established" obj=csess id=fake',
    ):
        print(line, flush=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    thread.join()


if __name__ == "__main__":
    main()
