#!/usr/bin/env bash
# SQLite under contention, side by side: 8 processes each storing its own
# record 100 times into one database, with the Python SDK's
# SQLiteTokenStorage and with this crate's SqliteTokenStorage (the
# `files` benchmark binary in writer mode). Prints the wall time of each
# and every writer's failed-store count.
#
#   cargo bench -p globus-app-benches --bench files --no-run
#   PYTHON=.ci/venv/bin/python benches/compare_python_sqlite.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
ROUNDS=${1:-3}
BIN=$(ls -t target/release/deps/files-* | grep -v '\.d$' | head -1)
DIR=$(mktemp -d)
trap 'rm -rf "$DIR"' EXIT
cat > "$DIR/writer.py" <<'PY'
import sys, time
from globus_sdk.token_storage import SQLiteTokenStorage, TokenStorageData
path, writer = sys.argv[1], sys.argv[2]
storage = SQLiteTokenStorage(path)
rs = f"rs{writer}.api.globus.org"
record = TokenStorageData(resource_server=rs, identity_id=None,
    scope="urn:globus:auth:scope:transfer.api.globus.org:all", access_token="AT-transfer",
    refresh_token=None, expires_at_seconds=int(time.time()) + 3600, token_type="Bearer")
failed = 0
for _ in range(100):
    try:
        storage.store_token_data_by_resource_server({rs: record})
    except Exception:
        failed += 1
print(f"FAILED={failed}")
PY
run() { # name, command prefix...
  local name=$1; shift
  local db="$DIR/$name.db"
  rm -f "$db"*
  "$@" init "$db" > /dev/null
  local start=$(date +%s.%N)
  for i in 0 1 2 3 4 5 6 7; do "$@" "$i" "$db" > "$DIR/$name.$i" & done
  wait
  local end=$(date +%s.%N)
  printf '%-7s %6.3f s  failed: %s\n' "$name" "$(echo "$end - $start" | bc)" \
    "$(cat "$DIR/$name".[0-7] | sed 's/FAILED=//' | paste -sd+ | bc)"
}
rust() { GLOBUS_APP_BENCH_WRITER=$1 GLOBUS_APP_BENCH_SQLITE_WRITER=$2 "$BIN"; }
python() { "$PYTHON" "$DIR/writer.py" "$2" "$1"; }
for round in $(seq "$ROUNDS"); do
  run rust rust
  run python python
done
