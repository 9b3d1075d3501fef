//! `netaccess`: a downloader on one `NetworkAccessManager`, and a demo that needs no network.
//!
//! `netaccess get URL...` hands every URL to one manager at once; its per-origin queue
//! schedules them (6 connections per host by default). `netaccess demo` starts the in-process
//! test servers on loopback and downloads from them, then prints what the scheduler did.

mod demo;
mod get;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "netaccess",
    version,
    about = "Downloads with Qt's network access semantics, in Rust"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Download URLs through one manager (bodies to stdout in URL order, or JSON lines)
    Get(get::GetArgs),
    /// Start local test servers and download from them: shows the scheduler at work
    Demo(demo::DemoArgs),
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let code = runtime.block_on(async {
        match cli.command {
            Command::Get(args) => get::run(args).await,
            Command::Demo(args) => demo::run(args).await,
        }
    });
    std::process::exit(code);
}
