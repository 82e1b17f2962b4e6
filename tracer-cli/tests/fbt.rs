//! The fbt provider (kernel functions) against the real kernel, through fentry/fexit and
//! through kprobes: typed `args[]` from BTF, struct members, return values, globs, and the
//! bpftrace names. A kernel without kprobes that refuses fentry (this project's build host)
//! cannot run fbt at all: there the tests check the error and print why the rest is skipped;
//! the VM matrix (`cargo xtask vm-test`) runs them on kernels that can.

use crate::kernel_common::*;
use std::time::Duration;

/// Which ways of attaching this kernel offers, asked of tracer itself.
struct Support {
    fentry: bool,
    kprobe: bool,
}

fn works(method: &str) -> Result<(), String> {
    let out = run(&[
        "-q",
        "-x",
        &format!("fbtmethod={method}"),
        "-n",
        "fbt::vfs_read:entry { exit(0); } tick-20s { exit(3); }",
        "-c",
        &format!("{} /proc/self/stat", target("read_file").display()),
    ]);
    match out.code() {
        0 => Ok(()),
        _ => Err(out.stderr.trim().to_string()),
    }
}

fn support() -> Support {
    Support {
        fentry: works("fentry").is_ok(),
        kprobe: works("kprobe").is_ok(),
    }
}

/// Print why a test does nothing here (never a silent pass).
fn skip(test: &str, why: &str) {
    eprintln!("SKIPPED {test}: {why}");
}

/// A file of known name and size for read_file to read.
fn data_file(size: usize) -> (std::path::PathBuf, String) {
    let path = scratch_file("fbt-data.txt");
    std::fs::write(&path, vec![b'x'; size]).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    (path, name)
}

fn methods(s: &Support) -> Vec<&'static str> {
    let mut m = Vec::new();
    if s.fentry {
        m.push("fentry");
    }
    if s.kprobe {
        m.push("kprobe");
    }
    m
}

#[test]
fn unavailable_fbt_is_one_clear_line() {
    let s = support();
    let kprobes = std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists();
    assert_eq!(
        s.kprobe, kprobes,
        "fbtmethod=kprobe must work exactly when the kernel has kprobes"
    );
    if s.fentry || s.kprobe {
        skip(
            "unavailable_fbt_is_one_clear_line",
            "this kernel can attach fbt probes",
        );
        return;
    }
    let out = run(&["-n", "fbt::vfs_read:entry { exit(0); }"]);
    assert_eq!(out.code(), 1, "{out}");
    assert!(
        out.stderr.contains("fbt probes cannot attach: this kernel has no kprobes (CONFIG_KPROBES is not set) and fentry does not work"),
        "{out}"
    );
    let out = run(&[
        "-x",
        "fbtmethod=kprobe",
        "-n",
        "kprobe:vfs_read { exit(0); }",
    ]);
    assert!(
        out.stderr
            .contains("this kernel has no kprobes (CONFIG_KPROBES is not set)"),
        "{out}"
    );
}

#[test]
fn entry_args_are_typed_from_btf() {
    let s = support();
    if methods(&s).is_empty() {
        return skip("entry_args_are_typed_from_btf", "no kprobes and no fentry");
    }
    let (path, name) = data_file(10_000);
    for method in methods(&s) {
        let out = run(&[
            "-q",
            "-x",
            &format!("fbtmethod={method}"),
            "-n",
            &format!(
                "fbt::vfs_read:entry /pid == $target && stringof(args[0]->f_path.dentry->d_name.name) == \"{name}\"/ {{
                    printf(\"%s %d %s\\n\", stringof(args[0]->f_path.dentry->d_name.name), args[2], curthread->comm);
                }}"
            ),
            "-c",
            &format!("{} {}", target("read_file").display(), path.display()),
        ])
        .ok();
        let lines = body(&out);
        // 10000 bytes in 4096-byte reads: three reads that return data, one at EOF.
        assert_eq!(lines.len(), 4, "{method}: {out}");
        assert!(
            lines.iter().all(|l| *l == format!("{name} 4096 read_file")),
            "{method}: {out}"
        );
    }
}

