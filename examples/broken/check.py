# examples/broken's test: fetches the web front.  It never runs: the
# bring-up fails at the api, and envrun says so instead.
import os
import urllib.request

urllib.request.urlopen("http://127.0.0.1:%s/" % os.environ["WEB_PORT"], timeout=5)
print("check: ok")
