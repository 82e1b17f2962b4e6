//! From command line to exit status: gather the program text, compile, list or run, print.

use crate::cli::Args;
use std::io::Write;
use tracer_common::Options;
use tracer_output::{OutputFormat, Printer};
use tracer_runtime::consumer::Consumer;
use tracer_runtime::prepare::{description_head, PrepareError, Prepared, Request, Source};
use tracer_runtime::providers::{Pattern, Resolver};
use tracer_runtime::{RuntimeError, StopReason, Target};

/// A failure already worded for the user (without the `tracer: ` prefix).
pub struct Failure {
    pub message: String,
    pub status: i32,
}

/// Drop Rust's " (os error N)" from a system error's text: dtrace(1) prints strerror alone.
fn plain(message: String) -> String {
    match message.find(" (os error ") {
        Some(i) => {
            let end = message[i..]
                .find(')')
                .map(|j| i + j + 1)
                .unwrap_or(message.len());
            format!("{}{}", &message[..i], &message[end..])
        }
        None => message,
    }
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: plain(message.into()),
            status: 1,
        }
    }
    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            status: 2,
        }
    }
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(e: E) -> Failure {
        Failure::new(e.to_string())
    }
}

fn gather(args: &Args) -> Result<Vec<Source>, Failure> {
    let mut out = Vec::new();
    for path in &args.scripts {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::new(format!("failed to open {path}: {e}")))?;
        out.push(Source {
            name: path.clone(),
            text,
            from_file: true,
        });
    }
    for c in &args.clauses {
        out.push(Source {
            name: c.clone(),
            text: c.clone(),
            from_file: false,
        });
    }
    // -P/-m/-f/-i name probes to enable with the default action, as in dtrace(1).
    for d in described(args, &mut Resolver::new()).map_err(Failure::new)? {
        out.push(Source {
            name: d.clone(),
            text: format!("{d}{{}}"),
            from_file: false,
        });
    }
    Ok(out)
}

/// The probe descriptions -P, -m, -f and -i stand for, as full four-field descriptions.
fn described(args: &Args, resolver: &mut Resolver) -> Result<Vec<String>, String> {
    let fields = |spec: &str, n: usize| -> Vec<String> {
        // Right-aligned, as dtrace(1) reads `[[provider:]module:]function`.
        let parts: Vec<&str> = spec.split(':').collect();
        let mut v = vec![String::new(); n.saturating_sub(parts.len())];
        v.extend(parts.iter().rev().take(n).rev().map(|p| p.to_string()));
        v
    };
    let mut out: Vec<String> = args.providers.iter().map(|p| format!("{p}:::")).collect();
    for m in &args.modules {
        let f = fields(m, 2);
        out.push(format!("{}:{}::", f[0], f[1]));
    }
    for f in &args.functions {
        let f = fields(f, 3);
        out.push(format!("{}:{}:{}:", f[0], f[1], f[2]));
    }
    if !args.ids.is_empty() {
        let mut known = resolver.list(None)?;
        if args.ids.iter().any(|id| *id >= 100_000) {
            // fbt IDs (see probes::fbt): listed only when asked for.
            known.extend(resolver.list(Some(&Pattern::parse("fbt:::")?))?);
        }
        for id in &args.ids {
            let d = known
                .iter()
                .find(|d| d.id == *id)
                .ok_or_else(|| format!("invalid probe identifier {id}: no probe has this ID"))?;
            out.push(d.full_name());
        }
    }
    Ok(out)
}

fn options(args: &Args) -> Result<Options, Failure> {
    let mut o = Options::default();
    if let Some(b) = &args.bufsize {
        tracer_lang::options::set_option(&mut o, "bufsize", Some(b))
            .map_err(|e| Failure::new(format!("failed to set -b: {e}")))?;
    }
    for x in &args.xopts {
        let (name, value) = match x.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (x.as_str(), None),
        };
        if name == "scope" {
            continue; // not a D option: see scope_arg
        }
        tracer_lang::options::set_option(&mut o, name, value)
            .map_err(|e| Failure::new(format!("failed to set -x {name}: {e}")))?;
    }
    o.quiet |= args.quiet;
    o.destructive |= args.destructive;
    Ok(o)
}

