"""The shop's app: a few dozen lines of Python's standard library.

GET /health    200 "ok"
GET /products  {"products": [...], "visits": N}: the products come from
           PostgreSQL (psql, with PGHOST/PGPORT/PGUSER/PGDATABASE from
           environment.yml), N from a counter INCRemented in Redis over a
           plain RESP exchange on a socket; no driver to install.
"""
import json
import os
import socket
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

REDIS = urlsplit(os.environ["REDIS_URL"])
QUERY = "SELECT coalesce(json_agg(p ORDER BY p.id), '[]') FROM products p"


def products():
    out = subprocess.run(["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", QUERY],
                 check=True, capture_output=True, text=True, timeout=10)
    return json.loads(out.stdout)


def incr(key):
    with socket.create_connection((REDIS.hostname, REDIS.port), timeout=5) as s:
        s.sendall(b"*2\r\n$4\r\nINCR\r\n$%d\r\n%s\r\n" % (len(key), key))
        reply = s.makefile("rb").readline()
    if not reply.startswith(b":"):
        raise RuntimeError("redis: %r" % reply)
    return int(reply[1:])


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            if self.path == "/health":
                self.reply(200, "text/plain", b"ok\n")
            elif self.path == "/products":
                body = {"products": products(), "visits": incr(b"shop:visits")}
                self.reply(200, "application/json", json.dumps(body).encode())
            else:
                self.reply(404, "text/plain", b"not found\n")
        except Exception as e:  # report it to the client, keep serving
            self.reply(500, "text/plain", ("error: %s\n" % e).encode())

    def reply(self, code, ctype, body):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["APP_PORT"])), Handler)
    print("app: listening on 127.0.0.1:%s" % os.environ["APP_PORT"], file=sys.stderr, flush=True)
    server.serve_forever()
