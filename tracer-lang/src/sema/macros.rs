//! Macro variables (`$target`, `$pid`, `$1`, …): the text each stands for. As a number it is
//! read by `literals::parse_int`; `$$1` is the text as a string.

/// The text of a macro variable (`target`, `pid`, `1`, …).
pub fn macro_value(name: &str, target: Option<u32>, args: &[String]) -> Result<String, String> {
    match name {
        "target" => target.map(|t| t.to_string()).ok_or_else(|| {
            "$target is used, but no target process was given: add -c 'command' or -p PID"
                .to_string()
        }),
        "pid" => Ok(std::process::id().to_string()),
        "ppid" => Ok(std::os::unix::process::parent_id().to_string()),
        "uid" => Ok(unsafe { libc_getuid() }.to_string()),
        "gid" => Ok(unsafe { libc_getgid() }.to_string()),
        n if n.chars().all(|c| c.is_ascii_digit()) => {
            let i: usize = n.parse().map_err(|_| format!("bad macro argument ${n}"))?;
            args.get(i).cloned().ok_or_else(|| {
                format!("macro argument ${i} is not defined (pass it after the script)")
            })
        }
        other => Err(format!("unknown macro variable ${other}")),
    }
}

extern "C" {
    #[link_name = "getuid"]
    fn libc_getuid() -> u32;
    #[link_name = "getgid"]
    fn libc_getgid() -> u32;
}
