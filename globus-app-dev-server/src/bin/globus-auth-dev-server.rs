//! A Globus-Auth-compatible server on 127.0.0.1, with Transfer-, Groups-
//! and Search-shaped services beside it, to try the examples and your own
//! app offline.
//!
//! ```text
//! cargo run -p globus-app-dev-server -- [PORT] [--client-secret SECRET]
//! ```
//!
//! It prints the environment variables that point an app at it, and the
//! ids of what it serves (collections, the Search index). Logins are
//! approved at once for a simulated user. One client id serves both kinds
//! of app: a `UserApp` (a native client, no secret) and a `ClientApp` (a
//! confidential client, with the secret it prints; `dev-secret` unless
//! `--client-secret` says otherwise). Stop it with Ctrl-C.

use globus_app_dev_server::services;
use globus_app_proto::testing::SIM_CLIENT_ID;

/// The secret the confidential client has unless `--client-secret` is given.
const DEFAULT_CLIENT_SECRET: &str = "dev-secret";

fn main() {
    let mut port = 0;
    let mut secret = DEFAULT_CLIENT_SECRET.to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--client-secret" => match args.next() {
                Some(value) if !value.is_empty() => secret = value,
                _ => usage("--client-secret needs a value"),
            },
            other => match other.parse() {
                Ok(number) => port = number,
                Err(_) => usage(&format!("unknown argument {other:?}")),
            },
        }
    }
    let server = globus_app_dev_server::AuthServer::start_on(port);
    {
        let mut fake = server.fake();
        fake.client_secret = Some(secret.clone());
        fake.also_public_client = true;
    }
    let services = server.start_services();
    println!("Globus Auth dev server at {}", server.base_url);
    println!(
        "Transfer, Groups and Search stand-ins at {}",
        services.base_url
    );
    println!("Point an app or an example at it (in another shell):");
    println!("  export GLOBUS_SDK_SERVICE_URL_AUTH={}", server.base_url);
    for service in ["TRANSFER", "GROUPS", "SEARCH"] {
        println!(
            "  export GLOBUS_SDK_SERVICE_URL_{service}={}",
            services.base_url
        );
    }
    println!("What they serve:");
    println!("  Transfer collections:");
    for (collection, what) in [
        (services::TUTORIAL_COLLECTION, "tutorial collection"),
        (
            services::TUTORIAL_COLLECTION_2,
            "second tutorial collection",
        ),
        (
            services::MAPPED_COLLECTION,
            "mapped collection (needs its data_access consent)",
        ),
    ] {
        println!("    {collection}  {what}");
    }
    println!("  Search index:");
    println!("    {}", services::SEARCH_INDEX);
    println!("  export GLOBUS_CLIENT_ID={SIM_CLIENT_ID}");
    println!("  export GLOBUS_CLIENT_SECRET={secret}  # ClientApp only");
    println!("  cargo run -p globus-app-blocking --example service_account");
    println!("Logins are approved at once for a simulated user. Ctrl-C stops it.");
    loop {
        std::thread::park();
    }
}

fn usage(problem: &str) -> ! {
    eprintln!("globus-auth-dev-server: {problem}");
    eprintln!("usage: globus-auth-dev-server [PORT] [--client-secret SECRET]");
    std::process::exit(2);
}
