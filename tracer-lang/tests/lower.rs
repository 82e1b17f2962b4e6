//! Golden tests of the compiler's output: for every script in `tests/lower_corpus`, the IR,
//! the eBPF disassembly and the runtime ABI (clause and aggregation descriptions, maps) are
//! pinned as insta snapshots, so that any change to lowering or emission shows up as a
//! snapshot diff to review (`cargo insta review`).
//!
//! Probes come from a fake, deterministic resolver (no kernel, no tracefs), and every input
//! the CLI takes from the machine (wall-clock offset, BTF offsets) is fixed.
//!
//! The snapshots are x86_64 output: `pt_regs` offsets and the syscall table are per
//! architecture, so the test only runs there.
#![cfg(target_arch = "x86_64")]

use std::fmt::Write;
use std::path::PathBuf;
use tracer_common::{Attach, Options, ProbeDesc};
use tracer_lang::diag::SourceMap;
use tracer_lang::lower::{
    compile, CgroupOffsets, CompileInput, Compiled, NsOffsets, PidOffsets, Scope, TaskOffsets,
};
use tracer_lang::probes::{ArgSource, ProbeResolver, ResolvedProbe, TpField};
use tracer_lang::syntax::{self, ast::Span};
use tracer_lang::types::Type;

mod common;
use common::{fake_btf, fake_task};

// ---------------------------------------------------------------- the fake resolver

/// The syscalls the fake kernel has tracepoints for.
const SYSCALLS: &[&str] = &["read", "write", "openat", "getppid"];

/// A resolver with a fixed, small world of probes.
struct FakeResolver;

fn desc(provider: &str, module: &str, function: &str, name: &str) -> ProbeDesc {
    ProbeDesc {
        id: 0,
        provider: provider.into(),
        module: module.into(),
        function: function.into(),
        name: name.into(),
    }
}

/// `sched:sched_switch` as a 6.x kernel's format file describes it (common_ fields dropped).
fn sched_switch_fields() -> Vec<TpField> {
    let f = |name: &str, offset, size, ty| TpField {
        name: name.into(),
        offset,
        size,
        ty,
        data_loc: false,
    };
    vec![
        f("prev_comm", 8, 16, Type::Str),
        f("prev_pid", 24, 4, Type::INT),
        f("prev_prio", 28, 4, Type::INT),
        f("prev_state", 32, 8, Type::LONG),
        f("next_comm", 40, 16, Type::Str),
        f("next_pid", 56, 4, Type::INT),
        f("next_prio", 60, 4, Type::INT),
    ]
}

/// `profile-N`/`tick-N` with the units the fake supports (hz by default, ms, s).
fn profile(name: &str) -> Option<ResolvedProbe> {
    let (all_cpus, rest) = match name.split_once('-')? {
        ("profile", r) => (true, r),
        ("tick", r) => (false, r),
        _ => return None,
    };
    let split = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let n: u64 = rest[..split].parse().ok()?;
    let attach = match &rest[split..] {
        "" | "hz" => Attach::Perf {
            period_ns: None,
            frequency: Some(n),
            all_cpus,
        },
        "ms" => Attach::Perf {
            period_ns: Some(n * 1_000_000),
            frequency: None,
            all_cpus,
        },
        "s" => Attach::Perf {
            period_ns: Some(n * 1_000_000_000),
            frequency: None,
            all_cpus,
        },
        _ => return None,
    };
    Some(ResolvedProbe {
        desc: desc("profile", "", "", name),
        attach,
        args: ArgSource::Profile,
        sites: Vec::new(),
    })
}

fn syscall(func: &str, kind: &str) -> ResolvedProbe {
    let (tp, args) = match kind {
        "entry" => (
            format!("sys_enter_{func}"),
            ArgSource::SyscallEntry {
                args: vec![Type::LONG; 6],
            },
        ),
        _ => (format!("sys_exit_{func}"), ArgSource::SyscallReturn),
    };
    ResolvedProbe {
        desc: desc("syscall", "vmlinux", func, kind),
        attach: Attach::Tracepoint {
            category: "syscalls".into(),
            name: tp,
        },
        args,
        sites: Vec::new(),
    }
}

