//! tracer's integration tests, one binary (as ripgrep's): each module covers one area and
//! runs the built `tracer` against the real kernel, or links the libraries for what a
//! subprocess cannot show. They load eBPF programs, so they run as root, one at a time
//! (`cargo xtask test`), and `cargo xtask vm-test --test MODULE` runs one module on other
//! kernels.

mod kernel_common;

mod cli_errors;
mod containers;
mod fbt;
mod go_runtime;
mod jit_frames;
mod kernel_output;
mod kernel_process;
mod kernel_syscall;
mod late_libraries;
mod pid_provider;
mod postgres_usdt;
mod runtime_examples;
mod scripts;
mod shipped_examples;
mod stable_providers;
mod symbols;
mod usdt_probes;
