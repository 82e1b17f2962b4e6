//! Safe wrappers over the C library's formatting, so every conversion is rendered by the
//! same `printf(3)` DTrace uses (glibc's rounding of `%e`/`%g`, `%a`, `'` grouping, ...).
//!
//! Each call formats exactly one conversion whose argument type is fixed by [`CArg`]; the
//! format strings are built by this crate, never taken from the user unchecked, so the
//! variadic call always receives the type its conversion expects.

use std::ffi::CString;
use std::os::raw::{c_char, c_int};

/// The one argument of a single-conversion C format.
#[derive(Debug, Clone, Copy)]
pub enum CArg<'a> {
    /// `int` (`%d %i %c %lc` ...).
    Int(i32),
    /// `unsigned int` (`%u %o %x %X`).
    UInt(u32),
    /// `long long` (`%lld` ...).
    LongLong(i64),
    /// `unsigned long long` (`%llu %llx` ...).
    ULongLong(u64),
    /// `double` (`%e %f %g %a` ...).
    Double(f64),
    /// `const char *` (`%s`); cut at the first NUL as C would.
    Str(&'a [u8]),
}

fn call(buf: *mut c_char, n: usize, fmt: &CString, arg: &CArg, s: Option<&CString>) -> c_int {
    // SAFETY: `fmt` is NUL-terminated and holds at most one conversion, whose C type matches
    // the variant passed (the callers build the format from the same variant). `buf` is
    // either null with n == 0 or points to `n` writable bytes.
    unsafe {
        match *arg {
            CArg::Int(v) => libc::snprintf(buf, n, fmt.as_ptr(), v as c_int),
            CArg::UInt(v) => libc::snprintf(buf, n, fmt.as_ptr(), v as libc::c_uint),
            CArg::LongLong(v) => libc::snprintf(buf, n, fmt.as_ptr(), v as libc::c_longlong),
            CArg::ULongLong(v) => libc::snprintf(buf, n, fmt.as_ptr(), v as libc::c_ulonglong),
            CArg::Double(v) => libc::snprintf(buf, n, fmt.as_ptr(), v as libc::c_double),
            CArg::Str(_) => libc::snprintf(buf, n, fmt.as_ptr(), s.expect("string").as_ptr()),
        }
    }
}

/// Format one C conversion (`spec` is a complete format such as `"%-*s"` without `*`, e.g.
/// `"%-20s"` or `"%16lld"`) and append the bytes to `out`.
pub fn cformat(out: &mut Vec<u8>, spec: &str, arg: CArg) {
    let fmt = CString::new(spec).expect("format specs never contain NUL");
    let s = match arg {
        CArg::Str(bytes) => {
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            Some(CString::new(&bytes[..end]).expect("cut at NUL"))
        }
        _ => None,
    };
    let n = call(std::ptr::null_mut(), 0, &fmt, &arg, s.as_ref());
    if n <= 0 {
        return;
    }
    let mut buf = vec![0u8; n as usize + 1];
    call(
        buf.as_mut_ptr() as *mut c_char,
        buf.len(),
        &fmt,
        &arg,
        s.as_ref(),
    );
    buf.truncate(n as usize);
    out.extend_from_slice(&buf);
}

// musl marks time_t deprecated (it will become 64-bit); it is the type localtime_r takes.
#[allow(deprecated)]
fn local_tm(sec: i64) -> libc::tm {
    // SAFETY: localtime_r only writes into the tm we pass; tm is plain old data.
    unsafe {
        let t: libc::time_t = sec as libc::time_t;
        let mut tm: libc::tm = std::mem::zeroed();
        libc::localtime_r(&t, &mut tm);
        tm
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// DTrace's `%Y`: ctime(3) rearranged to `"1973 Dec  3 17:20:00"`, in the local time zone.
pub fn time_y(ns: u64) -> String {
    let tm = local_tm((ns / 1_000_000_000) as i64);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// DTrace's `%T`: RFC 822 time, `strftime("%a, %d %b %G %T %Z")` in the local time zone.
pub fn time_t(ns: u64) -> String {
    let tm = local_tm((ns / 1_000_000_000) as i64);
    let fmt = CString::new("%a, %d %b %G %T %Z").unwrap();
    let mut buf = [0u8; 128];
    // SAFETY: buf is writable for its length, fmt is NUL-terminated, tm is initialised.
    let n = unsafe {
        libc::strftime(
            buf.as_mut_ptr() as *mut c_char,
            buf.len(),
            fmt.as_ptr(),
            &tm,
        )
    };
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cformat_string(spec: &str, arg: CArg) -> String {
        let mut v = Vec::new();
        cformat(&mut v, spec, arg);
        String::from_utf8_lossy(&v).into_owned()
    }

    #[test]
    fn formats_like_c() {
        assert_eq!(
            cformat_string("%16lld", CArg::LongLong(-5)),
            "              -5"
        );
        assert_eq!(cformat_string("%-5s|", CArg::Str(b"ab")), "ab   |");
        assert_eq!(cformat_string("%#8x", CArg::UInt(0x123)), "   0x123");
        assert_eq!(cformat_string("%.2f", CArg::Double(1.005)), "1.00");
        assert_eq!(cformat_string("%s", CArg::Str(b"a\0b")), "a");
        assert_eq!(cformat_string("%c", CArg::Int(97)), "a");
    }

    #[test]
    fn time_formats() {
        let y = time_y(0);
        assert_eq!(y.len(), 20, "{y}");
        assert!(y.starts_with("19"), "{y}");
        assert!(time_t(0).contains("19"));
    }
}
