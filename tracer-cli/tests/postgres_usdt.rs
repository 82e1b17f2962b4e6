//! PostgreSQL 15's USDT probes as a real target: a server started by the test (initdb into
//! a temporary directory, a unix socket only), traced on query-start/query-done by provider
//! glob (the backends are forked after tracer attaches, so the probes are attached by path)
//! while psql runs known queries.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = "/usr/lib/postgresql/15/bin";
const PORT: &str = "54329";

fn as_postgres(args: &[&str]) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"]).args(args);
    c
}

/// A server in `dir`, stopped when dropped.
struct Server {
    dir: PathBuf,
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = as_postgres(&[
            &format!("{BIN}/pg_ctl"),
            "-D",
            data.to_str().unwrap(),
            "-m",
            "immediate",
            "stop",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_server() -> Result<Server, String> {
    if !Path::new(BIN).join("postgres").exists() {
        return Err(format!("{BIN}/postgres is not installed"));
    }
    let ok = |c: &mut Command| {
        c.stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ok(Command::new("id").arg("postgres")) {
        return Err("there is no postgres user to run the server as".into());
    }
    let dir = std::env::temp_dir().join(format!("tracer-pg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    if !ok(Command::new("chown").arg("postgres").arg(&dir)) {
        return Err(format!("cannot give {} to postgres", dir.display()));
    }
    let data = dir.join("data");
    let d = dir.to_str().unwrap();
    if !ok(&mut as_postgres(&[
        &format!("{BIN}/initdb"),
        "-D",
        data.to_str().unwrap(),
        "-A",
        "trust",
        "-U",
        "postgres",
    ])) {
        return Err("initdb failed".into());
    }
    let child = as_postgres(&[
        &format!("{BIN}/postgres"),
        "-D",
        data.to_str().unwrap(),
        "-k",
        d,
        "-p",
        PORT,
        "-c",
        "listen_addresses=",
    ])
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .map_err(|e| e.to_string())?;
    let server = Server {
        dir: dir.clone(),
        child,
    };
    for _ in 0..100 {
        if ok(&mut as_postgres(&[
            &format!("{BIN}/pg_isready"),
            "-h",
            d,
            "-p",
            PORT,
        ])) {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err("the server did not start".into())
}

#[test]
fn query_start_and_done_for_known_queries() {
    let server = match start_server() {
        Ok(s) => s,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let mut tracer = Command::new(env!("CARGO_BIN_EXE_tracer"))
        .args([
            "-q",
            "-n",
            r#"BEGIN { printf("ready\n"); }
               postgresql*:::query-start { self->ts = timestamp; printf("start [%s]\n", copyinstr(arg0)); }
               postgresql*:::query-done /self->ts/ { printf("done [%s] %d\n", copyinstr(arg0), timestamp > self->ts); self->ts = 0; }"#,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = tracer.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(60));
    assert_eq!(ready.as_deref(), Ok("ready"), "tracer did not start");
    let queries = [
        "select 41+1",
        "select 'tracer-test'",
        "select count(*) from pg_class where relname = 'pg_class'",
    ];
    let answers = ["42", "tracer-test", "1"];
    let d = server.dir.to_str().unwrap().to_string();
    for (q, a) in queries.iter().zip(answers) {
        let out = as_postgres(&[&format!("{BIN}/psql"), "-h", &d, "-p", PORT, "-Atc", q])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), a, "{q}");
    }
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: kill(2) on the tracer child this test started.
    unsafe { libc::kill(tracer.id() as i32, libc::SIGINT) };
    let status = tracer.wait().unwrap();
    let mut lines = Vec::new();
    while let Ok(l) = rx.recv_timeout(Duration::from_secs(5)) {
        lines.push(l);
    }
    let mut err = String::new();
    std::io::Read::read_to_string(&mut tracer.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "{err}");
    for q in queries {
        let start = format!("start [{q}]");
        let done = format!("done [{q}] 1");
        assert_eq!(
            lines.iter().filter(|l| **l == start).count(),
            1,
            "{q}: {lines:?}"
        );
        assert_eq!(
            lines.iter().filter(|l| **l == done).count(),
            1,
            "{q}: {lines:?}"
        );
    }
}
