#!/usr/bin/env python3
"""Stand-in for the appliance behind nginx, used by .ci/check-nginx (standard library only).

Listens on 127.0.0.1:PORT (--port 0 picks a free one) and prints `listening on http://127.0.0.1:PORT`
once it accepts connections. It answers like the appliance would where the check needs it, and reports
what nginx sent it:

  any path            200 JSON {"method", "path", "headers": {name: [values]}, "body_bytes",
                      "first_body_byte_at", "request_seen_at"}; request bodies (Content-Length or
                      chunked) are read to the end and counted, never stored.
  /not-found          the same JSON with status 404
  /api/.../events     text/event-stream: 3 events, --sse-gap seconds apart (the SSE route); any
                      other path ending in /events streams the same way, so a buffered route can be
                      told apart from an unbuffered one.

Every response carries the security headers the appliance sets itself, so the check can see that
nginx sends each of them once. The real appliance replaces this; nothing here is part of it.
"""

import argparse
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The appliance's own copies; nginx must hide these and send its own (values differ on purpose).
APPLIANCE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; upstream-copy",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Strict-Transport-Security": "max-age=1",
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # nginx keeps upstream connections alive
    sse_gap = 1.5

    def log_message(self, fmt, *args):  # quiet: the check prints its own transcript
        pass

    def _read_body(self):
        """Reads the request body to its end; returns (bytes read, time the first byte arrived)."""
        first = None
        total = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                remaining = size
                while remaining:
                    chunk = self.rfile.read(min(remaining, 65536))
                    if not chunk:
                        raise ConnectionError("body ended early")
                    first = first or time.time()
                    total += len(chunk)
                    remaining -= len(chunk)
                self.rfile.readline()  # CRLF after each chunk
        else:
            remaining = int(self.headers.get("Content-Length") or 0)
            while remaining:
                chunk = self.rfile.read(min(remaining, 65536))
                if not chunk:
                    raise ConnectionError("body ended early")
                first = first or time.time()
                total += len(chunk)
                remaining -= len(chunk)
        return total, first

    def _answer(self):
        seen = time.time()
        body_bytes, first_byte = self._read_body()
        path = self.path.split("?", 1)[0]
        if path.endswith("/events"):
            self._stream_events()
            return
        headers = {}
        for name, value in self.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        payload = json.dumps(
            {
                "method": self.command,
                "path": self.path,
                "headers": headers,
                "body_bytes": body_bytes,
                "first_body_byte_at": first_byte,
                "request_seen_at": seen,
            }
        ).encode() + b"\n"
        self.send_response(404 if path == "/not-found" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in APPLIANCE_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _stream_events(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in APPLIANCE_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        for i in range(3):
            if i:
                time.sleep(self.sse_gap)
            event = f"event: progress\ndata: {{\"n\":{i}}}\n\n".encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--sse-gap", type=float, default=1.5, help="seconds between two events")
    args = parser.parse_args()
    Handler.sse_gap = args.sse_gap
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
