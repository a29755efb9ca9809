//! The `patchbay` command: parses arguments, sets up logging, and hands over
//! to the library. Exit codes: 0 success, 1 validation or run failure, 2 usage.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = patchbay::Cli::parse();
    patchbay::main(cli)
}
