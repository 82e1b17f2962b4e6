//! `tracer`: DTrace for Linux. This file only wires the pieces together: [`cli`] parses the
//! command line, [`app`] compiles and runs, [`probes`] resolves probe descriptions,
//! [`runtime`] loads, attaches and reads, [`output`] prints as DTrace prints.

mod app;
mod cli;

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