#[test]
fn return_values_are_arg1_and_typed() {
    let s = support();
    if methods(&s).is_empty() {
        return skip(
            "return_values_are_arg1_and_typed",
            "no kprobes and no fentry",
        );
    }
    let (path, name) = data_file(10_000);
    for method in methods(&s) {
        let out = run(&[
            "-q",
            "-x",
            &format!("fbtmethod={method}"),
            "-n",
            &format!(
                "fbt::vfs_read:entry /pid == $target && stringof(args[0]->f_path.dentry->d_name.name) == \"{name}\"/ {{ self->in = 1; }}
                 fbt::vfs_read:return /self->in/ {{ @bytes = sum(args[1]); @calls = count(); self->in = 0; }}
                 END {{ printa(\"%@d\\n\", @bytes); printa(\"%@d\\n\", @calls); }}"
            ),
            "-c",
            &format!("{} {}", target("read_file").display(), path.display()),
        ])
        .ok();
        assert_eq!(body(&out), ["10000", "4"], "{method}: {out}");
    }
}

#[test]
fn the_method_is_the_one_asked_for() {
    let s = support();
    for (method, ok, prog_type) in [("fentry", s.fentry, 26), ("kprobe", s.kprobe, 2)] {
        if !ok {
            skip(
                "the_method_is_the_one_asked_for",
                &format!("{method} does not work on this kernel"),
            );
            continue;
        }
        let t = spawn(&[
            "-q",
            "-x",
            &format!("fbtmethod={method}"),
            "-n",
            "BEGIN { printf(\"ready\\n\"); } fbt::vfs_read:entry,fbt::vfs_read:return { @ = count(); } tick-30s { exit(0); }",
        ]);
        t.wait_line("ready");
        let types: Vec<u32> = bpf::program_ids_of(t.pid())
            .into_iter()
            .filter_map(bpf::prog_type)
            .collect();
        t.signal(libc::SIGINT);
        let out = t.finish(Duration::from_secs(30));
        assert_eq!(out.code(), 0, "{out}");
        assert_eq!(
            types.iter().filter(|t| **t == prog_type).count(),
            2,
            "{method}: program types {types:?}"
        );
    }
    // auto picks fentry whenever it works, since trampolines cost less than kprobes, and
    // falls back to kprobes where it does not (arm64 before 6.0 answers ENOTSUPP).
    let out = run(&["-S", "-e", "-n", "fbt::vfs_read:entry { @ = count(); }"]);
    if s.fentry {
        assert!(out.stderr.contains("Fentry {"), "{out}");
    } else if s.kprobe {
        assert!(out.stderr.contains("Kprobe {"), "{out}");
        eprintln!("fentry does not work here: auto fell back to kprobes");
    }
}

#[test]
fn bpftrace_names_and_globs() {
    let s = support();
    if methods(&s).is_empty() {
        return skip("bpftrace_names_and_globs", "no kprobes and no fentry");
    }
    let (path, name) = data_file(100);
    let out = run(&[
        "-q",
        "-n",
        &format!(
            "kprobe:vfs_read /pid == $target && stringof(args[0]->f_path.dentry->d_name.name) == \"{name}\"/ {{ @e = count(); }}
             kretprobe:vfs_read /pid == $target/ {{ @r = count(); }}
             END {{ printa(\"%@d\\n\", @e); printa(\"%@d\\n\", @r); }}"
        ),
        "-c",
        &format!("{} {}", target("read_file").display(), path.display()),
    ])
    .ok();
    // Two reads of the 100-byte file: one with data, one at EOF; every read returns.
    let rows = body(&out);
    assert_eq!(rows[0], "2", "{out}");
    assert!(rows[1].parse::<u32>().unwrap() >= 2, "{out}");
    // A glob matches every vfs_read* function: the notice counts them.
    let out = run(&[
        "-n",
        "fbt::vfs_rea*:entry { @[probefunc] = count(); } tick-1s { exit(0); }",
    ])
    .ok();
    let matched: u32 = out
        .stderr
        .split_whitespace()
        .skip_while(|w| *w != "matched")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no matched notice\n{out}"));
    assert!(matched >= 3, "{out}"); // vfs_read, vfs_readv, vfs_readlink, ... + tick
}

#[test]
fn kernel_stacks_in_fbt_probes() {
    let s = support();
    if methods(&s).is_empty() {
        return skip("kernel_stacks_in_fbt_probes", "no kprobes and no fentry");
    }
    let (path, name) = data_file(100);
    let out = run(&[
        "-q",
        "-n",
        &format!(
            "fbt::vfs_read:entry /pid == $target && stringof(args[0]->f_path.dentry->d_name.name) == \"{name}\"/ {{ stack(); exit(0); }}"
        ),
        "-c",
        &format!("{} {}", target("read_file").display(), path.display()),
    ])
    .ok();
    // The read system call's path leads here: its frames name ksys_read or a read syscall.
    assert!(
        out.stdout.contains("ksys_read") || out.stdout.contains("sys_read"),
        "{out}"
    );
}

#[test]
fn globs_attach_as_one_kprobe_multi_program() {
    let s = support();
    if !s.kprobe {
        return skip("globs_attach_as_one_kprobe_multi_program", "no kprobes");
    }
    let code = run(&[
        "-S",
        "-e",
        "-n",
        "fbt::vfs_*:entry { @[probefunc] = count(); }",
    ]);
    if tracer_runtime::host::kernel_version() < (5, 18) {
        assert!(!code.stderr.contains("KprobeMulti"), "{code}");
        return skip(
            "globs_attach_as_one_kprobe_multi_program",
            "kprobe_multi needs Linux 5.18",
        );
    }
    let programs = code.stderr.matches("// p").count();
    if code.stderr.contains("KprobeMulti {") {
        assert_eq!(programs, 1, "one program for the whole glob\n{code}");
    } else {
        // 5.18+ without fprobe for this architecture (Debian's arm64 kernels): a program
        // per function (fentry or kprobe), and the rest of the test checks that path.
        let per_function = code.stderr.contains("Kprobe {") || code.stderr.contains("Fentry {");
        assert!(programs >= 8 && per_function, "{code}");
        eprintln!("kprobe_multi does not work on this kernel: checking per-function kprobes");
    }
    let (path, name) = data_file(10_000);
    let reader = format!("{} {}", target("read_file").display(), path.display());
    // probefunc comes from the attach cookie: vfs_read is named, once per read.
    let out = run(&[
        "-q",
        "-n",
        &format!(
            "fbt::vfs_*:entry /pid == $target && probefunc == \"vfs_read\" && stringof(((struct file *)arg0)->f_path.dentry->d_name.name) == \"{name}\"/ {{ @[probefunc] = count(); }}
             END {{ printa(\"%s %@d\\n\", @); }}"
        ),
        "-c",
        &reader,
    ])
    .ok();
    assert_eq!(body(&out), ["vfs_read 4"], "{out}");
    // Rows name the function and its own probe ID, as -l lists it, and so do probefunc and
    // id in the kernel (one program, a site per function).
    let out = run(&[
        "-n",
        "fbt::vfs_*:entry /pid == $target && probefunc == \"vfs_read\"/ { printf(\"<%s %d>\", probefunc, id); exit(0); }",
        "-c",
        &reader,
    ])
    .ok();
    let rows = id_rows(&out);
    let (id, func, _, probefunc, traced) = rows
        .iter()
        .find(|r| r.1 == "vfs_read" && r.2 == "entry")
        .unwrap_or_else(|| panic!("no vfs_read:entry row\n{out}"));
    assert_eq!(probefunc, func, "{out}");
    assert_eq!(traced, id, "trace(id) is the row's ID\n{out}");
    let listed = run(&["-l", "-n", "fbt::vfs_read:entry"]).ok();
    assert!(
        listed
            .stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some(&id.to_string())),
        "row ID {id} is not vfs_read's\n{listed}\n{out}"
    );
    let matched: u32 = out
        .stderr
        .split_whitespace()
        .skip_while(|w| *w != "matched")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no matched notice\n{out}"));
    assert!(matched >= 8, "{out}");
}
