//! The run mode, from command line to exit status: check the host, start or attach to the
//! target, compile, run the session with a consumer that prints, dump the aggregations.

use crate::cli::Args;
use crate::diagnose::verifier_failure;
use crate::failure::Failure;
use crate::list::{list, probes_in_target};
use crate::request::prepare;
use std::io::Write;
use tracer_output::OutputFormat;
use tracer_runtime::consumer::Consumer;
use tracer_runtime::{RuntimeError, StopReason, Target};

/// `SIGKILL` for 9, as dtrace(1) names signals.
fn signal_name(sig: i32) -> String {
    const NAMES: [&str; 32] = [
        "",
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    NAMES
        .get(sig as usize)
        .filter(|n| !n.is_empty())
        .map(|n| n.to_string())
        .unwrap_or_else(|| format!("signal {sig}"))
}

/// tracer needs the BPF ring buffer (Linux 5.8) and uses helpers from 5.10.
fn check_kernel() -> Result<(), Failure> {
    let (major, minor) = tracer_runtime::host::kernel_version();
    if (major, minor) < (5, 8) && major != 0 {
        return Err(Failure::new(format!(
            "this kernel ({major}.{minor}) is too old: tracer needs Linux 5.8 or newer for the BPF ring buffer"
        )));
    }
    Ok(())
}

/// Loading eBPF programs needs root, or CAP_BPF + CAP_PERFMON (+ CAP_SYS_ADMIN for some
/// program types and for mounting tracefs). Say so in one line instead of failing later.
fn check_privileges() -> Result<(), Failure> {
    tracer_runtime::scope::check_privileges().map_err(Failure::new)
}

pub fn run(args: Args) -> Result<i32, Failure> {
    if args.version {
        println!("tracer: Sun D 1.13 (tracer {})", env!("CARGO_PKG_VERSION"));
        return Ok(0);
    }
    if !args.compile_only {
        check_privileges()?;
        check_kernel()?;
    }
    if args.list {
        return list(&args);
    }
    if args.command.is_some() && args.pid.is_some() {
        return Err(Failure::usage("-c and -p cannot be used together"));
    }
    let format = match args.format.as_str() {
        "text" => OutputFormat::Text,
        "json" => OutputFormat::Json,
        other => {
            return Err(Failure::usage(format!(
                "unknown output format \"{other}\" (use text or json)"
            )))
        }
    };
    let mut target = match (&args.command, args.pid) {
        (Some(cmd), _) => {
            let mut t = Target::spawn_stopped(cmd).map_err(|e| Failure::new(e.to_string()))?;
            // pid probes on $target resolve against the new image: let it exec now and hold
            // it at its entry point, its libraries mapped (dtrace(1)'s post-init point). It runs only after
            // BEGIN (see tracer_runtime::run). Other scripts see its exec happen.
            if !args.compile_only && probes_in_target(&args)? {
                t.release().map_err(|e| Failure::new(e.to_string()))?;
            }
            Some(t)
        }
        (_, Some(pid)) => Some(Target::grab(pid).map_err(|e| Failure::new(e.to_string()))?),
        _ => None,
    };
    let mut prepared = prepare(&args, target.as_ref().map(|t| t.pid()))?;
    let compiled = &prepared.compiled;
    if args.show_code || (args.verbose && args.compile_only) {
        for ((f, e), p) in compiled
            .functions
            .iter()
            .zip(&compiled.emitted)
            .zip(&compiled.script.programs)
        {
            eprintln!("// {}: {:?}", p.name, p.attach);
            eprintln!("{f}");
            eprintln!("{}", tracer_ebpf::disasm::disassemble(&e.insns));
        }
    }
    if args.compile_only {
        return Ok(0);
    }
    let pending = compiled
        .script
        .programs
        .iter()
        .any(|p| matches!(p.attach, tracer_common::Attach::Pending { .. }));
    if compiled.matched == 0 && !pending {
        return Err(Failure::new("no probes matched"));
    }
    let opts = &compiled.script.options;
    if !opts.quiet {
        let n = compiled.matched;
        eprintln!(
            "tracer: {} matched {n} probe{}",
            prepared.notice_name,
            if n == 1 { "" } else { "s" }
        );
    }
    if let (Some(notice), false) = (&prepared.scope_notice, opts.quiet) {
        eprintln!("tracer: {notice}");
    }
    if opts.destructive {
        eprintln!("tracer: allowing destructive actions");
    }
    // Not quiet-able: the first firings of the command may be missed, and its stacks may not
    // symbolize after it exits.
    if let Some(why) = target.as_ref().and_then(|t| t.unheld_reason()) {
        eprintln!("tracer: warning: cannot trace the command with ptrace ({why}): it is not held at its exec until the probes are attached");
    }
    // Buffered: the consumer flushes after every batch of records, not after every line.
    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::with_capacity(
            1 << 16,
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| Failure::new(format!("failed to open {path}: {e}")))?,
        )),
        None => Box::new(std::io::BufWriter::with_capacity(
            1 << 16,
            std::io::stdout().lock(),
        )),
    };
    let printer = tracer_output::printer(out, format, opts);
    let notices = Box::new(|m: &str| eprintln!("tracer: {m}"));
    let mut consumer = Consumer::new(printer, opts.specsize, notices);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // -Z descriptions of the target that matched nothing are matched again when it maps a
    // library.
    let mut late = tracer_runtime::late::Late {
        compiler: &prepared.compiler,
        resolver: &mut prepared.resolver,
        maps: compiled.maps.clone(),
    };
    let outcome = rt.block_on(tracer_runtime::run_with_late(
        &compiled.script,
        target.as_mut(),
        &mut consumer,
        Some(&mut late),
    ));
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => {
            if let Some(t) = target.as_mut() {
                if t.created() {
                    t.kill();
                }
            }
            return Err(match e.downcast_ref::<RuntimeError>() {
                Some(RuntimeError::Verifier {
                    program,
                    probe,
                    log,
                    ..
                }) => verifier_failure(&prepared, program, probe, log),
                _ => Failure::new(format!("{e:#}")),
            });
        }
    };
    let mut session = outcome.session;
    let snaps = consumer.all_snapshots(&mut session)?;
    let refs: Vec<&tracer_common::AggSnapshot> = snaps.iter().collect();
    consumer.printer.final_dump(&refs);
    consumer.printer.flush();
    session.unload_all();
    drop(session);
    if let StopReason::TargetExited(info) = outcome.reason {
        if !opts.quiet {
            let pid = target.as_ref().map(|t| t.pid()).unwrap_or(0);
            // dtrace(1)'s wording.
            match info {
                tracer_runtime::ExitInfo::Exited(0) | tracer_runtime::ExitInfo::Unknown => {
                    eprintln!("tracer: pid {pid} has exited")
                }
                tracer_runtime::ExitInfo::Exited(code) => {
                    eprintln!("tracer: pid {pid} exited with status {code}")
                }
                tracer_runtime::ExitInfo::Signaled(sig) => {
                    eprintln!("tracer: pid {pid} terminated by {}", signal_name(sig))
                }
            }
        }
    }
    Ok(outcome.status)
}
