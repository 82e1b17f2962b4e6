//! Go programs under the pid provider, on the real kernel: return probes on return
//! instructions (a uretprobe would make Go's stack walker abort the program), Go's register
//! ABI for arguments, names from `.gopclntab` in stripped binaries; and, for any binary,
//! `-x pidreturn=ret` and offset probes only at instruction boundaries.
//!
//! The Go target (tests/targets/go/handler.go) is built with `go build` into the scratch
//! directory; without Go the Go tests print why and pass.

use crate::kernel_common::{body, go_target, run, scratch};
use object::{Object, ObjectSection, ObjectSymbol};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `tracer -q OPTS -c CMD -n SCRIPT`, run to completion.
fn trace(opts: &[&str], cmd: &str, script: &str) -> crate::kernel_common::Output {
    let mut args = vec!["-q"];
    args.extend_from_slice(opts);
    args.extend(["-c", cmd, "-n", script]);
    run(&args)
}

/// A C target of tests/targets, built without CET's endbr64 so its first instructions are
/// known (`push %rbp` 1 byte, `mov %rsp,%rbp` 3 bytes on x86-64).
fn c_target(name: &str, opt: &str) -> PathBuf {
    let out = scratch().join(format!("{name}{opt}-plain"));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../tests/targets/{name}.c"));
    let mut args = vec![opt, "-fno-omit-frame-pointer"];
    if cfg!(target_arch = "x86_64") {
        args.push("-fcf-protection=none");
    }
    let r = Command::new("cc")
        .args(&args)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .output()
        .expect("cannot run cc");
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    out
}

/// The instruction `off` bytes into function `func` of `bin` is a return.
fn is_return_insn(bin: &Path, func: &str, off: u64) -> bool {
    let data = std::fs::read(bin).unwrap();
    let file = object::File::parse(&*data).unwrap();
    let sym = file
        .symbols()
        .find(|s| s.name() == Ok(func))
        .unwrap_or_else(|| panic!("no symbol {func}"));
    let text = file.section_by_name(".text").unwrap();
    let code = text.data().unwrap();
    let at = (sym.address() + off - text.address()) as usize;
    if cfg!(target_arch = "aarch64") {
        let w = u32::from_le_bytes(code[at..at + 4].try_into().unwrap());
        w & 0xFFFF_FC1F == 0xD65F_0000
    } else {
        code[at] == 0xc3
    }
}

/// The Go program ran to its end: its output, and none of the runtime's fatal errors.
fn assert_go_finished(out: &crate::kernel_common::Output, sum: &str) {
    // Its lines and tracer's share stdout, in either order.
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines.contains(&sum) && lines.contains(&"done"),
        "the Go target did not finish\n{out}"
    );
    for bad in ["unexpected return pc", "fatal error", "unknown caller pc"] {
        assert!(
            !out.stdout.contains(bad) && !out.stderr.contains(bad),
            "{bad}\n{out}"
        );
    }
}

#[test]
fn go_entry_and_return_leave_the_program_running() {
    let Some(bin) = go_target(&[]) else { return };
    let cmd = format!("{} 10", bin.display());
    let out = trace(
        &[],
        &cmd,
        "pid$target::main.handle:entry { @e = count(); } \
         pid$target::main.handle:return { @r = count(); } \
         pid$target::main.grow:entry { @ge = count(); } \
         pid$target::main.grow:return { @gr = count(); } \
         END { printa(\"entry %@d\\n\", @e); printa(\"return %@d\\n\", @r); \
               printa(\"grow entry %@d\\n\", @ge); printa(\"grow return %@d\\n\", @gr); }",
    )
    .ok();
    assert_go_finished(&out, "3045");
    let lines = body(&out);
    assert!(lines.contains(&"entry 10".to_string()), "{out}");
    assert!(lines.contains(&"return 10".to_string()), "{out}");
    // grow(64) recurses 65 deep per call and grows the goroutine's stack on the way: each
    // growth re-runs grow's first instruction, but the entry probe (past the stack check)
    // counts each call once.
    assert!(lines.contains(&"grow entry 650".to_string()), "{out}");
    assert!(lines.contains(&"grow return 650".to_string()), "{out}");
}

