#![no_main]
//! `globus_app_proto::fuzzing::token_file`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| globus_app_proto::fuzzing::token_file(data));
