#!/usr/bin/env bash
# The advisory check of .ci/run, as a function its test can call.
#
# advisory_check DB_DIR: fills DB_DIR (deny.toml's db-path) with a RustSec
# advisory database and runs `cargo deny --offline check advisories bans
# licenses sources` against it. The database is, in order:
#   1. the snapshot beside the checkout ($ADVISORY_SNAPSHOT_TOOL, by default
#      ../shared/tools/advisory-db: the project's machines reach no feed);
#   2. the live database, fetched now ($ADVISORY_FETCH, by default
#      `cargo deny fetch db`), when the network reaches it.
# It says which it used; with neither it fails, never skipping the check.

advisory_check() {
  local db_dir="${1:?usage: advisory_check DB_DIR}"
  local snapshot_tool="${ADVISORY_SNAPSHOT_TOOL:-../shared/tools/advisory-db}"
  local fetch="${ADVISORY_FETCH:-cargo deny fetch db}"
  if [ -x "$snapshot_tool" ]; then
    echo "advisories: the RustSec snapshot ($snapshot_tool)"
    "$snapshot_tool" "$db_dir" || return 1
  elif $fetch; then
    echo "advisories: the live RustSec database (no snapshot at $snapshot_tool)"
  else
    echo "advisories: no database: no snapshot at $snapshot_tool, and the live one could not be fetched ($fetch); the check cannot run" >&2
    return 1
  fi
  cargo deny --offline check advisories bans licenses sources
}
