#!/usr/bin/env bash
# TransferClient.endpoint_search of the Python SDK and of this library, in
# one session, against one globus-auth-dev-server (its Transfer-shaped
# service, keep-alive on loopback), everything pinned to one core so that
# the client and the server share it alike. Prints both medians per call
# and the ratio.
#
#   benches/compare_python_service.sh    # GLOBUS_APP_PYTHON: a Python with globus-sdk 4.10.0
set -euo pipefail
cd "$(dirname "$0")/.."
python=${GLOBUS_APP_PYTHON:-.ci/venv/bin/python}
core=${GLOBUS_APP_BENCH_CORE:-1}

cargo build -q --release -p globus-app-dev-server
log=$(mktemp)
taskset -c "$core" target/release/globus-auth-dev-server > "$log" &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do grep -q 'GLOBUS_SDK_SERVICE_URL_SEARCH' "$log" && break; sleep 0.1; done
auth=$(grep 'export GLOBUS_SDK_SERVICE_URL_AUTH=' "$log" | sed 's/.*=//')
services=$(grep 'export GLOBUS_SDK_SERVICE_URL_TRANSFER=' "$log" | sed 's/.*=//')

python_us=$(GLOBUS_SDK_SERVICE_URL_AUTH=$auth GLOBUS_SDK_SERVICE_URL_TRANSFER=$services \
  taskset -c "$core" "$python" - <<'PYTHON'
import statistics, timeit
from globus_sdk import ClientApp, GlobusAppConfig, TransferClient
app = ClientApp("Bench", client_id="5c1a7e1e-0000-4000-8000-00000000c1d0",
                client_secret="dev-secret", config=GlobusAppConfig(token_storage="memory"))
tc = TransferClient(app=app)
tc.endpoint_search("Tutorial Collection")
runs = timeit.repeat(lambda: tc.endpoint_search("Tutorial Collection"), number=200, repeat=15)
print(f"{statistics.median(runs) / 200 * 1e6:.1f}")
PYTHON
)

cargo bench -q -p globus-app-benches --bench service --no-run 2>/dev/null
bench=$(ls -t target/release/deps/service-* | grep -v '\.d$' | head -1)
GLOBUS_APP_BENCH_AUTH_URL=$auth GLOBUS_APP_BENCH_SERVICES_URL=$services \
  taskset -c "$core" "$bench" --bench --noplot transfer_client_endpoint_search > /dev/null 2>&1
rust_us=$(python3 -c "import json; print(round(json.load(open('target/criterion/service/transfer_client_endpoint_search/new/estimates.json'))['median']['point_estimate'] / 1000, 1))")
echo "TransferClient.endpoint_search over loopback keep-alive: Python ${python_us} us, Rust ${rust_us} us: Rust is $(python3 -c "print(f'{$python_us / $rust_us:.1f}')")x faster"
