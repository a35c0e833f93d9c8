#!/usr/bin/env python3
"""ctlpoke: a raw client of envrun's control socket (SPEC section 8), for the
integration tests that treat the socket as hostile ground
(tests/integration/t_ctl_hostile.sh).  Standard library only; every wait is
bounded.

Usage: ctlpoke.py SOCK ACTION [ARGS]

  req METHOD TARGET [BODY]  one well-formed HTTP/1.1 request (Connection:
                            close; a JSON BODY gets Content-Length)
  raw TEXT                  send TEXT as is (Python escapes decoded: \\r\\n),
                            then read the answer like req
      Both print the answer's status code on the first line and its body
      (chunked transfer decoded) after it; exit 0.  A connection closed
      before any answer prints "closed" (exit 3); a failed connect prints
      "connect: <errno name>" (exit 4); no answer within 10 s prints
      "timeout" (exit 5).

  big BYTES [chunked]       a POST to /v1/nothing with a BYTES-byte body
                            (declared with Content-Length, or sent in 64 KiB
                            chunks), written as fast as the server reads;
                            prints "status N" when an answer came (even
                            while the body was still being sent), else
                            "dropped" (the server closed the connection);
                            exit 0 either way, 5 when the server neither
                            answered nor closed within 20 s.

  loris SECONDS             sends half of a request head (then prints
                            "sent"), then holds the connection up to
                            SECONDS; prints "closed after
                            X.X s" (exit 0, the server hung up: answered or
                            not) or "open after SECONDS s" (exit 1).

  idle N SECONDS            opens N connections at once and sends nothing;
                            SECONDS later prints "connected C answered503 B
                            closed K open O" (B: connections that got a 503
                            answer; K: closed by the server without one; O:
                            still open) and closes them all; exit 0.

  burst N                   N clients at once (threads), each sending GET
                            /v1/status as soon as all are connected;
                            prints "ok A busy B other O" (A: 200 with a JSON
                            body; B: 503; O: anything else, each then on a
                            line of its own); exit 0 when O is 0, else 1.
"""
import errno
import select
import socket
import sys
import time


