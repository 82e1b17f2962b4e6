//! Containers built from kernel primitives (no container engine): tracer in a new pid
//! namespace sees only that namespace's processes, numbered as there; a cgroup v2 scope
//! sees only its subtree; a uprobe on a binary inside a chroot'ed root is found through
//! /proc/PID/root. Every "never seen" assertion is paired with a `--scope host` control run
//! in the same setup that does see the outside marker, so the tests cannot pass vacuously.
//!
//! Markers are `cat /nonexistent/MARK_…` runs, which tracer reports from `openat`.
//! Needs root in the initial user namespace, unshare(1) and cgroup2; skips say why.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

const TRACER: &str = env!("CARGO_BIN_EXE_tracer");

/// The D script every run uses: "ready" once probes are live, then one line per marker.
const MARKERS_D: &str = r#"
BEGIN { printf("ready\n"); }
syscall::openat:entry /execname == "cat"/
{
	printf("%s pid=%d tid=%d ppid=%d hostpid=%d pidns=%u\n", copyinstr(arg1), pid, tid, ppid,
	    hostpid, pidns);
}
"#;

/// Runs tracer (args after `$3`) in the background, waits for its "ready", runs the
/// workload script `$2` with the directory `$1`, then stops tracer with SIGINT.
const DRIVER_SH: &str = r#"
D=$1; W=$2; shift 2
"$@" > $D/out 2> $D/err &
TP=$!
i=0
until grep -q '^ready' $D/out 2>/dev/null; do
	sleep 0.05; i=$((i+1))
	if [ $i -gt 600 ] || ! kill -0 $TP 2>/dev/null; then
		echo "driver: tracer did not start" >> $D/err; kill -INT $TP 2>/dev/null; wait $TP; exit 1
	fi
done
sh $W $D
sleep 0.3
kill -INT $TP
wait $TP
echo $? > $D/status
"#;

fn skip_reason() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("needs root".into());
    }
    let map = std::fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    if map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"] {
        return Some("needs the initial user namespace".into());
    }
    if Command::new("unshare").arg("--version").output().is_err() {
        return Some("unshare(1) is not installed".into());
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Some("needs kernel BTF".into());
    }
    None
}

macro_rules! require {
    () => {
        if let Some(why) = skip_reason() {
            eprintln!("skipped: {why}");
            return;
        }
    };
}

fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("containers-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("markers.d"), MARKERS_D).unwrap();
        std::fs::write(d.join("driver.sh"), DRIVER_SH).unwrap();
        d
    })
}