#[test]
fn go_return_arg0_is_the_return_instruction_and_arg1_the_result() {
    let Some(bin) = go_target(&[]) else { return };
    let cmd = format!("{} 10", bin.display());
    let out = trace(
        &[],
        &cmd,
        "pid$target::main.handle:return { @o[arg0] = count(); @s = sum(arg1); } \
         END { printa(\"off %d %@d\\n\", @o); printa(\"sum %@d\\n\", @s); }",
    )
    .ok();
    assert_go_finished(&out, "3045");
    let lines = body(&out);
    // Even i returns i, odd i 600 + i: 20 + 3025.
    assert!(lines.contains(&"sum 3045".to_string()), "{out}");
    // Two returns, five calls each, each at a return instruction of main.handle.
    let offs: Vec<(u64, u64)> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("off "))
        .map(|l| {
            let (o, c) = l.split_once(' ').unwrap();
            (o.parse().unwrap(), c.parse().unwrap())
        })
        .collect();
    assert_eq!(offs.len(), 2, "{out}");
    for (off, count) in offs {
        assert_eq!(count, 5, "{out}");
        assert!(is_return_insn(&bin, "main.handle", off), "0x{off:x}\n{out}");
    }
}

#[test]
fn go_string_argument_is_two_words() {
    let Some(bin) = go_target(&[]) else { return };
    let cmd = format!("{} 3", bin.display());
    let out = trace(
        &[],
        &cmd,
        "pid$target::main.handle:entry { printf(\"%d %s\\n\", arg0, copyinstr(arg1, arg2)); }",
    )
    .ok();
    assert_go_finished(&out, "603");
    for i in 0..3 {
        assert!(
            out.stdout.contains(&format!("{i} gopher\n")),
            "call {i}\n{out}"
        );
    }
}

#[test]
fn stripped_go_binary_functions_come_from_pclntab() {
    let Some(bin) = go_target(&["-ldflags=-s -w"]) else {
        return;
    };
    let data = std::fs::read(&bin).unwrap();
    let file = object::File::parse(&*data).unwrap();
    assert!(file.section_by_name(".symtab").is_none(), "not stripped");
    let cmd = format!("{} 4", bin.display());
    let out = trace(
        &[],
        &cmd,
        "pid$target::main.*:entry { @[probefunc] = count(); } \
         pid$target::main.handle:return { @r = sum(arg1); } \
         END { printa(\"%s %@d\\n\", @); printa(\"ret %@d\\n\", @r); }",
    )
    .ok();
    assert_go_finished(&out, "1206");
    let lines = body(&out);
    for want in ["main.main 1", "main.handle 4", "ret 1206"] {
        assert!(lines.contains(&want.to_string()), "{want}\n{out}");
    }
    // grow runs 65 times per call; a stack growth re-runs a function's entry (Go's
    // morestack jumps back to it), so the entry probe may fire more often.
    let grow: u64 = lines
        .iter()
        .find_map(|l| l.strip_prefix("main.grow "))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no main.grow\n{out}"));
    assert!(grow >= 4 * 65, "{out}");
}

#[test]
fn c_return_probes_on_return_instructions() {
    let bin = c_target("pid_calls", "-O0");
    let cmd = format!("{} 7", bin.display());
    let out = trace(
        &["-x", "pidreturn=ret"],
        &cmd,
        "pid$target:a.out:work:return { @o[arg0] = count(); @s = sum(arg1); } \
         END { printa(\"off %d %@d\\n\", @o); printa(\"sum %@d\\n\", @s); }",
    )
    .ok();
    let lines = body(&out);
    // work(i) returns 2i+1 for i in 0..7.
    assert!(lines.contains(&"sum 49".to_string()), "{out}");
    let offs: Vec<&str> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("off "))
        .collect();
    assert_eq!(offs.len(), 1, "{out}");
    let (off, count) = offs[0].split_once(' ').unwrap();
    assert_eq!(count, "7", "{out}");
    assert!(is_return_insn(&bin, "work", off.parse().unwrap()), "{out}");
}

#[test]
fn offsets_inside_an_instruction_are_refused() {
    let bin = c_target("pid_calls", "-O0");
    let cmd = format!("{} 7", bin.display());
    let out = trace(&[], &cmd, "pid$target:a.out:work:3 { @ = count(); }");
    assert_ne!(out.code(), 0, "{out}");
    let nearest = if cfg!(target_arch = "aarch64") {
        "0x0 and 0x4"
    } else {
        "0x1 and 0x4"
    };
    assert!(
        out.stderr.contains(&format!(
            ":a.out:work:3: offset 0x3 is inside an instruction; the nearest boundaries are {nearest}"
        )),
        "{out}"
    );
    // The boundary after it works.
    let out = trace(
        &[],
        &cmd,
        "pid$target:a.out:work:4 { @ = count(); } END { printa(\"n %@d\\n\", @); }",
    )
    .ok();
    assert!(body(&out).contains(&"n 7".to_string()), "{out}");
}

