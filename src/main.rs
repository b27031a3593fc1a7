//! The `twostep` command line: parses arguments and calls into the library.

use clap::Parser;

/// twostep: sign-in service with multi-factor authentication.
#[derive(Debug, Parser)]
#[command(name = "twostep", version, about)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
