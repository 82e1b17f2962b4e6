//! Errors that need a special setup: missing privileges, and a program the kernel verifier
//! rejects (the message must name the D line that produced the failing instruction).

use std::process::Command;

#[test]
fn missing_privileges_are_one_clear_line() {
    // setpriv (util-linux) drops to an unprivileged user with no capabilities.
    let Ok(probe) = Command::new("setpriv").arg("--version").output() else {
        eprintln!("skipped: setpriv is not installed");
        return;
    };
    assert!(probe.status.success());
    // The binary must be reachable by "nobody": copy it somewhere world-readable.
    let dir = std::env::temp_dir().join(format!("tracer-priv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("tracer");
    std::fs::copy(env!("CARGO_BIN_EXE_tracer"), &bin).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(&bin)
        .args(["-n", "BEGIN { exit(0); }"])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "tracer: insufficient privileges to trace: missing CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN: run as root, or add them (docker/podman: --privileged, or --cap-add BPF --cap-add PERFMON --cap-add SYS_ADMIN)\n"
    );
}

#[test]
fn verifier_rejection_names_the_d_line() {
    // 300 index() calls with a computed needle (a nested loop each) in one statement exceed
    // the verifier's one million instructions.
    let calls: Vec<String> = (0..300).map(|_| "index(s, t)".to_string()).collect();
    let script = format!(
        "#pragma D option quiet\nBEGIN\n{{\n\ts = \"abcdefghijklmnopqrstuvwxyz0123456789\"; t = \"0\";\n\tx = {};\n\tprintf(\"%d\\n\", x);\n\texit(0);\n}}\n",
        calls.join(" + ")
    );
    let path = std::env::temp_dir().join(format!("verif-{}.d", std::process::id()));
    std::fs::write(&path, script).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tracer"))
        .arg("-s")
        .arg(&path)
        .output()
        .unwrap();
    std::fs::remove_file(&path).ok();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    let first = err.lines().next().unwrap_or("");
    assert_eq!(
        first,
        format!("tracer: failed to enable dtrace:::BEGIN: the kernel verifier rejected the generated program for {}:5:", path.display())
    );
    assert!(
        err.lines()
            .nth(1)
            .is_some_and(|l| l.trim_start().starts_with("x = index(s, t)")),
        "{err}"
    );
    assert!(err.contains("verifier log (last lines):"), "{err}");
    // The kernel's reason: out of instructions or of jump-history room, depending on kernel.
    assert!(
        err.contains("BPF program is too large") || err.contains("too complex"),
        "{err}"
    );
}
