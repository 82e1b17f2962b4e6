//! func()/ufunc(): addresses named by the function they are in, as aggregation keys.

use std::process::{Command, Stdio};

#[test]
fn profile_keys_by_kernel_and_user_function() {
    // Keep a CPU busy in user space and in the kernel (each echo is a write(2)), so that
    // profile samples land in both.
    let mut busy = Command::new("sh")
        .args(["-c", "while :; do echo x > /dev/null; done"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tracer"))
        .args(["-q", "-n"])
        .arg(format!(
            "profile-199 /pid == {} && arg1/ {{ @u[ufunc(arg1)] = count(); }} profile-199 /arg0/ {{ @k[func(arg0)] = count(); }} tick-2s {{ exit(0); }}",
            busy.id()
        ))
        .output()
        .unwrap();
    busy.kill().ok();
    busy.wait().ok();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Kernel functions are `vmlinux`name` without an offset; keys merge per function.
    let kernel: Vec<&str> = text.lines().filter(|l| l.contains("vmlinux`")).collect();
    assert!(!kernel.is_empty(), "{text}");
    assert!(kernel.iter().all(|l| !l.contains("+0x")), "{text}");
    let names: Vec<&str> = kernel
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        names.len(),
        "a function appears twice:\n{text}"
    );
    // The busy shell's samples are in user space: hex (stripped dash) or `lib`func`.
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("0x") || l.contains(".so")),
        "{text}"
    );
}
