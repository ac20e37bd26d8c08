# Sourced by .ci/run (and by tests/tests/ci_script.rs): the published crates
# as crates.io will have them, built and tested from their packages alone.
#
# test_packaged_crates TARGET_DIR CRATE...
#   unpacks target/package/<crate>-<version>.crate (made by `cargo package`)
#   into a workspace of their own (TARGET_DIR/packaged-crates: a fixed
#   place, because cargo keys a path crate's build by its name and version,
#   not its directory, and a test built in another place would keep that
#   place's CARGO_MANIFEST_DIR), where each crate's
#   registry dependencies on the others resolve to the unpacked packages
#   ([patch.crates-io]), and runs every test, example build and doctest
#   of each. A file a package leaves out (a fixture, a helper crate) fails
#   it here.
test_packaged_crates() {
  local target_dir=$1
  shift
  local version scratch crate members="" patches=""
  version=$(cargo metadata -q --no-deps --format-version 1 \
    | sed -n 's/.*"name":"globus-app-proto","version":"\([^"]*\)".*/\1/p')
  [ -n "$version" ] || { echo "test_packaged_crates: no version found" >&2; return 1; }
  scratch="$target_dir/packaged-crates"
  rm -rf "$scratch"
  mkdir -p "$scratch"
  for crate in "$@"; do
    local package="target/package/$crate-$version.crate"
    [ -f "$package" ] || { echo "test_packaged_crates: $package is missing (run cargo package first)" >&2; return 1; }
    # -m: the files dated now, so that cargo rebuilds them rather than take
    # an earlier packaging's build as fresh (the archive dates every file alike).
    tar -xzmf "$package" -C "$scratch"
    members="$members\"$crate-$version\", "
    patches="$patches$crate = { path = \"$crate-$version\" }
"
  done
  cat > "$scratch/Cargo.toml" <<TOML
[workspace]
resolver = "3"
members = [$members]

[patch.crates-io]
$patches
TOML
  # The repository's lock file: the same dependency versions as every
  # other step (and so the same compiled dependencies in TARGET_DIR).
  cp Cargo.lock "$scratch/Cargo.lock"
  (cd "$scratch" && cargo test --workspace --examples --tests --target-dir "$target_dir" \
      && cargo test --workspace --doc --target-dir "$target_dir")
}