def connect(path, timeout=5.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def read_all(s, deadline):
    """Reads until EOF or the deadline.  Returns (bytes, eof)."""
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, False
        s.settimeout(left)
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            return data, False
        except (ConnectionResetError, BrokenPipeError):
            return data, True
        if not chunk:
            return data, True
        data += chunk


def dechunk(body):
    out = b""
    while body:
        line, _, rest = body.partition(b"\r\n")
        try:
            n = int(line.split(b";")[0], 16)
        except ValueError:
            return out + body
        if n == 0:
            break
        out += rest[:n]
        body = rest[n + 2:]
    return out


def parse(data):
    """(status, body) of an HTTP response, or (None, None)."""
    if not data.startswith(b"HTTP/"):
        return None, None
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split()
    if len(parts) < 2 or not parts[1].isdigit():
        return None, None
    chunked = any(l.lower().replace(b" ", b"") == b"transfer-encoding:chunked" for l in lines[1:])
    return int(parts[1]), dechunk(body) if chunked else body


def answer(s):
    data, eof = read_all(s, time.monotonic() + 10)
    status, body = parse(data)
    if status is None:
        if not data and eof:
            print("closed")
            return 3
        if not eof and not data:
            print("timeout")
            return 5
        print("not an HTTP response: %r" % data[:200])
        return 6
    print(status)
    sys.stdout.write(body.decode("utf-8", "replace"))
    if body and not body.endswith(b"\n"):
        sys.stdout.write("\n")
    return 0


def do_connect(path):
    try:
        return connect(path)
    except OSError as e:
        print("connect: %s" % errno.errorcode.get(e.errno, str(e.errno)))
        sys.exit(4)


def send_or_closed(s, data):
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def req(path, method, target, body=None):
    s = do_connect(path)
    head = "%s %s HTTP/1.1\r\nHost: envrun\r\nConnection: close\r\n" % (method, target)
    payload = b""
    if body is not None:
        payload = body.encode()
        head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(payload)
    send_or_closed(s, head.encode() + b"\r\n" + payload)
    return answer(s)


def raw(path, text):
    s = do_connect(path)
    send_or_closed(s, text.encode().decode("unicode_escape").encode("latin-1"))
    return answer(s)


def big(path, nbytes, chunked):
    s = do_connect(path)
    head = "POST /v1/nothing HTTP/1.1\r\nHost: envrun\r\nContent-Type: application/json\r\n"
    head += "Transfer-Encoding: chunked\r\n" if chunked else "Content-Length: %d\r\n" % nbytes
    s.setblocking(False)
    out = bytearray(head.encode() + b"\r\n")
    block = b"x" * 65536
    sent_body = 0
    got = b""
    deadline = time.monotonic() + 20
    closed = False
    while time.monotonic() < deadline and not closed:
        if not out and sent_body < nbytes:
            n = min(len(block), nbytes - sent_body)
            out += (b"%x\r\n" % n + block[:n] + b"\r\n") if chunked else block[:n]
            sent_body += n
            if chunked and sent_body >= nbytes:
                out += b"0\r\n\r\n"
        r, w, _ = select.select([s], [s] if out else [], [], 0.5)
        if r:
            try:
                chunk = s.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            if not chunk:
                closed = True
                break
            got += chunk
            if parse(got)[0] is not None and b"\r\n\r\n" in got:
                break
        if w and out:
            try:
                n = s.send(out)
                del out[:n]
            except BlockingIOError:
                pass
            except (ConnectionResetError, BrokenPipeError):
                closed = True
    # an answer may still sit in the receive buffer after a reset on send
    try:
        s.setblocking(True)
        s.settimeout(1)
        more, _ = read_all(s, time.monotonic() + 1)
        got += more
    except OSError:
        pass
    status = parse(got)[0]
    if status is not None:
        print("status %d" % status)
        return 0
    if closed:
        print("dropped")
        return 0
    print("neither answered nor closed within 20 s (%d body bytes sent)" % sent_body)
    return 5


def loris(path, secs):
    s = do_connect(path)
    t0 = time.monotonic()
    send_or_closed(s, b"GET /v1/status HTTP/1.1\r\nHost: envr")
    print("sent", flush=True)
    data, eof = read_all(s, t0 + secs)
    if eof:
        print("closed after %.1f s%s" % (time.monotonic() - t0, " (answered)" if data else ""))
        return 0
    print("open after %g s" % secs)
    return 1


def idle(path, n, secs):
    socks = []
    for _ in range(n):
        try:
            socks.append(connect(path))
        except OSError as e:
            print("connect %d failed: %s" % (len(socks) + 1, errno.errorcode.get(e.errno, e.errno)))
            break
    time.sleep(secs)
    busy = closed = still = 0
    for s in socks:
        s.setblocking(False)
        try:
            data = s.recv(4096)
        except BlockingIOError:
            still += 1
            continue
        except OSError:
            closed += 1
            continue
        if data.startswith(b"HTTP/1.1 503"):
            busy += 1
        else:
            closed += 1
    print("connected %d answered503 %d closed %d open %d" % (len(socks), busy, closed, still))
    for s in socks:
        s.close()
    return 0


def burst(path, n):
    import threading
    go = threading.Barrier(n)
    results = [None] * n

    def one(i):
        try:
            s = connect(path, timeout=15.0)
        except OSError as e:
            go.abort()
            results[i] = "connect: %s" % errno.errorcode.get(e.errno, e.errno)
            return
        try:
            go.wait(15)
        except threading.BrokenBarrierError:
            pass
        send_or_closed(s, b"GET /v1/status HTTP/1.1\r\nHost: envrun\r\nConnection: close\r\n\r\n")
        data, eof = read_all(s, time.monotonic() + 15)
        s.close()
        status, body = parse(data)
        if status == 200 and body.lstrip().startswith(b"{"):
            results[i] = "ok"
        elif status == 503:
            results[i] = "busy"
        else:
            results[i] = "status %s eof %s data %r" % (status, eof, data[:80])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    ok = results.count("ok")
    busy = results.count("busy")
    other = [r for r in results if r not in ("ok", "busy")]
    print("ok %d busy %d other %d" % (ok, busy, len(other)))
    for r in other:
        print(r)
    return 0 if not other else 1


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    path, action, args = argv[1], argv[2], argv[3:]
    if action == "req" and len(args) in (2, 3):
        return req(path, *args)
    if action == "raw" and len(args) == 1:
        return raw(path, args[0])
    if action == "big" and len(args) in (1, 2):
        return big(path, int(args[0]), len(args) == 2 and args[1] == "chunked")
    if action == "loris" and len(args) == 1:
        return loris(path, float(args[0]))
    if action == "burst" and len(args) == 1:
        return burst(path, int(args[0]))
    if action == "idle" and len(args) == 2:
        return idle(path, int(args[0]), float(args[1]))
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
