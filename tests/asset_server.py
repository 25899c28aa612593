#!/usr/bin/env python3
"""asset_server.py: the HTTP server of the asset tests and benchmark.

Listens on 127.0.0.1 at a free port, prints the port on stdout once it
accepts connections, and serves until killed:

  /data/<n>.bin     n bytes of the pattern (byte i = i % 251), Content-Length
  /chunked/<n>.bin  the same bytes, chunked (no Content-Length)
  /gzip/<n>.bin     the same bytes gzip-compressed when Accept-Encoding asks
  /missing          404                   /error      500, always
  /flaky/<id>       500 the first 2 times for each id, then /data/1000.bin
  /stall            headers, then nothing for 30 s
  /short            Content-Length 1000, 10 bytes, then the connection closes
  /huge             Content-Length 1 TiB, nothing, then closes
  /endless          chunked, never ends (until the client goes away)
  /loop             302 to itself         /redirect   302 to /data/100.bin
  /empty            200 with Content-Length 0
  /count            how many requests came so far (text)
  /slow/<n>.bin     /data/<n>.bin after 100 ms; /maxactive: most /slow at once
  /ua               the request's User-Agent
  /connections      how many connections were opened so far (text)
With --tls CERT KEY it serves HTTPS.
"""
import gzip
import http.server
import ssl
import sys
import threading
import time

PERIOD = bytes(range(251))
_lock = threading.Lock()
_flaky = {}
_count = 0
_connections = 0
_active = 0
_max_active = 0
_pattern = PERIOD * 64


def pattern(n):
    global _pattern
    if len(_pattern) < n:
        _pattern = PERIOD * (n // len(PERIOD) + 1)
    return _pattern[:n]


def size_of(name):
    return int(name.rsplit("/", 1)[1].split(".")[0])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK stall between them

    def log_message(self, *args):
        pass

    def setup(self):  # once per connection
        global _connections
        with _lock:
            _connections += 1
        super().setup()

    def send(self, code, body=b"", headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        global _count
        with _lock:
            _count += 1
        p = self.path.split("?")[0]
        try:
            self.route(p)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def route(self, p):
        if p.startswith("/data/"):
            self.send(200, pattern(size_of(p)))
        elif p.startswith("/chunked/"):
            body = pattern(size_of(p))
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(body), 65521):
                part = body[i:i + 65521]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif p.startswith("/gzip/"):
            body = pattern(size_of(p))
            if "gzip" in self.headers.get("Accept-Encoding", ""):
                self.send(200, gzip.compress(body, 1), [("Content-Encoding", "gzip")])
            else:
                self.send(200, body)
        elif p == "/missing":
            self.send(404, b"not here")
        elif p == "/error":
            self.send(500, b"broken")
        elif p.startswith("/flaky/"):
            with _lock:
                n = _flaky[p] = _flaky.get(p, 0) + 1
            if n <= 2:
                self.send(500, b"try again")
            else:
                self.send(200, pattern(1000))
        elif p == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.flush()
            time.sleep(30)
        elif p == "/short":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(pattern(10))
            self.close_connection = True
        elif p == "/huge":
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 40))
            self.end_headers()
            self.close_connection = True
        elif p == "/endless":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            chunk = pattern(16384)
            while True:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                time.sleep(0.01)
        elif p == "/loop":
            self.send(302, b"", [("Location", "/loop")])
        elif p == "/redirect":
            self.send(302, b"", [("Location", "/data/100.bin")])
        elif p == "/empty":
            self.send(200, b"")
        elif p.startswith("/slow/"):  # counts transfers in progress at once
            global _active, _max_active
            with _lock:
                _active += 1
                _max_active = max(_max_active, _active)
            try:
                time.sleep(0.1)
                self.send(200, pattern(size_of(p)))
            finally:
                with _lock:
                    _active -= 1
        elif p == "/maxactive":
            with _lock:
                n = _max_active
            self.send(200, str(n).encode())
        elif p == "/connections":
            with _lock:
                n = _connections
            self.send(200, str(n).encode())
        elif p == "/ua":
            self.send(200, self.headers.get("User-Agent", "").encode())
        elif p == "/count":
            with _lock:
                n = _count
            self.send(200, str(n).encode())
        else:
            self.send(404, b"no route")


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        pass  # clients that hang up (timeouts, cancels, aborts) are part of the tests


def main():
    srv = Server(("127.0.0.1", 0), Handler)
    if len(sys.argv) == 4 and sys.argv[1] == "--tls":  # --tls CERT KEY: serve HTTPS
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[2], sys.argv[3])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