/// A fresh directory for one run.
fn run_dir(name: &str) -> PathBuf {
    let d = scratch().join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A marker loop in the test's own (initial) namespaces and cgroup, killed on drop.
struct Marker(Child);

impl Marker {
    fn start(mark: &str) -> Marker {
        let script = format!("while :; do cat /nonexistent/{mark} 2>/dev/null; sleep 0.02; done");
        Marker(Command::new("sh").args(["-c", &script]).spawn().unwrap())
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What one driver run printed.
struct Run {
    out: String,
    err: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "--- stdout\n{}--- stderr\n{}---", self.out, self.err)
    }
}

impl Run {
    /// The report line of marker `mark`, if tracer saw it.
    fn line(&self, mark: &str) -> Option<&str> {
        self.out.lines().find(|l| l.contains(mark))
    }

    /// `key=` value of marker `mark`'s line.
    fn field(&self, mark: &str, key: &str) -> u64 {
        let line = self
            .line(mark)
            .unwrap_or_else(|| panic!("{mark} not seen:\n{}\nstderr:\n{}", self.out, self.err));
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
    }
}

/// Run the driver with `workload` (a shell script taking the run directory as $1) under
/// `prefix` (e.g. unshare), tracer getting `tracer_args` after `-q -s markers.d`.
fn drive(dir: &Path, prefix: &[&str], workload: &str, tracer_args: &[&str]) -> Run {
    let w = dir.join("work.sh");
    std::fs::write(&w, workload).unwrap();
    let mut cmd = Command::new(prefix.first().copied().unwrap_or("sh"));
    if !prefix.is_empty() {
        cmd.args(&prefix[1..]).arg("sh");
    }
    cmd.arg(scratch().join("driver.sh"))
        .arg(dir)
        .arg(&w)
        .arg(TRACER)
        .args(["-q", "-s"])
        .arg(scratch().join("markers.d"))
        .args(tracer_args)
        .stdin(Stdio::null());
    let status = cmd.status().unwrap();
    let run = Run {
        out: std::fs::read_to_string(dir.join("out")).unwrap_or_default(),
        err: std::fs::read_to_string(dir.join("err")).unwrap_or_default(),
    };
    let tracer_status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
    assert!(
        status.success() && tracer_status.trim() == "0",
        "driver {status}, tracer status {tracer_status:?}\nstdout:\n{}\nstderr:\n{}",
        run.out,
        run.err
    );
    run
}

const PIDNS: &[&str] = &["unshare", "--pid", "--fork", "--mount-proc"];

/// The workload inside: its pid as the namespace numbers it, then the marker itself.
const INSIDE: &str =
    "sh -c \"echo \\$\\$ > $1/in.pid; exec cat /nonexistent/MARK_IN\" 2>/dev/null\n";

fn read_pid(dir: &Path, name: &str) -> u64 {
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    text.split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn pid_namespace_sees_only_itself_with_its_own_pids() {
    require!();
    let _outside = Marker::start("MARK_OUT");
    let dir = run_dir("pidns");
    let run = drive(&dir, PIDNS, INSIDE, &[]);
    let inside = read_pid(&dir, "in.pid");
    assert_eq!(run.field("MARK_IN", "pid"), inside, "{}", run);
    assert_eq!(run.field("MARK_IN", "tid"), inside);
    // The namespace numbers its processes from 1 (the driver's polling forks add a few per
    // 50 ms, so no fixed bound holds on a slow machine); the host's pid of the same one differs.
    let hostpid = run.field("MARK_IN", "hostpid");
    assert!(inside < hostpid, "inside pid {inside}, host pid {hostpid}");
    // The workload's parent is the driver shell, inside too.
    assert!(run.field("MARK_IN", "ppid") >= 1);
    assert!(run.line("MARK_OUT").is_none(), "outside seen:\n{}", run);

    // Control: the same setup with --scope host (and -x scope=host) sees the outside marker.
    for args in [&["--scope", "host"][..], &["-x", "scope=host"][..]] {
        let dir = run_dir("pidns-host");
        let run = drive(&dir, PIDNS, INSIDE, args);
        assert!(run.line("MARK_OUT").is_some(), "{args:?}: {}", run);
        // Host pids now: the inside workload's pid is its host pid.
        assert_eq!(run.field("MARK_IN", "pid"), run.field("MARK_IN", "hostpid"));
    }
}

#[test]
fn nested_pid_namespaces_include_children_not_parents() {
    require!();
    // Tracer runs in namespace B (level 2) inside A (level 1). A marker loops in A; B runs a
    // workload and a child namespace C with another.
    let dir = run_dir("nested");
    let b_work = "sh -c \"echo \\$\\$ > $1/in.pid; exec cat /nonexistent/MARK_IN\" 2>/dev/null\n\
        unshare --pid --fork sh -c 'sleep 0.4; exec cat /nonexistent/MARK_NESTED' 2>/dev/null &\n\
        U=$!\n\
        sleep 0.2\n\
        cat /proc/$U/task/$U/children > $1/nested.pid\n\
        wait $U\n";
    let run_in_b = |dir: &Path, args: &[&str]| {
        let a_script = dir.join("a.sh");
        let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
        std::fs::write(
            &a_script,
            format!(
                "(while :; do cat /nonexistent/MARK_PARENT 2>/dev/null; sleep 0.02; done) &\n\
                 M=$!\n\
                 unshare --pid --fork --mount-proc sh {driver} {dir} {work} {tracer} -q -s {d} {args}\n\
                 R=$?\n\
                 kill $M\n\
                 exit $R\n",
                driver = scratch().join("driver.sh").display(),
                dir = dir.display(),
                work = dir.join("work.sh").display(),
                tracer = TRACER,
                d = scratch().join("markers.d").display(),
                args = quoted.join(" "),
            ),
        )
        .unwrap();
        std::fs::write(dir.join("work.sh"), b_work).unwrap();
        let status = Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "sh"])
            .arg(&a_script)
            .status()
            .unwrap();
        let run = Run {
            out: std::fs::read_to_string(dir.join("out")).unwrap_or_default(),
            err: std::fs::read_to_string(dir.join("err")).unwrap_or_default(),
        };
        let tracer_status = std::fs::read_to_string(dir.join("status")).unwrap_or_default();
        assert!(
            status.success() && tracer_status.trim() == "0",
            "driver {status}, tracer status {tracer_status:?}\n{run}"
        );
        run
    };
    let run = run_in_b(&dir, &[]);
    assert_eq!(run.field("MARK_IN", "pid"), read_pid(&dir, "in.pid"));
    // The grandchild is included, numbered as B sees it (not 1, its own namespace's number).
    let nested = read_pid(&dir, "nested.pid");
    assert_eq!(run.field("MARK_NESTED", "pid"), nested, "{}", run);
    assert_ne!(nested, 1);
    assert_ne!(
        run.field("MARK_NESTED", "pidns"),
        run.field("MARK_IN", "pidns"),
        "the nested workload has a pid namespace of its own"
    );
    assert!(run.line("MARK_PARENT").is_none(), "parent seen:\n{}", run);

    // On aarch64 6.1 under TCG, about one control run in five (never the first run) ends
    // with tracer having printed nothing but "ready", its own workload included; the cause is
    // not known yet. Such a run says nothing about scope, so it is repeated, and reported.
    let mut attempt = 0;
    let run = loop {
        attempt += 1;
        let dir = run_dir("nested-host");
        let run = run_in_b(&dir, &["--scope", "host"]);
        if run.line("MARK_IN").is_some() || attempt == 3 {
            break run;
        }
        eprintln!("control run {attempt} saw no event at all, repeated:\n{run}");
    };
    assert!(run.line("MARK_PARENT").is_some(), "control: {}", run);
}

