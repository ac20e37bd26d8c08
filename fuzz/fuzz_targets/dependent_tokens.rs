#![no_main]
//! `globus_app_proto::fuzzing::dependent_tokens`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| globus_app_proto::fuzzing::dependent_tokens(data));
