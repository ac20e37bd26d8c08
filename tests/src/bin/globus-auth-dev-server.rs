//! A Globus-Auth-compatible server on 127.0.0.1 for demos and manual tests.
//!
//! ```text
//! cargo run -p globus-app-tests --bin globus-auth-dev-server -- [port]
//! GLOBUS_SDK_SERVICE_URL_AUTH=http://127.0.0.1:<port>/ <your app>
//! ```
//!
//! Logins are approved at once for a simulated user; apps must use the
//! client id `5c1a7e1e-0000-4000-8000-00000000c1d0` (the audience of its
//! id_tokens). Stop it with Ctrl-C.

fn main() {
    let port = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let server = globus_app_tests::AuthServer::start_on(port);
    println!("Globus Auth dev server at {}", server.base_url);
    println!("client id: {}", globus_app_proto::testing::SIM_CLIENT_ID);
    loop {
        std::thread::park();
    }
}
