//! dtrace(1)'s command line, with `tracer:` as the message prefix.

use clap::Parser;

const EXAMPLES: &str = "\
Examples:
  tracer -n 'syscall:::entry { @[execname] = count(); } tick-5s { exit(0); }'
  tracer -n 'syscall::openat:entry { printf(\"%s %s\\n\", execname, copyinstr(arg1)); }'
  tracer -n 'syscall::read:entry { self->ts = timestamp; }
             syscall::read:return /self->ts/ { @ = quantize(timestamp - self->ts); self->ts = 0; }'
  tracer -q -c 'ls /' -n 'syscall:::entry /pid == $target/ { @[probefunc] = count(); }'
  tracer -s script.d arg1 arg2
  tracer -l -n 'syscall::read*:'";

#[derive(Parser, Debug, Default)]
#[command(
    name = "tracer",
    version,
    about = "DTrace for Linux: D scripts compiled to eBPF",
    after_help = EXAMPLES,
    disable_version_flag = true
)]
pub struct Args {
    /// Enable probes by description, optionally with a D clause: 'probe /pred/ { actions }'.
    #[arg(short = 'n', value_name = "CLAUSES")]
    pub clauses: Vec<String>,
    /// Compile a D script file (several allowed; `#!` scripts work).
    #[arg(short = 's', value_name = "FILE")]
    pub scripts: Vec<String>,
    /// Run CMD; $target is its pid; stop when it exits.
    #[arg(short = 'c', value_name = "CMD")]
    pub command: Option<String>,
    /// Grab process PID; $target is PID; stop when it exits.
    #[arg(short = 'p', value_name = "PID")]
    pub pid: Option<u32>,
    /// Quiet: print only explicit output (no probe rows, no notices).
    #[arg(short = 'q')]
    pub quiet: bool,
    /// Write output to FILE (appending).
    #[arg(short = 'o', value_name = "FILE")]
    pub output: Option<String>,
    /// Set an option: -x NAME[=VALUE] (bufsize, strsize, quiet, aggsortkey, ...).
    #[arg(short = 'x', value_name = "OPT[=VAL]")]
    pub xopts: Vec<String>,
    /// Buffer size, as -x bufsize.
    #[arg(short = 'b', value_name = "SIZE")]
    pub bufsize: Option<String>,
    /// Allow destructive actions (system, raise, stop).
    #[arg(short = 'w')]
    pub destructive: bool,
    /// Allow probe descriptions that match no probes.
    #[arg(short = 'Z')]
    pub zero_ok: bool,
    /// Compile only: do not enable any probe.
    #[arg(short = 'e')]
    pub compile_only: bool,
    /// Verbose: with -l show argument types; otherwise print the generated code.
    #[arg(short = 'v')]
    pub verbose: bool,
    /// Print the version.
    #[arg(short = 'V')]
    pub version: bool,
    /// List matching probes instead of enabling them.
    #[arg(short = 'l')]
    pub list: bool,
    /// Probes of PROVIDER (list them with -l, or enable them with the default action)
    #[arg(short = 'P', value_name = "PROVIDER")]
    pub providers: Vec<String>,
    /// Probes in this module
    #[arg(short = 'm', value_name = "[[PROVIDER:]MODULE]")]
    pub modules: Vec<String>,
    /// Probes of this function
    #[arg(short = 'f', value_name = "[[PROVIDER:]MODULE:]FUNCTION")]
    pub functions: Vec<String>,
    /// The probe with this ID (as -l shows it)
    #[arg(short = 'i', value_name = "ID")]
    pub ids: Vec<u32>,
    /// Which processes to trace: host (all), pidns (tracer's pid namespace and its children;
    /// the default inside a container), cgroup[=PATH] (a cgroup v2 subtree). As -x scope=.
    #[arg(long = "scope", value_name = "host|pidns|cgroup[=PATH]")]
    pub scope: Option<String>,
    /// Output format.
    #[arg(long = "format", value_name = "text|json", default_value = "text")]
    pub format: String,
    /// Print the disassembly of every program (for debugging the compiler).
    #[arg(short = 'S')]
    pub show_code: bool,
    /// Macro arguments $1..$9 ($$1 as strings).
    #[arg(
        value_name = "ARGS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}
