//! Criterion benchmarks of globus-app's hot paths; see `benches/README.md`.
