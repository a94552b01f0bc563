#!/usr/bin/env python3
"""An ordinary, uninstrumented Python HTTP service for watching sonde at work.

    GET /price?item=X   ->  {"item": X, "price": 12.5}
    anything else       ->  404

Environment: PORT (8081), HOST (127.0.0.1).
"""

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PORT = int(os.environ.get("PORT", "8081"))
HOST = os.environ.get("HOST", "127.0.0.1")
PRICE = 12.5


class PriceHandler(BaseHTTPRequestHandler):
    # HTTP/1.1 so the frontend's keep-alive agent really reuses connections;
    # under HTTP/1.0 every request would get a fresh socket.
    protocol_version = "HTTP/1.1"
    server_version = "prices/1.0"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        items = parse_qs(url.query).get("item")
        if url.path != "/price" or not items:
            self._send(404, "text/plain", b"not found\n")
            return
        body = json.dumps({"item": items[0], "price": PRICE}).encode() + b"\n"
        self._send(200, "application/json", body)

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    # As PID 1 in a container SIGTERM would otherwise be ignored.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = ThreadingHTTPServer((HOST, PORT), PriceHandler)
    server.daemon_threads = True
    print(f"prices listening on http://{HOST}:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
