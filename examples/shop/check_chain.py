"""The shop's test: the whole chain, through nginx.

nginx (WEB_PORT) -> app -> PostgreSQL (the products the migration loaded)
            -> Redis (the visit counter, which must go up by one
               per request).  Exits non-zero, saying why, otherwise.
"""
import json
import os
import sys
import urllib.request

BASE = "http://127.0.0.1:%s" % os.environ["WEB_PORT"]


def get(path):
    with urllib.request.urlopen(BASE + path, timeout=10) as r:
        return r.status, r.headers, r.read()


def main():
    status, headers, body = get("/health")
    assert status == 200, "/health: status %d" % status
    assert headers.get("Server", "").startswith("nginx"), \
        "/health did not come through nginx (Server: %r)" % headers.get("Server")

    _, _, body = get("/products")
    first = json.loads(body)
    names = sorted(p["name"] for p in first["products"])
    assert names == ["cup", "teapot"], "products from PostgreSQL: %r" % names
    prices = {p["name"]: p["price_cents"] for p in first["products"]}
    assert prices == {"teapot": 2500, "cup": 600}, "prices: %r" % prices

    _, _, body = get("/products")
    second = json.loads(body)
    assert second["visits"] == first["visits"] + 1, \
        "visit counter in Redis: %r then %r" % (first["visits"], second["visits"])

    print("check_chain: ok: nginx :%s -> app -> postgres (%d products), redis (visits %d -> %d)"
          % (os.environ["WEB_PORT"], len(names), first["visits"], second["visits"]))


if __name__ == "__main__":
    try:
        main()
    except (AssertionError, OSError, ValueError, KeyError) as e:
        print("check_chain: FAILED: %s" % e, file=sys.stderr)
        sys.exit(1)
