//! What commands print on standard output. A reader that goes away early
//! (`patchbay runs list | head -1`) ends the command quietly with exit
//! code 0, as Unix tools do, instead of the panic `println!` raises on a
//! closed pipe; any other failure to write is reported on standard error
//! and ends the command with exit code 1.

use std::fmt;
use std::io::{ErrorKind, Write};

/// Writes `text` to standard output (use [`out!`](crate::out) and
/// [`outln!`](crate::outln)).
pub fn write(text: fmt::Arguments<'_>) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout.write_fmt(text).and_then(|()| stdout.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: cannot write the output: {e}");
            std::process::exit(1);
        }
    }
}

/// `print!` for command output (see [`crate::output`]).
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*))
    };
}

/// `println!` for command output (see [`crate::output`]).
#[macro_export]
macro_rules! outln {
    () => {
        $crate::output::write(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}
