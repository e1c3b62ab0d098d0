//! # keyline
//!
//! The `keyline` command: identity and known peers, the SSB secret-handshake (`keyline shs`),
//! the SBRP relay and its daemons and clients (`keyline relay`, `keyline sbrp`),
//! `keyline serve` (every service on loopback defaults) and `keyline bench`. Run
//! `keyline --help` for the areas and `keyline <area> --help` for their verbs.
//!
//! Conventions: `--home DIR` (env `KEYLINE_HOME`, default `~/.keyline`) holds the identity
//! and the pin store; a server prints one JSON line on stdout once it listens, then logs to
//! stderr; `--json` makes results machine-readable; errors are one line on stderr with exit
//! code 1 (2 for usage).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod bench;
mod bunker_cmd;
mod cli;
mod config;
mod error;
mod http_cmd;
mod identity_cmd;
mod kps_cmd;
mod limits;
mod output;
mod pin_cmd;
mod relay_cmd;
mod sbrp_cmd;
mod serve_cmd;
mod shs_cmd;
mod signer_cmd;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use error::Result;

fn main() -> ExitCode {
    let cli = Cli::parse_from(kps_cmd::rewrite_single_dash(std::env::args().collect()));
    init_logging(cli.verbose);
    // Benchmarks time the calling thread; they run outside the async runtime.
    if let Command::Bench(args) = cli.command {
        return finish(bench::run(args, cli.json));
    }
    // A signer node answers its coordinator link by link, each request in turn: one thread
    // serves it without cross-thread wake-ups (measured: fewer context switches when three
    // nodes and a coordinator share two cores).
    let single_threaded = matches!(
        cli.command,
        Command::Signer(cli::SignerCommand::Node { .. })
    );
    let mut builder = if single_threaded {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("keyline: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    finish(runtime.block_on(run(cli)))
}

fn finish(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("keyline: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

fn init_logging(verbose: u8) {
    // The embedded Nostr relay logs every client that drops its socket without a close
    // frame (a closed browser tab) as an error; that is routine for a relay. str0m warns about
    // events for data channels that just closed, which is routine for KPS streams.
    let default = match verbose {
        0 => "info,nostr_relay_builder::local::inner=off,str0m=error",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

async fn run(cli: Cli) -> Result<()> {
    let home = keyline_core::Home::resolve(cli.home.clone())?;
    let json = cli.json;
    match cli.command {
        Command::Keygen { force } => identity_cmd::keygen(&home, force, json),
        Command::Id => identity_cmd::id(&home, json),
        Command::Import(what) => identity_cmd::import(&home, what, json),
        Command::Pin(what) => pin_cmd::run(&home, what, json).await,
        Command::Shs(what) => shs_cmd::run(&home, what).await,
        Command::Kps(what) => kps_cmd::run(&home, what, json).await,
        Command::Http(what) => http_cmd::run(&home, what).await,
        Command::Relay(what) => relay_cmd::run(&home, what).await,
        Command::Sbrp(what) => sbrp_cmd::run(&home, what, json).await,
        Command::Signer(what) => signer_cmd::run(&home, what, json).await,
        Command::Serve(args) => serve_cmd::run(&home, args).await,
        Command::Bench(_) => Err(error::CliError::Usage(
            "benchmarks run outside the runtime".into(),
        )),
    }
}
