//! `-l` and `-lv`: the probes that match, in dtrace(1)'s columns, with argument types.

use crate::cli::Args;
use crate::failure::Failure;
use crate::request::{described, gather};
use std::io::Write;
use tracer_runtime::prepare::description_head;
use tracer_runtime::providers::{Pattern, Resolver};
use tracer_runtime::Target;

/// True when a probe description names a provider of `$target` itself (`pid$target:…`),
/// whose probes can only be found in the process's executable image.
pub fn probes_in_target(args: &Args) -> Result<bool, Failure> {
    let texts = gather(args)?;
    Ok(texts.iter().any(|s| s.text.contains("$target:")))
}

/// `-l`: list matching probes in DTrace's columns. A closed pipe (`tracer -l | head`) ends
/// the listing quietly.
pub fn list(args: &Args) -> Result<i32, Failure> {
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
        let probes = resolver.list(p.as_ref());
        for n in resolver.take_notices() {
            eprintln!("tracer: {n}");
        }
        let probes = probes?;
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