#[test]
fn functions_with_an_indirect_jump_get_no_return_probes() {
    let bin = c_target("jump_table", "-O2");
    let cmd = format!("{} 3", bin.display());
    let out = trace(
        &["-x", "pidreturn=ret"],
        &cmd,
        "pid$target:a.out:[mp][ai]*:return { @[probefunc] = count(); } \
         END { printa(\"%s %@d\\n\", @); }",
    )
    .ok();
    // pick(3, 2) = 8; only main's return fired.
    assert_eq!(body(&out), vec!["8", "main 1"], "{out}");
    assert!(out.stderr.contains("1 function that pid"), "{out}");
    assert!(
        out.stderr.contains("has no return probes: where it returns cannot be told for certain (first: pick: an indirect jump at 0x"),
        "{out}"
    );
}

#[test]
fn stripped_go_stacks_are_named_from_pclntab() {
    let Some(bin) = go_target(&["-ldflags=-s -w"]) else {
        return;
    };
    let cmd = format!("{} 1", bin.display());
    let out = trace(&[], &cmd, "pid$target::main.handle:return { ustack(); }").ok();
    let module = bin.file_name().unwrap().to_string_lossy().into_owned();
    let frames: Vec<&str> = out.stdout.lines().map(str::trim).collect();
    // The return probe is in handle; it was called by main's goroutine closure.
    let at = frames
        .iter()
        .position(|f| f.starts_with(&format!("{module}`main.handle+0x")))
        .unwrap_or_else(|| panic!("no main.handle frame\n{out}"));
    // On arm64 the kernel's frame-pointer walk from a return instruction stops at the
    // first frame (Go's epilogue has already popped its frame record).
    if cfg!(target_arch = "aarch64") {
        return;
    }
    assert!(
        frames[at + 1].starts_with(&format!("{module}`main.main.func")),
        "{out}"
    );
}

/// tests/targets/go_cgo/cgo_handler.go built with cgo and `-ldflags=-s -w`, or None (and why)
/// where Go or cgo's C compiler is missing (the VM matrix's Go targets are built without cgo).
fn stripped_cgo_target() -> Option<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/targets/go_cgo/cgo_handler.go");
    let out = scratch().join("cgo_handler-stripped");
    let home = scratch().join("gohome-cgo");
    let built = Command::new("go")
        .args(["build", "-ldflags=-s -w", "-o"])
        .arg(&out)
        .arg(&src)
        .env("CGO_ENABLED", "1")
        .env("GOCACHE", home.join("cache"))
        .env("GOPATH", home.join("gopath"))
        .env("HOME", &home)
        .env("GOFLAGS", "")
        .output();
    match built {
        Ok(r) if r.status.success() => Some(out),
        Ok(r) => {
            eprintln!(
                "skipped: cannot build a cgo program here: {}",
                String::from_utf8_lossy(&r.stderr).trim()
            );
            None
        }
        Err(_) => {
            eprintln!("skipped: go is not installed (apt-get install golang-go)");
            None
        }
    }
}

#[test]
fn stripped_cgo_binary_probes_land_on_the_right_functions() {
    let Some(bin) = stripped_cgo_target() else {
        return;
    };
    // A probe placed from .text's address instead of runtime.text would sit 0x100 bytes
    // early, in another function (or mid-instruction): counts and arguments would be wrong.
    let cmd = format!("{} 7", bin.display());
    let out = trace(
        &[],
        &cmd,
        "pid$target::main.handle:entry { @e = count(); @a = sum(arg0); } \
         pid$target::main.handle:return { @r = count(); @v = sum(arg1); } \
         END { printa(\"entry %@d %@d\\n\", @e, @a); printa(\"return %@d %@d\\n\", @r, @v); }",
    )
    .ok();
    let lines = body(&out);
    // handle(i) = 2i + 1 for i in 0..7: arguments sum to 21, results to 49.
    assert!(lines.contains(&"49".to_string()), "{out}");
    assert!(lines.contains(&"entry 7 21".to_string()), "{out}");
    assert!(lines.contains(&"return 7 49".to_string()), "{out}");
}
