//! The `twostep` command line: parses arguments and calls into the library.

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
    Serve(ServeArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TWOSTEP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn")),
        )
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
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