/// A cgroup v2 tree `in/`, `in/child/`, `out/` under the cgroup2 mount, removed on drop.
struct Cgroups {
    root: PathBuf,
    rel: String,
}

impl Cgroups {
    fn create() -> Option<Cgroups> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let mount = info.lines().find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            (post.split(' ').next()? == "cgroup2")
                .then(|| pre.split(' ').nth(4).map(PathBuf::from))?
        })?;
        let rel = format!("tracer-scope-{}", std::process::id());
        let root = mount.join(&rel);
        std::fs::create_dir_all(root.join("in/child")).ok()?;
        std::fs::create_dir_all(root.join("out")).ok()?;
        Some(Cgroups { root, rel })
    }

    /// A workload that joins each cgroup and opens its marker there.
    fn workload(&self) -> String {
        let mut w = String::new();
        for (cg, mark) in [
            ("in", "MARK_CGIN"),
            ("in/child", "MARK_CGCHILD"),
            ("out", "MARK_CGOUT"),
        ] {
            w.push_str(&format!(
                "sh -c 'echo $$ > {}/{cg}/cgroup.procs && exec cat /nonexistent/{mark}' 2>/dev/null\n",
                self.root.display()
            ));
        }
        w
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        rmdir_tree(&self.root);
    }
}

/// Remove a cgroup directory and every cgroup below it (deepest first: cgroupfs refuses
/// to remove a directory with children, and its files cannot be deleted).
fn rmdir_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                rmdir_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

#[test]
fn cgroup_scope_sees_the_subtree_only() {
    require!();
    let Some(cg) = Cgroups::create() else {
        eprintln!("skipped: no writable cgroup2 mount");
        return;
    };
    let _outside = Marker::start("MARK_OUT");
    let scope = format!("cgroup={}", cg.root.join("in").display());
    let dir = run_dir("cgroup");
    let run = drive(&dir, &[], &cg.workload(), &["--scope", &scope]);
    assert!(run.line("MARK_CGIN").is_some(), "{}\n{}", run.out, run.err);
    assert!(run.line("MARK_CGCHILD").is_some(), "{}", run);
    assert!(run.line("MARK_CGOUT").is_none(), "{}", run);
    assert!(run.line("MARK_OUT").is_none(), "{}", run);
    // Host pids in a cgroup scope.
    assert_eq!(
        run.field("MARK_CGIN", "pid"),
        run.field("MARK_CGIN", "hostpid")
    );

    // Aggregations: keys from outside never appear. The path relative to the mount, as -x.
    let agg = "syscall::openat:entry /execname == \"cat\"/ { @[copyinstr(arg1)] = count(); }";
    let scope = format!("scope=cgroup={}/in", cg.rel);
    let dir = run_dir("cgroup-agg");
    let run = drive(&dir, &[], &cg.workload(), &["-x", &scope, "-n", agg]);
    let keys: Vec<&str> = run.out.lines().filter(|l| l.contains("MARK_")).collect();
    assert!(keys.iter().any(|l| l.contains("MARK_CGIN")), "{}", run);
    assert!(
        keys.iter().any(|l| l.contains("MARK_CGCHILD")),
        "{}",
        run.out
    );
    assert!(
        !keys
            .iter()
            .any(|l| l.contains("MARK_CGOUT") || l.contains("MARK_OUT")),
        "{}",
        run.out
    );

    // Control: the same run with --scope host sees out/ and the outside marker.
    let dir = run_dir("cgroup-host");
    let run = drive(&dir, &[], &cg.workload(), &["--scope", "host"]);
    assert!(run.line("MARK_CGOUT").is_some(), "{}", run);
    assert!(run.line("MARK_OUT").is_some(), "{}", run);
}