/// `syscall:::entry` as the product resolves it: one program on the raw_syscalls tracepoint
/// standing for every syscall probe of its kind.
fn raw_syscall(kind: &str) -> ResolvedProbe {
    let (tp, args) = match kind {
        "entry" => ("sys_enter", ArgSource::RawSyscallEntry),
        _ => ("sys_exit", ArgSource::RawSyscallReturn),
    };
    ResolvedProbe {
        desc: desc("syscall", "vmlinux", "", kind),
        attach: Attach::Tracepoint {
            category: "raw_syscalls".into(),
            name: tp.into(),
        },
        args,
        sites: SYSCALLS
            .iter()
            .map(|f| desc("syscall", "vmlinux", f, kind))
            .collect(),
    }
}

impl ProbeResolver for FakeResolver {
    fn resolve(&mut self, description: &str) -> Result<Vec<ResolvedProbe>, String> {
        let parts: Vec<&str> = description.split(':').collect();
        let probe = match parts.as_slice() {
            [n @ ("BEGIN" | "END" | "ERROR")]
            | ["dtrace", "", "", n @ ("BEGIN" | "END" | "ERROR")] => ResolvedProbe {
                desc: desc("dtrace", "", "", n),
                attach: Attach::Trigger {
                    symbol: n.to_string(),
                },
                args: if *n == "ERROR" {
                    ArgSource::Error
                } else {
                    ArgSource::None
                },
                sites: Vec::new(),
            },
            [n] | ["profile", "", "", n] if profile(n).is_some() => profile(n).unwrap(),
            ["syscall", "", "", kind @ ("entry" | "return")] => raw_syscall(kind),
            ["syscall", "", f, kind @ ("entry" | "return")] if SYSCALLS.contains(f) => {
                syscall(f, kind)
            }
            ["tracepoint", "sched", "sched_switch"] => ResolvedProbe {
                desc: desc("tracepoint", "sched", "", "sched_switch"),
                attach: Attach::Tracepoint {
                    category: "sched".into(),
                    name: "sched_switch".into(),
                },
                args: ArgSource::Tracepoint {
                    fields: sched_switch_fields(),
                },
                sites: Vec::new(),
            },
            // fbt: entry through fentry, return through a kretprobe, to pin both contexts.
            ["fbt", "", "wake_up_process", kind @ ("entry" | "return")] => {
                let ret = *kind == "return";
                ResolvedProbe {
                    desc: desc("fbt", "vmlinux", "wake_up_process", kind),
                    attach: if ret {
                        Attach::Kprobe {
                            function: "wake_up_process".into(),
                            offset: 0,
                            ret,
                        }
                    } else {
                        Attach::Fentry {
                            function: "wake_up_process".into(),
                            ret,
                        }
                    },
                    args: ArgSource::Fbt {
                        params: vec![("p".into(), Type::Ptr(Box::new(fake_task())))],
                        ret_type: Type::INT,
                        ret,
                        fentry: !ret,
                    },
                    sites: Vec::new(),
                }
            }
            // An fbt glob on kprobe_multi: one program, a site per function.
            ["fbt", "", "vfs_*", kind @ ("entry" | "return")] => {
                let functions = ["vfs_read", "vfs_write"];
                ResolvedProbe {
                    desc: desc("fbt", "vmlinux", "", kind),
                    attach: Attach::KprobeMulti {
                        functions: functions.iter().map(|f| f.to_string()).collect(),
                        ret: *kind == "return",
                    },
                    args: ArgSource::PtRegs {
                        ret: *kind == "return",
                    },
                    sites: functions
                        .iter()
                        .map(|f| desc("fbt", "vmlinux", f, kind))
                        .collect(),
                }
            }
            _ => return Ok(Vec::new()),
        };
        Ok(vec![probe])
    }
}

// ---------------------------------------------------------------- compiling

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/lower_corpus")
}

