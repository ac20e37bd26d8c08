#![no_main]
//! `globus_app_proto::fuzzing::service_answer`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| globus_app_proto::fuzzing::service_answer(data));