/// Run tracer directly; (status, stderr).
fn tracer_fails(prefix: &[&str], args: &[&str]) -> (i32, String) {
    let out = Command::new(prefix.first().copied().unwrap_or(TRACER))
        .args(prefix.iter().skip(1))
        .args(if prefix.is_empty() {
            &[][..]
        } else {
            &[TRACER][..]
        })
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_scopes_are_one_clear_line() {
    require!();
    let begin = ["-n", "BEGIN { exit(0); }"];
    let (code, err) = tracer_fails(&[], &[&["--scope", "zone"][..], &begin].concat());
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err,
        "tracer: unknown scope \"zone\" (use host, pidns, cgroup or cgroup=PATH)\n"
    );
    let (code, err) = tracer_fails(&[], &[&["-x", "scope"][..], &begin].concat());
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with("tracer: failed to set -x scope: needs a value"),
        "{err}"
    );
    let (code, err) = tracer_fails(
        &[],
        &[&["--scope", "cgroup=no/such/group"][..], &begin].concat(),
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with("tracer: --scope cgroup: no/such/group is not a cgroup v2 directory (cgroup2 is mounted at /"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    // Without any cgroup2 mount (unmounted in a private mount namespace).
    if let Some((mount, _)) = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            (post.starts_with("cgroup2 ")).then(|| (pre.split(' ').nth(4).unwrap().to_string(), ()))
        })
    {
        let script =
            format!("umount {mount} && exec {TRACER} --scope cgroup -n 'BEGIN {{ exit(0); }}'");
        let (code, err) = tracer_fails(&["unshare", "--mount", "sh", "-c", &script], &[]);
        assert_eq!(code, 1, "{err}");
        assert!(
            err.starts_with(
                "tracer: --scope cgroup needs cgroup v2, and no cgroup2 file system is mounted"
            ),
            "{err}"
        );
    }
}

#[test]
fn missing_capabilities_say_what_to_add() {
    require!();
    if Command::new("capsh").arg("--help").output().is_err() {
        eprintln!("skipped: capsh (libcap2-bin) is not installed");
        return;
    }
    let script = format!("{TRACER} -n 'BEGIN {{ exit(0); }}'");
    let (code, err) = tracer_fails(
        &[
            "capsh",
            "--drop=cap_bpf,cap_perfmon,cap_sys_admin",
            "--",
            "-c",
            &script,
        ],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert_eq!(
        err,
        "tracer: insufficient privileges to trace: missing CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN: run as root, or add them (docker/podman: --privileged, or --cap-add BPF --cap-add PERFMON --cap-add SYS_ADMIN)\n"
    );
    // CAP_BPF + CAP_PERFMON alone are enough for BEGIN (no uprobes).
    let (code, err) = tracer_fails(&["capsh", "--drop=cap_sys_admin", "--", "-c", &script], &[]);
    assert_eq!(code, 0, "{err}");
    // A user namespace: capabilities there do not count.
    let (code, err) = tracer_fails(&["unshare", "--user", "--map-root-user"], &begin_args());
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("runs in a user namespace"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

fn begin_args() -> Vec<&'static str> {
    vec!["-n", "BEGIN { exit(0); }"]
}

/// A minimal container root: busybox, a static uprobe target, and tracer with its libraries.
fn container_root(dir: &Path) -> Option<PathBuf> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())?;
    let root = dir.join("root");
    for d in ["bin", "proc", "sys", "tmp", "lib", "lib64", "dev"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    for tool in ["sh", "cat", "sleep", "kill", "hostname", "echo"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(tool)).unwrap();
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/targets/container_marker.c");
    let ok = Command::new("cc")
        .args(["-O0", "-g", "-static", "-o"])
        .arg(root.join("bin/marker"))
        .arg(&src)
        .status()
        .ok()?
        .success();
    if !ok {
        return None;
    }
    // tracer is linked dynamically: copy the libraries ldd names to the same paths.
    std::fs::copy(TRACER, root.join("tracer")).unwrap();
    let ldd = Command::new("ldd").arg(TRACER).output().ok()?;
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line
            .split_whitespace()
            .find(|w| w.starts_with('/'))
            .map(PathBuf::from);
        if let Some(p) = path {
            let dst = root.join(p.strip_prefix("/").unwrap());
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            std::fs::copy(&p, &dst).unwrap();
        }
    }
    Some(root)
}

