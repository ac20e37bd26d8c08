//! `globus-auth-dev-server` prints what a person needs to use it: the
//! variables that point an app at it, and every id it serves.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use globus_app_dev_server::services::{
    MAPPED_COLLECTION, SEARCH_INDEX, TUTORIAL_COLLECTION, TUTORIAL_COLLECTION_2,
};

#[test]
fn the_dev_server_prints_its_variables_and_every_id_it_serves() {
    let mut server = Command::new(env!("CARGO_BIN_EXE_globus-auth-dev-server"))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut printed = String::new();
    let started = Instant::now();
    for line in BufReader::new(server.stdout.take().unwrap())
        .lines()
        .take(200)
    {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("Ctrl-C") || started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    for expected in [
        "export GLOBUS_SDK_SERVICE_URL_AUTH=",
        "export GLOBUS_SDK_SERVICE_URL_TRANSFER=",
        "export GLOBUS_SDK_SERVICE_URL_SEARCH=",
        "export GLOBUS_CLIENT_ID=",
        TUTORIAL_COLLECTION,
        TUTORIAL_COLLECTION_2,
        MAPPED_COLLECTION,
        SEARCH_INDEX,
    ] {
        assert!(printed.contains(expected), "{expected} not in:\n{printed}");
    }
}