/// Compile `tests/lower_corpus/<name>.d` with fixed inputs, panicking with the rendered
/// diagnostic on a compile error.
fn compile_script(name: &str) -> (String, Compiled) {
    let path = corpus_dir().join(format!("{name}.d"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    compile_text(name, text)
}

/// Compile `text` as `compile_script` compiles the corpus script `name`.
fn compile_text(name: &str, text: String) -> (String, Compiled) {
    let (sources, compiled) = try_compile_text(name, &text);
    match compiled {
        Ok(c) => (text, c),
        Err(e) => {
            let d = tracer_lang::diag::Diagnostic::error(e.span, e.message);
            panic!("compile error:\n{}", d.render(&sources))
        }
    }
}

/// Compile `text` with the corpus's inputs, returning the sources for rendering an error.
fn try_compile_text(
    name: &str,
    text: &str,
) -> (
    SourceMap,
    Result<Compiled, tracer_lang::lower::CompileError>,
) {
    let text = text.to_string();
    let mut sources = SourceMap::new();
    let file = sources.add(format!("{name}.d"), text.clone());
    let script = syntax::parse(file, &text)
        .unwrap_or_else(|d| panic!("syntax error:\n{}", d.render(&sources)));
    let line_of = |span: Span| tracer_lang::diag::SourceLine::of(&sources, span).pack();
    // Fixed, made-up offsets: the golden output pins the code shape, not a kernel's layout.
    let pid_offsets = PidOffsets {
        thread_pid: 100,
        group_leader: 200,
        real_parent: 1000,
        pid_level: 4,
        pid_numbers: 64,
        upid_size: 16,
        upid_nr: 0,
        upid_ns: 8,
        ns_inum: 48,
    };
    // `scope_*` scripts run as tracer does in a container: in a level-1 pid namespace, or
    // (`scope_cgroup*`) in a cgroup subtree whose directory is fd 7.
    let scope = if name.starts_with("scope_cgroup") {
        Scope::Cgroup { fd: 7 }
    } else if name.starts_with("scope_") {
        Scope::PidNs {
            level: 1,
            inum: 0xf000_0001,
            offsets: pid_offsets,
        }
    } else {
        Scope::Host
    };
    let input = CompileInput {
        script: &script,
        options: Options::default(),
        macro_args: vec![format!("{name}.d")],
        target: Some(4242),
        allow_zero_matches: false,
        line_of: &line_of,
        boot_to_wall_ns: 0,
        task_offsets: &|| {
            Some(TaskOffsets {
                real_parent: 1000,
                tgid: 2000,
                sum_exec_runtime: 3000,
            })
        },
        // `unguarded_*` scripts compile as for kernels before 5.12 (one scratch entry).
        preempt_guard: !name.starts_with("unguarded_"),
        kernel_types: &if name.starts_with("kernel_") {
            tracer_lang::btf::KernelTypes::new(|| Some(fake_btf()))
        } else {
            tracer_lang::btf::KernelTypes::none()
        },
        no_prealloc: false,
        attach_cookies: false,
        scope,
        ns_offsets: &|| {
            Some(NsOffsets {
                pid: pid_offsets,
                cgroup: CgroupOffsets {
                    task_cgroups: 300,
                    css_dfl_cgrp: 40,
                    cgroup_kn: 56,
                    kn_parent: 8,
                    kn_name: 16,
                },
            })
        },
    };
    let compiled = compile(&input, &mut FakeResolver);
    (sources, compiled)
}

/// printf and printa formats are checked against their arguments' types at compile time,
/// with DTrace's wording, at the call.
#[test]
fn printf_type_errors() {
    let scripts = [
        r#"BEGIN { printf("%d\n", "text"); }"#,
        r#"BEGIN { printf("%s\n", 1); }"#,
        r#"BEGIN { printf("%d %d\n", 1); }"#,
        r#"BEGIN { printf("%d\n", 1, 2); }"#,
        r#"BEGIN { printf("%y\n", 1); }"#,
        r#"BEGIN { printf("%s\n", execname); printf("%c %x\n", 65, pid); }"#,
        r#"BEGIN { @a[execname] = count(); printa("%d %@d\n", @a); }"#,
        r#"BEGIN { @a[execname] = count(); printa("%s %@d\n", @a); }"#,
    ];
    let mut out = String::new();
    for text in scripts {
        let (sources, compiled) = try_compile_text("printf_errors", text);
        out.push_str(text);
        out.push('\n');
        match compiled {
            Ok(_) => out.push_str("  ok\n"),
            Err(e) => {
                let (line, col) = sources.line_col(e.span);
                out.push_str(&format!("  {line}:{col}: {}\n", e.message));
            }
        }
    }
    insta::assert_snapshot!(out);
}

/// Every function's IR, in program order.
fn ir(c: &Compiled) -> String {
    c.functions
        .iter()
        .map(|f| f.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Per program: its name, probe and attachment, then the disassembly with map names.
fn disassembly(c: &Compiled) -> String {
    let mut out = String::new();
    for (i, (p, e)) in c.script.programs.iter().zip(&c.emitted).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let probe = &c.script.probes[p.probe as usize];
        writeln!(
            out,
            "program {} (probe {} {}): {:?}",
            p.name,
            probe.id,
            probe.full_name(),
            p.attach
        )
        .unwrap();
        let map_name = |idx: usize| {
            e.map_relocs
                .iter()
                .find(|(at, _)| *at == idx)
                .map(|(_, m)| c.maps[m.0 as usize].name.clone())
        };
        out.push_str(&tracer_ebpf::disasm::disassemble_with(&e.insns, map_name));
    }
    out
}

/// The runtime ABI: clause records, aggregations and maps.
fn abi(c: &Compiled) -> String {
    let mut out = String::new();
    writeln!(out, "clauses: {:#?}", c.script.clauses).unwrap();
    writeln!(out, "aggs: {:#?}", c.script.aggs).unwrap();
    writeln!(out, "maps:").unwrap();
    for m in &c.maps {
        writeln!(
            out,
            "  {}: type {} key {} value {} max_entries {}",
            m.name, m.map_type, m.key_size, m.value_size, m.max_entries
        )
        .unwrap();
    }
    out
}

fn check(name: &str) {
    let (text, c) = compile_script(name);
    // Same programs, same order, everywhere.
    assert_eq!(c.functions.len(), c.emitted.len());
    assert_eq!(c.functions.len(), c.script.programs.len());
    for (f, p) in c.functions.iter().zip(&c.script.programs) {
        assert_eq!(f.name, p.name);
    }
    insta::with_settings!({ description => text.as_str(), omit_expression => true, prepend_module_to_snapshot => true }, {
        insta::assert_snapshot!(format!("{name}__ir"), ir(&c));
        insta::assert_snapshot!(format!("{name}__asm"), disassembly(&c));
        insta::assert_snapshot!(format!("{name}__abi"), abi(&c));
    });
}

macro_rules! corpus {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check(stringify!($name));
            }
        )*
        const CORPUS: &[&str] = &[$(stringify!($name)),*];
    };
}

