//! `turnstile-load`: the command line over the [`turnstile_load`] scenarios. It talks only to
//! the address it is given, prints the scenario's table to stdout and, with `--json PATH`, writes
//! the same figures as JSON. It exits 0 when the scenario ran (errors it counted are in the
//! report), 1 when it could not run at all, 2 on bad arguments.
#![allow(clippy::print_stdout)]

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use turnstile_load::{age, chat, client, flood, hold, report, saturate, soak};

/// Turnstile's load generator. Start the server with `--test-mode` for the sleep jobs; see each
/// scenario's help for the flags it needs.
#[derive(Parser, Debug)]
#[command(name = "turnstile-load", version)]
struct Cli {
    /// The server's address (host:port).
    #[arg(long, default_value = "127.0.0.1:3000", global = true)]
    addr: String,
    /// Also write the report as JSON to this file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// What to run.
    #[command(subcommand)]
    scenario: Scenario,
}

/// The scenarios.
#[derive(Subcommand, Debug)]
enum Scenario {
    /// Clients send calculator jobs back to back: throughput, latency, utilization.
    /// Server: `--test-mode` for `--job sleep`.
    Saturate(saturate::SaturateOptions),
    /// Thousands of queued clients: memory per waiter, and the lag of a queue change.
    /// Server: `--test-mode --max-run 1h --max-wait 1h --max-waiting <above waiters>`.
    Hold(hold::HoldOptions),
    /// One session floods the queue, light sessions arrive during it: waits and Jain's index.
    /// Server: `--test-mode --max-waiting-per-session 256` (and `--queue-order fair|fifo`).
    Flood(flood::FloodOptions),
    /// Concurrent chats: time to first token, tokens/s, queue waits.
    Chat(chat::ChatOptions),
    /// Many clients run a mix of jobs while some drop connections, resume chats and cancel:
    /// protocol violations, every job accounted for, the queue and memory back to normal.
    /// Server: `--max-waiting 20000 --rate-per-ip 0 --max-connections-per-ip 0` for many clients.
    Soak(soak::SoakOptions),
    /// A million tiny jobs (distinct 2x2 adds): jobs/s, p99 and the server's memory for each
    /// tenth of the run, the last tenth against the first.
    /// Server: release build, `--rate-per-ip 0 --rate-per-session 0 --rate-per-connection 0`.
    Age(age::AgeOptions),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Thousands of sockets need more than the usual 1024 open files; hold also asks itself.
    if let Err(e) = client::raise_open_files(u64::MAX) {
        eprintln!("warning: {e}");
    }
    let outcome = match &cli.scenario {
        Scenario::Saturate(o) => saturate::run(&cli.addr, o)
            .await
            .and_then(|r| emit(&cli, r.table().to_string(), &r)),
        Scenario::Hold(o) => hold::run(&cli.addr, o)
            .await
            .and_then(|r| emit(&cli, r.table().to_string(), &r)),
        Scenario::Flood(o) => flood::run(&cli.addr, o)
            .await
            .and_then(|r| emit(&cli, r.table(), &r)),
        Scenario::Chat(o) => chat::run(&cli.addr, o)
            .await
            .and_then(|r| emit(&cli, r.table().to_string(), &r)),
        Scenario::Soak(o) => soak::run(&cli.addr, o)
            .await
            .and_then(|r| emit(&cli, r.table().to_string(), &r)),
        Scenario::Age(o) => age::run(&cli.addr, o)
            .await
            .and_then(|r| emit(&cli, r.table(), &r)),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("turnstile-load: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints the table and writes the JSON file, if one was asked for.
fn emit(cli: &Cli, table: String, report: &impl serde::Serialize) -> Result<(), String> {
    println!("{table}");
    if let Some(path) = &cli.json {
        report::write_json(path, report)?;
        println!("JSON written to {}", path.display());
    }
    Ok(())
}
