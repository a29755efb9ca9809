//! The `patchbay` command: parses arguments, sets up logging, and hands over
//! to the library. Exit codes: 0 success, 1 validation or run failure, 2 usage.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

mod memory;

/// jemalloc: its per-thread counters bound the memory of jq evaluations, and
/// it hands memory back to the system after a burst.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    memory::install_probe();
    memory::return_freed_memory();
    let cli = patchbay::Cli::parse();
    patchbay::main(cli)
}
