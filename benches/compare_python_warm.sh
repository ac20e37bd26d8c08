#!/usr/bin/env bash
# The warm get_authorizer of the Python SDK's ClientApp and of ours, in one
# session on one machine, and the ratio. Both hand out a valid Transfer
# token from memory storage. ROUNDS rounds (3 by default), each timing
# Python and then Rust, so that both sides meet the machine's changing
# load alike; each round's ratio is printed, then their median.
#
#   benches/compare_python_warm.sh        # GLOBUS_APP_PYTHON: a Python with globus-sdk 4.10.0
set -euo pipefail
cd "$(dirname "$0")/.."
python=${GLOBUS_APP_PYTHON:-.ci/venv/bin/python}
rounds=${ROUNDS:-3}
name=blocking_get_authorizer_warm_memory
ratios=()
for round in $(seq "$rounds"); do
python_ns=$("$python" - <<'PYTHON'
import statistics, time, timeit
from globus_sdk import ClientApp, GlobusAppConfig
from globus_sdk.token_storage import TokenStorageData

TRANSFER = "transfer.api.globus.org"
app = ClientApp(
    "Bench",
    client_id="5c1a7e1e-0000-4000-8000-00000000c1d0",
    client_secret="bench-secret",
    scope_requirements={TRANSFER: ["urn:globus:auth:scope:transfer.api.globus.org:all"]},
    config=GlobusAppConfig(token_storage="memory"),
)
app.token_storage.store_token_data_by_resource_server({TRANSFER: TokenStorageData(
    resource_server=TRANSFER, identity_id=None,
    scope="urn:globus:auth:scope:transfer.api.globus.org:all", access_token="AT-transfer",
    refresh_token=None, expires_at_seconds=int(time.time()) + 3600, token_type="Bearer")})
app.get_authorizer(TRANSFER)
runs = timeit.repeat(lambda: app.get_authorizer(TRANSFER), number=2000, repeat=15)
print(f"{statistics.median(runs) / 2000 * 1e9:.0f}")
PYTHON
)

cargo bench -q -p globus-app-benches --bench files -- --noplot "$name" > /dev/null 2>&1
rust_ns=$(python3 -c "import json; print(round(json.load(open('target/criterion/$name/new/estimates.json'))['median']['point_estimate']))")
ratio=$(python3 -c "print(f'{$python_ns / $rust_ns:.1f}')")
ratios+=("$ratio")
echo "round $round: warm get_authorizer, memory storage: Python ${python_ns} ns, Rust ${rust_ns} ns: Rust is ${ratio}x faster"
done
echo "median of $rounds rounds: Rust is $(printf '%s\n' "${ratios[@]}" | sort -n | sed -n "$(( (rounds + 1) / 2 ))p")x faster"