#[test]
fn uprobe_in_a_container_root_shows_container_pids() {
    require!();
    let dir = run_dir("chroot");
    let Some(root) = container_root(&dir) else {
        eprintln!("skipped: needs busybox-static and a static libc (cc -static)");
        return;
    };
    // /bin/marker exists only inside the root: the probe can only be found through
    // /proc/PID/root. The host has no such file.
    assert!(!Path::new("/bin/marker").exists());
    std::fs::write(
        root.join("run.sh"),
        "hostname ctr\n\
         /bin/marker & P=$!\n\
         echo $P > /tmp/marker.pid\n\
         sleep 0.2\n\
         /tracer -q -p $P -n 'pid$target:a.out:marker_fn:entry { printf(\"pid=%d hostpid=%d arg0=%d\\n\", pid, hostpid, arg0); exit(0); }' > /tmp/out 2> /tmp/err\n\
         echo $? > /tmp/status\n\
         kill $P\n",
    )
    .unwrap();
    let setup = format!(
        "mount -t proc proc {r}/proc && mount --rbind /sys {r}/sys && mount --rbind /dev {r}/dev && exec chroot {r} /bin/sh /run.sh",
        r = root.display()
    );
    let status = Command::new("unshare")
        .args(["--pid", "--mount", "--uts", "--fork", "sh", "-c", &setup])
        .status()
        .unwrap();
    let read = |f: &str| std::fs::read_to_string(root.join("tmp").join(f)).unwrap_or_default();
    let (out, err) = (read("out"), read("err"));
    assert!(
        status.success() && read("status").trim() == "0",
        "{status}\n{out}\n{err}"
    );
    let marker: u64 = read("marker.pid").trim().parse().unwrap();
    let line = out
        .lines()
        .next()
        .unwrap_or_else(|| panic!("no output\n{err}"));
    assert!(
        line.starts_with(&format!("pid={marker} ")),
        "{line} (marker {marker})"
    );
    // The container numbers its processes from 1: the marker is a small pid there.
    assert!(marker < 20, "{marker}");
    assert!(!line.contains(&format!("hostpid={marker} ")), "{line}");
}

#[test]
fn cgroup_and_container_builtins_name_the_runtime_cgroups() {
    require!();
    let Some(cg) = Cgroups::create() else {
        eprintln!("skipped: no writable cgroup2 mount");
        return;
    };
    let id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    // How docker, containerd (kubelet), cri-o and podman name a container's cgroup with the
    // systemd driver, docker's cgroupfs driver (the bare id), and a sub-cgroup inside a
    // container (the id is found one level up). "plain" is no container.
    let dirs = [
        format!("docker-{id}.scope"),
        format!("kubepods.slice/cri-containerd-{id}.scope"),
        format!("crio-{id}.scope"),
        format!("libpod-{id}.scope"),
        format!("docker/{id}"),
        format!("docker-{id}.scope/init.scope"),
        "plain".to_string(),
        format!("x{}", &id[1..]), // 64 characters, but not preceded by '-' nor alone
    ];
    let mut work = String::new();
    for (i, d) in dirs.iter().enumerate() {
        std::fs::create_dir_all(cg.root.join(d)).unwrap();
        work.push_str(&format!(
            "sh -c 'echo $$ > {}/{d}/cgroup.procs && exec cat /nonexistent/MARK_CG{i}' 2>/dev/null\n",
            cg.root.display()
        ));
    }
    let d = "syscall::openat:entry /execname == \"cat\"/ { printf(\"%s cgroup=%s container=[%s] id=%d\\n\", copyinstr(arg1), cgroup, container, cgroupid); }";
    let dir = run_dir("cgroup-builtins");
    let run = drive(&dir, &[], &work, &["-n", d]);
    for (i, d) in dirs.iter().enumerate() {
        let line = run
            .line(&format!("MARK_CG{i} cgroup="))
            .unwrap_or_else(|| panic!("MARK_CG{i} not seen:\n{}\n{}", run.out, run.err));
        let path = format!("/{}/{d}", cg.rel);
        assert!(line.contains(&format!(" cgroup={path} ")), "{line}");
        let want = if i < 6 { &id[..12] } else { "" };
        assert!(line.contains(&format!("container=[{want}]")), "{line}");
        use std::os::unix::fs::MetadataExt;
        let ino = std::fs::metadata(cg.root.join(d)).unwrap().ino();
        assert!(line.ends_with(&format!("id={ino}")), "{line}");
    }
}

