#![no_main]
//! `globus_app_proto::fuzzing::sealed_row`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| globus_app_proto::fuzzing::sealed_row(data));
