//! `netaccess`: a downloader on one `NetworkAccessManager`, and a demo that needs no network.
//!
//! `netaccess get URL...` (and `-i LIST`) hands URLs to one manager, a bounded number ahead;
//! its per-origin queue schedules them (6 connections per host by default). Its defaults may
//! come from a config file ([`config`]), put before the command line's arguments.
//! `netaccess demo` starts the in-process test servers on loopback and downloads from them,
//! then prints what the scheduler did.

mod config;
mod demo;
mod get;
mod output;
mod progress;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "netaccess",
    version,
    about = "Downloads with Qt's network access semantics, in Rust",
    after_help = "Examples:\n  netaccess demo                      # local test servers, no network needed\n  netaccess get -o downloads URL...   # see `netaccess get --help`"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Download URLs through one manager (bodies to stdout in URL order, to files, or JSON lines)
    Get(Box<get::GetArgs>),
    /// Start local test servers and download from them: shows the scheduler at work
    Demo(demo::DemoArgs),
}

fn main() {
    let command = Cli::command();
    let args = match config::with_config(&command, std::env::args_os().collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("netaccess: {e}");
            std::process::exit(2);
        }
    };
    let matches = command.get_matches_from(args);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let code = runtime.block_on(async {
        match cli.command {
            Command::Get(args) => {
                let sub = matches
                    .subcommand_matches("get")
                    .expect("the get subcommand");
                get::run(*args, sub).await
            }
            Command::Demo(args) => demo::run(args).await,
        }
    });
    std::process::exit(code);
}
