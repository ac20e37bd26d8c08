//! A 50 MiB service answer is read through `request_reader` without being
//! held whole: the process's peak resident memory grows by less than
//! 8 MiB. (One test in its own binary: the peak is the process's.)

mod common;

use std::io::Read;

use globus_app_blocking::service::{Listing, ServiceClient, TRANSFER, TransferClient};
use globus_app_tests::AuthServer;
use globus_app_tests::services::TUTORIAL_COLLECTION;

/// The process's peak resident set (`VmHWM`), in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
#[cfg(target_os = "linux")]
fn a_50_mib_answer_streams_in_constant_memory() {
    let server = AuthServer::start();
    let services = server.start_services();
    let app = common::user_app(&server, "Streaming");
    let transfer = TransferClient::from_service(
        ServiceClient::builder(&app, TRANSFER)
            .base_url(&services.base_url)
            .build()
            .unwrap(),
    );
    // Warm up: log in, open the connection.
    transfer.get_endpoint(TUTORIAL_COLLECTION).unwrap();
    let before = peak_rss_kib();
    let request = globus_app_blocking::proto::service::transfer::operation_ls(
        TUTORIAL_COLLECTION,
        &Listing::path("/huge/50"),
    );
    let mut reader = transfer.service().request_reader(&request).unwrap();
    let mut buffer = vec![0u8; 64 << 10];
    let mut total = 0usize;
    let mut entries = 0usize;
    loop {
        let n = reader.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        total += n;
        entries += buffer[..n].split(|b| *b == b'}').count() - 1;
    }
    let grown = peak_rss_kib().saturating_sub(before);
    assert!(total > (50 << 20) - 1024, "read {total} bytes");
    assert!(entries > 700_000, "{entries} entries");
    assert!(grown < 8 << 10, "peak RSS grew by {grown} KiB");
}
