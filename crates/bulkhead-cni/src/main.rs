//! The `bulkhead-cni` binary: read stdin, run, print, exit.
//!
//! Success prints the result (if the command has one) on stdout and exits 0;
//! failure prints the CNI error result on stdout, repeats it as one line on
//! stderr and exits 1. In debug builds only, `BULKHEAD_CNI_FAKE_STATE=DIR`
//! swaps bulkheadd for the file-backed fake (tests); release builds ignore it.

use bulkhead_cni::backend::Backend;
use bulkhead_cni::config::NetConf;
use bulkhead_cni::daemon::DaemonBackend;
use bulkhead_cni::fake::FakeBackend;
use bulkhead_cni::{run, CniError, Code, Outcome};
use std::io::{Read, Write};
use std::process::ExitCode;

fn backend(conf: &NetConf) -> Result<Box<dyn Backend>, CniError> {
    if cfg!(debug_assertions) {
        if let Some(dir) = std::env::var_os("BULKHEAD_CNI_FAKE_STATE") {
            return Ok(Box::new(FakeBackend::new(dir)));
        }
    }
    DaemonBackend::new(&conf.bulkhead.socket)
        .map(|b| Box::new(b) as Box<dyn Backend>)
        .map_err(|e| CniError::new(Code::Io, format!("cannot start the I/O runtime: {e}")))
}

fn main() -> ExitCode {
    let mut stdin = Vec::new();
    let outcome = match std::io::stdin().read_to_end(&mut stdin) {
        Ok(_) => run(|k| std::env::var(k).ok(), &stdin, Box::new(backend)),
        Err(e) => Outcome::Failure {
            version: bulkhead_cni::version::LATEST.to_owned(),
            error: CniError::new(
                Code::Io,
                format!("cannot read the configuration from stdin: {e}"),
            ),
        },
    };
    let mut out = std::io::stdout().lock();
    match outcome {
        Outcome::Success(None) => ExitCode::SUCCESS,
        Outcome::Success(Some(value)) => match writeln!(out, "{value}") {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::FAILURE,
        },
        Outcome::Failure { version, error } => {
            let _ = writeln!(out, "{}", error.to_json(&version));
            eprintln!("bulkhead-cni: {error}");
            ExitCode::FAILURE
        }
    }
}
