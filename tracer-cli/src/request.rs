//! From the command line to a compile request: the program text of `-n`, `-s`, `-P`, `-m`,
//! `-f` and `-i`, the `-x` options and the scope; then the library compiles it.

use crate::cli::Args;
use crate::failure::Failure;
use tracer_common::Options;
use tracer_runtime::prepare::{PrepareError, Prepared, Request, Source};
use tracer_runtime::providers::{Pattern, Resolver};

pub fn gather(args: &Args) -> Result<Vec<Source>, Failure> {
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
pub fn described(args: &Args, resolver: &mut Resolver) -> Result<Vec<String>, String> {
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
    tracer_runtime::prepare::prepare(request, &mut |m| eprintln!("tracer: {m}")).map_err(
        |e| match e {
            PrepareError::NoProbes => Failure::usage(e.to_string()),
            _ => Failure::new(e.to_string()),
        },
    )
}
