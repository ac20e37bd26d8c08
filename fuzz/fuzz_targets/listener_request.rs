#![no_main]
//! `globus_app_proto::fuzzing::listener_request`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| globus_app_proto::fuzzing::listener_request(data));
