//! Finding (and, as root, mounting) tracefs, and reading tracepoint formats.

use std::path::{Path, PathBuf};
use tracer_lang::probes::TpField;
use tracer_lang::types::Type;

/// The tracefs root, mounting it at /sys/kernel/tracing when it is missing and we may.
pub fn root() -> Result<PathBuf, String> {
    for p in ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"] {
        if Path::new(p).join("events").is_dir() {
            return Ok(PathBuf::from(p));
        }
    }
    let target = c"/sys/kernel/tracing";
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 && Path::new("/sys/kernel/tracing/events").is_dir() {
        return Ok(PathBuf::from("/sys/kernel/tracing"));
    }
    let err = std::io::Error::last_os_error();
    Err(format!(
        "tracefs is not mounted and mounting it failed ({err}); run as root or mount it: mount -t tracefs nodev /sys/kernel/tracing"
    ))
}

/// Fields of `events/<category>/<name>/format`, without the `common_` ones.
pub fn format(category: &str, name: &str) -> Result<Vec<TpField>, String> {
    let path = root()?
        .join("events")
        .join(category)
        .join(name)
        .join("format");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    Ok(parse_format(&text))
}

pub fn parse_format(text: &str) -> Vec<TpField> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let Some(rest) = line.strip_prefix("field:") else {
            continue;
        };
        let parts: Vec<&str> = rest.split(';').map(str::trim).collect();
        if parts.len() < 4 {
            continue;
        }
        let decl = parts[0];
        let get = |key: &str| {
            parts
                .iter()
                .find_map(|p| p.strip_prefix(key))
                .and_then(|v| v.trim().parse::<u32>().ok())
        };
        let (Some(offset), Some(size)) = (get("offset:"), get("size:")) else {
            continue;
        };
        let signed = get("signed:").unwrap_or(0) == 1;
        let (ty_text, name) = match decl.rfind([' ', '*']) {
            Some(i) => (decl[..=i].trim(), decl[i + 1..].trim()),
            None => continue,
        };
        if name.starts_with("common_") {
            continue;
        }
        let (name, array) = match name.find('[') {
            Some(i) => (&name[..i], true),
            None => (name, false),
        };
        let data_loc = ty_text.starts_with("__data_loc");
        let char_array = array && (ty_text.starts_with("char") || ty_text.contains(" char"));
        let ty = if (data_loc && ty_text.contains("char")) || char_array {
            Type::Str
        } else if ty_text.contains('*') {
            let base = ty_text.trim_end_matches('*').trim();
            let pointee = Type::from_name(base, 0).unwrap_or(Type::Void);
            Type::Ptr(Box::new(pointee))
        } else if let Some(t) = Type::from_name(ty_text, 0).filter(|t| !array && t.is_int()) {
            // The declared C type (syscall arguments are stored widened to 8 bytes).
            t
        } else if size <= 8 && !array {
            Type::Int {
                size: size as u8,
                signed,
            }
        } else {
            Type::Ptr(Box::new(Type::Void))
        };
        out.push(TpField {
            name: name.to_string(),
            offset,
            size,
            ty,
            data_loc,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sched_switch() {
        let text = "name: sched_switch\nformat:\n\tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;\n\n\tfield:char prev_comm[16];\toffset:8;\tsize:16;\tsigned:0;\n\tfield:pid_t prev_pid;\toffset:24;\tsize:4;\tsigned:1;\n\tfield:const char * filename;\toffset:24;\tsize:8;\tsigned:0;\n";
        let f = parse_format(text);
        assert_eq!(f.len(), 3);
        assert_eq!(
            (f[0].name.as_str(), f[0].offset, f[0].ty.clone()),
            ("prev_comm", 8, Type::Str)
        );
        assert_eq!(
            (f[1].name.as_str(), f[1].ty.clone()),
            ("prev_pid", Type::INT)
        );
        assert_eq!(f[2].name, "filename");
        assert!(matches!(f[2].ty, Type::Ptr(_)));
    }
}