corpus! {
    agg_all,
    arith_signed,
    begin_exit,
    copyinstr,
    error_probe,
    globals_assoc,
    if_ternary,
    kernel_struct,
    kernel_typed_vars,
    multi_clause,
    ppid,
    predicate_pid,
    printa_clear_trunc,
    probefunc_raw,
    raw_syscall_args,
    scope_cgroup,
    scope_pidns,
    self_latency,
    speculation,
    stack,
    str_compare,
    strings,
    syscall_return_errno,
    this_locals,
    trace_printf,
    tracepoint_args,
    unguarded_count,
}

/// Every script in the corpus directory has a test above, and every test a script.
#[test]
fn corpus_is_complete() {
    let mut files: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("tests/lower_corpus")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "d"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    files.sort();
    let mut listed: Vec<String> = CORPUS.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        files, listed,
        "add new scripts to the corpus! list in tests/lower.rs"
    );
}

/// The same script compiles to the same bytes twice (no hash-order or address dependence).
#[test]
fn deterministic() {
    for name in CORPUS {
        let (_, a) = compile_script(name);
        let (_, b) = compile_script(name);
        assert_eq!(
            ir(&a),
            ir(&b),
            "{name}: IR differs between two compilations"
        );
        assert_eq!(
            a.script.elf, b.script.elf,
            "{name}: ELF differs between two compilations"
        );
    }
}

