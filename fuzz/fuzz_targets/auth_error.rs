#![no_main]
//! `globus_app_proto::fuzzing::auth_error`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| globus_app_proto::fuzzing::auth_error(data));