/// `--scope` or `-x scope=` (the last one given wins, the long option over -x).
fn scope_arg(args: &Args) -> Result<tracer_runtime::scope::ScopeArg, Failure> {
    use tracer_runtime::scope::ScopeArg;
    if args.xopts.iter().any(|x| x == "scope") {
        return Err(Failure::usage(
            "failed to set -x scope: needs a value (host, pidns, cgroup or cgroup=PATH)",
        ));
    }
    let from_x = args
        .xopts
        .iter()
        .filter_map(|x| x.strip_prefix("scope"))
        .filter_map(|v| v.strip_prefix('='))
        .next_back();
    match args.scope.as_deref().or(from_x) {
        Some(text) => ScopeArg::parse(text).map_err(Failure::usage),
        None => Ok(ScopeArg::Auto),
    }
}

/// Parse and compile everything given on the command line.
pub fn prepare(args: &Args, target: Option<u32>) -> Result<Prepared, Failure> {
    let request = Request {
        sources: gather(args)?,
        options: options(args)?,
        args: args.args.clone(),
        target,
        zero_ok: args.zero_ok,
        scope: scope_arg(args)?,
    };
    tracer_runtime::prepare::prepare(request).map_err(|e| match e {
        PrepareError::NoProbes => Failure::usage(e.to_string()),
        _ => Failure::new(e.to_string()),
    })
}

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

/// True when a probe description names a provider of `$target` itself (`pid$target:…`),
/// whose probes can only be found in the process's executable image.
fn probes_in_target(args: &Args) -> Result<bool, Failure> {
    let texts = gather(args)?;
    Ok(texts.iter().any(|s| s.text.contains("$target:")))
}

/// `-l`: list matching probes in DTrace's columns. A closed pipe (`tracer -l | head`) ends
/// the listing quietly.
fn list(args: &Args) -> Result<i32, Failure> {
    match list_to_stdout(args) {
        Err(ListError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(ListError::Io(e)) => Err(Failure::new(e.to_string())),
        Err(ListError::Failure(f)) => Err(f),
        Ok(status) => Ok(status),
    }
}

enum ListError {
    Io(std::io::Error),
    Failure(Failure),
}

impl From<std::io::Error> for ListError {
    fn from(e: std::io::Error) -> Self {
        ListError::Io(e)
    }
}

impl From<String> for ListError {
    fn from(e: String) -> Self {
        ListError::Failure(Failure::new(e))
    }
}

/// `-lv`: the probe's argument types, as dtrace(1) prints them under each probe.
fn write_arg_types(
    out: &mut impl Write,
    resolver: &mut Resolver,
    d: &tracer_common::ProbeDesc,
) -> std::io::Result<()> {
    use tracer_lang::probes::{ArgSource, ProbeResolver};
    // fbt's types come from BTF alone: listing needs no way to attach.
    let fbt = (d.provider == "fbt")
        .then(|| resolver.kernel_signature(&d.function))
        .flatten()
        .map(|sig| ArgSource::Fbt {
            params: sig.params,
            ret_type: sig.ret,
            ret: d.name == "return",
            fentry: false,
        });
    let resolved = match fbt {
        Some(args) => Some(args),
        None if d.provider == "fbt" => None,
        None => resolver
            .resolve(&d.full_name())
            .ok()
            .and_then(|v| v.into_iter().next())
            .map(|p| p.args),
    };
    let types: Vec<(String, String)> = match resolved {
        Some(args) => match args {
            ArgSource::Fbt {
                params, ret: false, ..
            } => params
                .iter()
                .map(|(n, t)| (format!(" ({n})"), t.to_string()))
                .collect(),
            ArgSource::Fbt { ret_type, .. } => vec![
                (" (offset)".into(), "long long".into()),
                (" (return value)".into(), ret_type.to_string()),
            ],
            ArgSource::SyscallEntry { args } => args
                .iter()
                .map(|t| (String::new(), t.to_string()))
                .collect(),
            ArgSource::SyscallReturn => {
                vec![(String::new(), "int".into()), (String::new(), "int".into())]
            }
            ArgSource::Tracepoint { fields } => fields
                .iter()
                .map(|f| (format!(" ({})", f.name), f.ty.to_string()))
                .collect(),
            ArgSource::Stable(s) => s
                .args
                .iter()
                .map(|a| (format!(" ({})", a.name), a.ty.clone()))
                .collect(),
            // stapsdt notes give only each argument's size and signedness.
            ArgSource::Usdt { args } => args
                .iter()
                .map(|a| {
                    let ty = tracer_lang::types::Type::Int {
                        size: a.size,
                        signed: a.signed,
                    };
                    (String::new(), ty.to_string())
                })
                .collect(),
            _ => Vec::new(),
        },
        None => Vec::new(),
    };
    writeln!(out)?;
    writeln!(out, "\tArgument Types")?;
    if types.is_empty() {
        writeln!(out, "\t\tNone")?;
    }
    for (i, (name, ty)) in types.iter().enumerate() {
        writeln!(out, "\t\targs[{i}]: {ty}{name}")?;
    }
    writeln!(out)
}

fn list_to_stdout(args: &Args) -> Result<i32, ListError> {
    let mut resolver = Resolver::new();
    // With -p or -c, the process's USDT probes are listed too (a -c process is held at its
    // exec while listing, then killed).
    let _held = match (&args.command, args.pid) {
        (Some(cmd), _) => {
            let mut t = Target::spawn_stopped(cmd).map_err(|e| e.to_string())?;
            t.release().map_err(|e| e.to_string())?;
            resolver.target = Some(t.pid());
            Some(t)
        }
        (_, Some(pid)) => {
            resolver.target = Some(pid);
            None
        }
        _ => None,
    };
    let target = resolver.target.map(|p| p.to_string());
    let mut descriptions: Vec<String> = args.clauses.clone();
    descriptions.extend(described(args, &mut resolver)?);
    let patterns: Vec<Option<Pattern>> = if descriptions.is_empty() {
        vec![None]
    } else {
        descriptions
            .iter()
            .map(|c| {
                let mut d = description_head(c).trim().to_string();
                if let Some(t) = &target {
                    d = d.replace("$target", t);
                }
                Pattern::parse(&d).map(Some)
            })
            .collect::<Result<_, String>>()?
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:>5} {:>10} {:>17} {:>33} NAME",
        "ID", "PROVIDER", "MODULE", "FUNCTION"
    )?;
    for p in patterns {
        let probes = resolver.list(p.as_ref())?;
        if probes.is_empty() {
            if let Some(p) = &p {
                return Err(ListError::Failure(Failure::new(format!(
                    "invalid probe specifier {}:{}:{}:{}: probe description does not match any probes",
                    p.provider, p.module, p.function, p.name
                ))));
            }
        }
        for d in probes {
            writeln!(
                out,
                "{:>5} {:>10} {:>17} {:>33} {}",
                d.id, d.provider, d.module, d.function, d.name
            )?;
            if args.verbose {
                write_arg_types(&mut out, &mut resolver, &d)?;
            }
        }
    }
    Ok(0)
}

