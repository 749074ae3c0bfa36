//! The one way the binary writes to the terminal. `print!` and `eprint!` panic when the
//! stream is gone (`run | head -1`, `… 2>&1 | tee log` after `tee` died), and a panic in the
//! middle of an interruption skips the cleanup of the run's fixtures. Here a write that fails
//! is dropped: output is for the user, and a user who closed the stream has stopped reading.
//! Once a stream failed, it is not written to again.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
static STDERR_GONE: AtomicBool = AtomicBool::new(false);

fn write_to(gone: &AtomicBool, mut stream: impl Write, args: std::fmt::Arguments<'_>) {
    if gone.load(Ordering::Relaxed) {
        return;
    }
    if stream
        .write_fmt(args)
        .and_then(|()| stream.flush())
        .is_err()
    {
        gone.store(true, Ordering::Relaxed);
    }
}

/// Write to stdout, ignoring a closed or failing stream.
pub fn out_fmt(args: std::fmt::Arguments<'_>) {
    write_to(&STDOUT_GONE, std::io::stdout().lock(), args);
}

/// Write to stderr, ignoring a closed or failing stream.
pub fn err_fmt(args: std::fmt::Arguments<'_>) {
    write_to(&STDERR_GONE, std::io::stderr().lock(), args);
}

/// `print!` that never panics.
macro_rules! out {
    ($($arg:tt)*) => { $crate::console::out_fmt(format_args!($($arg)*)) };
}

/// `println!` that never panics.
macro_rules! outln {
    () => { $crate::console::out_fmt(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::out_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `eprintln!` that never panics.
macro_rules! errln {
    () => { $crate::console::err_fmt(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::console::err_fmt(format_args!("{}\n", format_args!($($arg)*))) };
}

pub(crate) use {errln, out, outln};

#[cfg(test)]
mod tests {
    use super::*;

    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_stream_is_marked_gone_and_left_alone() {
        let gone = AtomicBool::new(false);
        write_to(&gone, Closed, format_args!("x{}", 1));
        assert!(gone.load(Ordering::Relaxed));
        let mut buffer = Vec::new();
        write_to(&gone, &mut buffer, format_args!("y"));
        assert!(
            buffer.is_empty(),
            "a stream that failed is not written again"
        );
        let open = AtomicBool::new(false);
        write_to(&open, &mut buffer, format_args!("z{}", 2));
        assert_eq!(buffer, b"z2");
        assert!(!open.load(Ordering::Relaxed));
    }
}
