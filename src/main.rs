//! The `twostep` command line: parses arguments and calls into the library.

// The workspace lints deny unwrap, expect and panic; the unit tests below may.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use twostep::clock::SystemClock;
use twostep::config::ServeArgs;
use twostep::startup::Application;

/// twostep: sign-in service with multi-factor authentication.
#[derive(Debug, Parser)]
#[command(name = "twostep", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (web pages and JSON API).
    Serve(Box<ServeArgs>),
    #[command(flatten)]
    Admin(twostep::cli::Command),
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let command = Cli::parse().command;
    // Logs go to standard error (standard output is for results and the one-time admin
    // password); an admin command logs only warnings.
    let default_filter = match command {
        Command::Serve(_) => "info,sqlx=warn",
        Command::Admin(_) => "warn,sqlx=error",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TWOSTEP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Colours only on a terminal: a log file or the journal gets plain text.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match command {
        Command::Serve(args) => {
            logs.init();
            serve(*args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Admin(command) => {
            logs.init();
            Ok(twostep::cli::execute(command, Arc::new(SystemClock)).await)
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let mut app = Application::build(&args, Arc::new(SystemClock))
        .await
        .context("twostep could not start")?;
    if let Some(password) = app.generated_admin_password.take() {
        // Printed once, on the terminal, never logged.
        println!();
        println!("  A new database was created. Sign in as `admin` with this one-time password:");
        println!();
        println!("      {}", password.expose());
        println!();
        println!("  You will be asked to choose a new password at the first sign-in.");
        println!();
    }
    let address = app.local_addr()?;
    tracing::info!(%address, "twostep is listening");
    app.run_until(shutdown_signal())
        .await
        .context("twostep stopped with an error")?;
    tracing::info!("twostep stopped");
    Ok(())
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn serve_and_the_admin_subcommands_share_one_command_line() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "twostep",
            "serve",
            "--data-dir",
            "d",
            "--listen",
            "127.0.0.1:0",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve");
        };
        assert_eq!(args.database_url(), "sqlite://d/twostep.db");
        let cli = Cli::try_parse_from(["twostep", "ip", "list", "--data-dir", "d"]).unwrap();
        assert!(matches!(cli.command, Command::Admin(_)));
    }
}
