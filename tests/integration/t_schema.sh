#!/bin/bash
# The JSON Schema describes environment.yml: every example and valid fixture
# passes it, every fixture marked "# schema: reject" fails it.
set -eu
: "${ENVRUN_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"
exec /usr/bin/python3 "$ENVRUN_SRC/tests/schema/check_schema.py" \
        "$ENVRUN_SRC/schema/environment.schema.json" "$ENVRUN_SRC"