/// `syscall:::entry` and `syscall:::return` stand for every syscall probe: each program
/// carries its sites, every site is a probe of the script with its own ID, and the maps
/// behind `id`/`probefunc` name it by site (syscall number → site + 1, site → id and name).
#[test]
fn raw_syscall_programs_carry_their_sites() {
    let (_, c) = compile_script("raw_syscall_args");
    let s = &c.script;
    let table = tracer_common::syscalls::table();
    let map = |name: &str| {
        s.map_init
            .iter()
            .find(|m| m.map == name)
            .unwrap_or_else(|| panic!("no map_init for {name}"))
    };
    let word = |b: &[u8]| u32::from_ne_bytes(b[..4].try_into().unwrap());
    let mut seen_ids = std::collections::HashSet::new();
    for (k, (prog, kind)) in s.programs.iter().zip(["entry", "return"]).enumerate() {
        assert!(prog.shared());
        assert_eq!(s.probes[prog.probe as usize].function, "");
        let names: Vec<String> = prog
            .sites
            .iter()
            .map(|&i| s.probes[i as usize].full_name())
            .collect();
        let want: Vec<String> = SYSCALLS
            .iter()
            .map(|f| format!("syscall:vmlinux:{f}:{kind}"))
            .collect();
        assert_eq!(names, want);
        for (&site, f) in prog.sites.iter().zip(SYSCALLS) {
            let id = s.probes[site as usize].id;
            assert!(seen_ids.insert(id), "site {site} reuses id {id}");
            assert_ne!(id, s.probes[prog.probe as usize].id);
            // syscall number → site + 1, in this program's block of the table.
            if let Some(nr) = table.iter().position(|n| n == f) {
                let key = (k * table.len() + nr) as u32;
                let (_, v) = map("syscall_sites")
                    .entries
                    .iter()
                    .find(|(kb, _)| word(kb) == key)
                    .unwrap_or_else(|| panic!("no syscall_sites entry for {f} {kind}"));
                assert_eq!(word(v), site + 1);
            }
            // site → id, return offset, name.
            let (_, v) = map("sites")
                .entries
                .iter()
                .find(|(kb, _)| word(kb) == site)
                .unwrap_or_else(|| panic!("no sites entry for {site}"));
            assert_eq!(word(&v[..4]), id);
            assert!(v[8..].starts_with(f.as_bytes()) && v[8 + f.len()] == 0);
        }
    }
}

/// An fbt glob on kprobe_multi: function `i`'s site is `sites[i]` (its attach cookie), a
/// probe of the script with its own ID, and the sites map names it for `id`/`probefunc`.
#[test]
fn kprobe_multi_programs_carry_their_sites() {
    let (_, c) = compile_text(
        "fbt_glob",
        "fbt::vfs_*:entry { printf(\"%s %d\\n\", probefunc, id); }\n".into(),
    );
    let s = &c.script;
    let prog = &s.programs[0];
    let Attach::KprobeMulti { functions, .. } = &prog.attach else {
        panic!("{:?}", prog.attach)
    };
    assert_eq!(prog.sites.len(), functions.len());
    let sites = &s
        .map_init
        .iter()
        .find(|m| m.map == "sites")
        .expect("sites map")
        .entries;
    let word = |b: &[u8]| u32::from_ne_bytes(b[..4].try_into().unwrap());
    for (&site, f) in prog.sites.iter().zip(functions) {
        let p = &s.probes[site as usize];
        assert_eq!(p.full_name(), format!("fbt:vmlinux:{f}:entry"));
        assert_ne!(p.id, s.probes[prog.probe as usize].id);
        let (_, v) = sites.iter().find(|(k, _)| word(k) == site).unwrap();
        assert_eq!(word(v), p.id);
        assert!(v[8..].starts_with(f.as_bytes()));
    }
    // No name tables beside the sites map.
    assert!(
        c.maps.iter().all(|m| m.name != "syscall_sites"),
        "{:?}",
        c.maps
    );
}
