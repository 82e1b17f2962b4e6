//! `tracer`: DTrace for Linux. The binary keeps the command line, its modes and its messages;
//! the work is in the libraries: `tracer-runtime` (compile, resolve probes, load, attach, read)
//! and `tracer-output` (print as DTrace prints).
//!
//! [`cli`] parses the arguments, [`request`] turns them into a compile request, [`list`] is
//! `-l`, [`app`] runs a session to its exit status, [`diagnose`] explains a verifier
//! rejection, and [`failure`] words every error.

mod app;
mod cli;
mod diagnose;
mod failure;
mod list;
mod request;

use clap::Parser;

fn main() {
    let args = cli::Args::parse();
    let status = match app::run(args) {
        Ok(status) => status,
        Err(f) => {
            eprintln!("tracer: {}", f.message);
            f.status
        }
    };
    std::process::exit(status);
}
