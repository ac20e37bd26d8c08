#![no_main]
//! `globus_app_proto::fuzzing::service_ids`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| globus_app_proto::fuzzing::service_ids(data));
