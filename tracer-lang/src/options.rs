//! `-x name[=value]` and `#pragma D option name[=value]`.

use tracer_common::Options;

/// Parse a size with an optional k/m/g/t suffix.
pub fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let (num, mult) = match v.chars().last()?.to_ascii_lowercase() {
        'k' => (&v[..v.len() - 1], 1u64 << 10),
        'm' => (&v[..v.len() - 1], 1 << 20),
        'g' => (&v[..v.len() - 1], 1 << 30),
        't' => (&v[..v.len() - 1], 1 << 40),
        _ => (v, 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}

/// Parse a time or rate (`10ms`, `1s`, `100hz`, a bare number of ns... DTrace treats a bare
/// rate as per-second) into nanoseconds.
pub fn parse_time_ns(v: &str) -> Option<u64> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "" | "hz" => {
            if n == 0 {
                return None;
            }
            1_000_000_000 / n
        }
        "ns" | "nsec" => n,
        "us" | "usec" => n * 1_000,
        "ms" | "msec" => n * 1_000_000,
        "s" | "sec" => n * 1_000_000_000,
        "m" | "min" => n * 60_000_000_000,
        "h" | "hour" => n * 3_600_000_000_000,
        "d" | "day" => n * 86_400_000_000_000,
        _ => return None,
    })
}

/// Set one option; the error text follows `tracer: failed to set -x NAME: `.
pub fn set_option(o: &mut Options, name: &str, value: Option<&str>) -> Result<(), String> {
    let size = |v: Option<&str>| -> Result<u64, String> {
        v.and_then(parse_size)
            .ok_or_else(|| format!("Invalid value for {name}: expected a size such as 4m"))
    };
    let int = |v: Option<&str>| -> Result<u32, String> {
        v.and_then(|s| s.parse::<u32>().ok())
            .ok_or_else(|| format!("Invalid value for {name}: expected an integer"))
    };
    let time = |v: Option<&str>| -> Result<u64, String> {
        v.and_then(parse_time_ns).ok_or_else(|| {
            format!("Invalid value for {name}: expected a time such as 10ms or a rate such as 10hz")
        })
    };
    let flag = |v: Option<&str>| -> Result<bool, String> {
        match v {
            None | Some("") => Ok(true),
            Some(_) => Err(format!("option {name} does not take a value")),
        }
    };
    match name {
        "quiet" | "q" => o.quiet = flag(value)?,
        "bufsize" | "b" => o.bufsize = size(value)?,
        "aggsize" => o.aggsize = size(value)?,
        "strsize" => {
            let s = size(value)? as u32;
            if !(8..=8192).contains(&s) {
                return Err("strsize must be between 8 and 8192".into());
            }
            o.strsize = s.div_ceil(8) * 8;
        }
        "dynvarsize" => o.dynvarsize = size(value)?,
        "nspec" => o.nspec = int(value)?.clamp(1, 64),
        "specsize" => o.specsize = size(value)?,
        "switchrate" => o.switchrate_ns = time(value)?,
        "aggrate" => o.aggrate_ns = time(value)?,
        "aggsortkey" => o.aggsortkey = flag(value)?,
        "aggsortrev" => o.aggsortrev = flag(value)?,
        "aggsortpos" => o.aggsortpos = int(value)?,
        "aggsortkeypos" => o.aggsortkeypos = int(value)?,
        "destructive" | "w" => o.destructive = flag(value)?,
        "stackframes" => o.stackframes = int(value)?.clamp(1, 127),
        "ustackframes" => o.ustackframes = int(value)?.clamp(1, 127),
        "flowindent" => o.flowindent = flag(value)?,
        "fbtmethod" => match value {
            Some(m @ ("auto" | "kprobe" | "fentry")) => o.fbtmethod = m.into(),
            _ => return Err("Invalid value for fbtmethod: expected auto, kprobe or fentry".into()),
        },
        "zdefs" => o.zdefs = flag(value)?,
        "pidreturn" => match value {
            Some(m @ ("auto" | "ret" | "uretprobe")) => o.pidreturn = m.into(),
            _ => return Err("Invalid value for pidreturn: expected auto, ret or uretprobe".into()),
        },
        "statusrate" | "cleanrate" | "bufpolicy" | "bufresize" | "rawbytes" | "stackindent"
        | "defaultargs" | "errtags" | "droptags" | "verbose" | "timing" => {}
        _ => return Err(format!("Invalid option name: {name}")),
    }
    Ok(())
}