#[test]
fn user_stacks_symbolize_with_namespace_pids() {
    require!();
    // ustack() records the pid tracer's /proc knows: in a pid namespace, the namespace's.
    let dir = run_dir("ustack");
    let bin = build_target(&dir, "pid_calls");
    let cmd = format!("{} 2", bin.display());
    let (code, out, err) = {
        let o = Command::new("unshare")
            .args(PIDNS)
            .arg(TRACER)
            .args(["-q", "-c", &cmd, "-n"])
            .arg("pid$target:a.out:work:entry { printf(\"pid=%d hostpid=%d\\n\", pid, hostpid); ustack(); }")
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(0), "{out}\n{err}");
    // tracer is pid 1 of the namespace, its -c target pid 2.
    assert!(out.contains("pid=2 hostpid="), "{out}");
    assert!(out.contains("pid_calls`work"), "{out}");
    if cfg!(target_arch = "aarch64") {
        // At a function's first instruction arm64 has not saved the link register yet, so
        // the frame-pointer walk skips the caller: the next frame is main's own caller.
        assert!(out.contains("libc.so.6`__libc_start"), "{out}");
    } else {
        assert!(out.contains("pid_calls`main+0x"), "{out}");
    }
}

/// `cc -O0 -pthread tests/targets/NAME.c` into `dir`.
fn build_target(dir: &Path, name: &str) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../tests/targets/{name}.c"));
    let bin = dir.join(name);
    let ok = Command::new("cc")
        .args(["-O0", "-g", "-pthread", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .unwrap()
        .success();
    assert!(ok, "cc {}", src.display());
    bin
}

#[test]
fn threads_in_a_namespace_have_their_own_tids() {
    require!();
    // pid and tid are not swapped (bpftrace #4813): each thread's tid is the one gettid()
    // returned inside the namespace, and pid is the process's.
    let dir = run_dir("threads");
    let bin = build_target(&dir, "threads");
    let file = dir.join("tids");
    let cmd = format!("{} 5 {}", bin.display(), file.display());
    // Two threads fire the same program: on kernels that run it preemptibly (7.2), the kernel
    // skips one thread's firings while the other's is preempted on that CPU. tracer reports
    // that, and such a run is repeated; a run without a report must be exact.
    let mut attempt = 0;
    let (out, err) = loop {
        attempt += 1;
        let o = Command::new("unshare")
            .args(PIDNS)
            .arg(TRACER)
            .args(["-q", "-c", &cmd, "-n"])
            .arg("syscall::getppid:entry /pid == $target/ { @[pid, tid] = count(); }")
            .output()
            .unwrap();
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        );
        assert!(o.status.success(), "{out}\n{err}");
        let lossy = crate::kernel_common::reported_loss(&err);
        if !lossy || attempt == 5 {
            break (out, err);
        }
        eprintln!("attempt {attempt} reported lost firings; running again:\n{err}");
    };
    let rows: Vec<Vec<u64>> = out
        .lines()
        .map(|l| {
            l.split_whitespace()
                .filter_map(|w| w.parse().ok())
                .collect()
        })
        .filter(|r: &Vec<u64>| r.len() == 3)
        .collect();
    let truth = std::fs::read_to_string(&file).unwrap();
    for line in truth.lines() {
        let (tid, calls) = line.split_once(' ').unwrap();
        let (tid, calls): (u64, u64) = (tid.parse().unwrap(), calls.parse().unwrap());
        // tracer is pid 1 of the namespace, its -c target pid 2, the threads 3 and 4.
        assert!(
            rows.contains(&vec![2, tid, calls]),
            "no row `2 {tid} {calls}` in:\n{out}\n{err}"
        );
        assert!(tid < 10, "{tid}");
    }
}