/// Explain a verifier rejection with the D line that produced the failing instruction.
fn verifier_failure(prepared: &Prepared, program: &str, probe: &str, log: &str) -> Failure {
    let compiled = &prepared.compiled;
    let idx = compiled.functions.iter().position(|f| f.name == program);
    // The last "N: (op) ..." line of the log is where verification stopped.
    let insn = log.lines().rev().find_map(|l| {
        let (n, rest) = l.split_once(':')?;
        if rest.trim_start().starts_with('(') {
            n.trim().parse::<usize>().ok()
        } else {
            None
        }
    });
    let line = match (idx, insn) {
        (Some(i), Some(n)) => compiled.emitted[i].line_of(n),
        _ => None,
    };
    let mut m =
        format!("failed to enable {probe}: the kernel verifier rejected the generated program");
    if let Some(packed) = line {
        let (file, l) = (packed >> 20, packed & 0xfffff);
        let name = prepared.compiler.sources.name(file);
        m.push_str(&format!(" for {name}:{l}"));
        if let Some(t) = prepared
            .compiler
            .sources
            .text(file)
            .lines()
            .nth(l.saturating_sub(1) as usize)
        {
            m.push_str(&format!(":\n    {}", t.trim()));
        }
    }
    m.push_str("\nverifier log (last lines):");
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    for l in &lines[lines.len().saturating_sub(12)..] {
        m.push_str("\n    ");
        m.push_str(l);
    }
    Failure::new(m)
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
    let printer = Printer::new(out, format, opts);
    let mut consumer = Consumer::new(printer, opts.specsize);
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
