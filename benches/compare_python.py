"""Times the Python SDK on the same inputs as benches/proto.rs, for a
side-by-side comparison with the criterion medians. Run:

    pip install globus-sdk==4.10.0
    python3 benches/compare_python.py
"""

import json
import statistics
import timeit

from globus_sdk.scopes import Scope, ScopeParser
from globus_sdk.token_storage import TokenStorageData

NESTED = (
    "urn:globus:auth:scope:transfer.api.globus.org:all[https://auth.globus.org/scopes/c1/data_access"
    "[https://auth.globus.org/scopes/x/y *https://auth.globus.org/scopes/x/z]]"
)
A = [Scope.parse(f"urn:globus:auth:scope:rs{i}:all[dep{i} *opt{i}]") for i in range(25)]
B = [Scope.parse(f"urn:globus:auth:scope:rs{i}:all[other{i}]") for i in range(15, 40)]

RECORDS = {
    f"rs{i}.api.globus.org": {
        "resource_server": f"rs{i}.api.globus.org",
        "identity_id": "c8aad43e-d274-11e5-bf98-8b02896cf782",
        "scope": f"urn:globus:auth:scope:rs{i}.api.globus.org:all",
        "access_token": f"ACCESS_TOKEN_{i}_0123456789abcdef",
        "refresh_token": f"REFRESH_TOKEN_{i}_0123456789abcdef",
        "expires_at_seconds": 1700000000 + i,
        "token_type": "Bearer",
    }
    for i in range(10)
}
FILE = json.dumps({"data": {"DEFAULT": RECORDS}, "format_version": "2.0", "globus-sdk.version": "4.10.0"})


def read_file():
    data = json.loads(FILE)
    return {rs: TokenStorageData.from_dict(d) for rs, d in data["data"]["DEFAULT"].items()}


def write_file():
    records = {rs: TokenStorageData.from_dict(d) for rs, d in RECORDS.items()}
    doc = {"data": {"DEFAULT": {rs: r.to_dict() for rs, r in records.items()}},
           "format_version": "2.0", "globus-sdk.version": "4.10.0"}
    return json.dumps(doc)


CASES = {
    "scope_parse_simple": lambda: Scope.parse("openid"),
    "scope_parse_nested_3_levels": lambda: Scope.parse(NESTED),
    "merge_scopes_50": lambda: ScopeParser.merge_scopes(A, B),
    "scope_display_nested": (lambda s: lambda: str(s))(Scope.parse(NESTED)),
    "json_token_file_read_10_servers": read_file,
    "json_token_file_write_10_servers": write_file,
}

for name, fn in CASES.items():
    number = 200
    runs = timeit.repeat(fn, number=number, repeat=15)
    median = statistics.median(runs) / number
    print(f"{name:40s} {median * 1e6:10.2f} µs")
