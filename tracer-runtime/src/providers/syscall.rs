//! The syscall provider on the syscalls tracepoints. A wildcard over functions uses
//! the raw_syscalls tracepoints instead, so that `syscall:::entry` is one program, not hundreds.

use super::{glob_match, Pattern};
use tracer_common::{Attach, ProbeDesc};
use tracer_lang::probes::{ArgSource, ResolvedProbe, Sharing};
use tracer_lang::types::Type;

/// Names of the syscalls with tracepoints on this kernel.
pub fn list() -> Result<Vec<String>, String> {
    let dir = super::tracefs::root()?.join("events/syscalls");
    let rd = std::fs::read_dir(&dir).map_err(|e| {
        format!(
            "cannot list {}: {e} (is CONFIG_FTRACE_SYSCALLS set?)",
            dir.display()
        )
    })?;
    let mut names: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("sys_enter_"))
                .map(String::from)
        })
        .collect();
    names.sort();
    Ok(names)
}

fn desc(func: &str, name: &str) -> ProbeDesc {
    ProbeDesc {
        id: 0,
        provider: "syscall".into(),
        module: "vmlinux".into(),
        function: func.into(),
        name: name.into(),
    }
}

pub fn list_probes(names: &[String]) -> Vec<ProbeDesc> {
    names
        .iter()
        .flat_map(|n| [desc(n, "entry"), desc(n, "return")])
        .collect()
}

/// The argument types of `func`, from its sys_enter tracepoint (without `__syscall_nr`).
fn arg_types(func: &str) -> Vec<Type> {
    match super::tracefs::format("syscalls", &format!("sys_enter_{func}")) {
        Ok(fields) => fields
            .into_iter()
            .filter(|f| f.name != "__syscall_nr")
            .map(|f| f.ty)
            .collect(),
        Err(_) => vec![Type::LONG; 6],
    }
}

pub fn resolve(p: &Pattern, names: &[String]) -> Result<Vec<ResolvedProbe>, String> {
    if !p.module.is_empty() && !glob_match(&p.module, "vmlinux") {
        return Ok(Vec::new());
    }
    let kinds: Vec<&str> = ["entry", "return"]
        .into_iter()
        .filter(|k| p.name.is_empty() || glob_match(&p.name, k))
        .collect();
    let funcs: Vec<&String> = names
        .iter()
        .filter(|n| p.function.is_empty() || glob_match(&p.function, n))
        .collect();
    if kinds.is_empty() || funcs.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    let any_function = p.function.is_empty() || p.function.chars().all(|c| c == '*');
    if Sharing::raw_syscalls(any_function, funcs.len()) == Sharing::RawSyscalls {
        // One raw_syscalls program per kind; probefunc comes from the syscall number.
        for k in kinds {
            let (tp, args) = if k == "entry" {
                ("sys_enter", ArgSource::RawSyscallEntry)
            } else {
                ("sys_exit", ArgSource::RawSyscallReturn)
            };
            out.push(ResolvedProbe {
                desc: desc("", k),
                // The raw_syscalls *tracepoint* (not a raw tracepoint): its format puts the
                // number at ctx+8 and the arguments or return value at ctx+16.
                attach: Attach::Tracepoint {
                    category: "raw_syscalls".into(),
                    name: tp.into(),
                },
                args,
                sites: funcs.iter().map(|f| desc(f, k)).collect(),
            });
        }
        return Ok(out);
    }
    for f in funcs {
        for k in &kinds {
            let (tp, args) = if *k == "entry" {
                (
                    format!("sys_enter_{f}"),
                    ArgSource::SyscallEntry { args: arg_types(f) },
                )
            } else {
                (format!("sys_exit_{f}"), ArgSource::SyscallReturn)
            };
            out.push(ResolvedProbe {
                desc: desc(f, k),
                attach: Attach::Tracepoint {
                    category: "syscalls".into(),
                    name: tp,
                },
                args,
                sites: Vec::new(),
            });
        }
    }
    Ok(out)
}
