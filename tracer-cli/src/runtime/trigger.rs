//! BEGIN and END fire through uprobes on tracer's own trigger functions, as bpftrace does:
//! the probe's program is attached as a uprobe on the function's first instruction in
//! `/proc/self/exe`, scoped to this process, and calling the function fires it.
//!
//! The file offset comes from `/proc/self/maps` (runtime address − mapping start + mapping
//! file offset), so it works on stripped release binaries too.

use std::io;

/// Which trigger function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    Begin,
    End,
}

impl Trigger {
    /// `Attach::Trigger { symbol }` → trigger. ERROR is not a trigger: generated code runs the
    /// ERROR clauses itself.
    pub fn from_symbol(symbol: &str) -> Result<Trigger, String> {
        match symbol {
            "BEGIN" => Ok(Trigger::Begin),
            "END" => Ok(Trigger::End),
            "ERROR" => Err("the ERROR probe is fired by generated code, not by a trigger".into()),
            other => Err(format!("unknown trigger `{other}`")),
        }
    }

    fn function(self) -> extern "C" fn() {
        match self {
            Trigger::Begin => tracer_begin_trigger,
            Trigger::End => tracer_end_trigger,
        }
    }

    /// Run the trigger function (and so every program attached to it, synchronously).
    pub fn fire(self) {
        (self.function())()
    }

    /// Offset of the trigger function's first instruction in the executable file.
    pub fn file_offset(self) -> io::Result<u64> {
        let addr = self.function() as usize as u64;
        let maps = std::fs::read_to_string("/proc/self/maps")?;
        file_offset_in_maps(&maps, addr).ok_or_else(|| {
            io::Error::other(format!(
                "trigger address {addr:#x} is in no mapping of /proc/self/maps"
            ))
        })
    }
}

/// `addr - start + offset` for the `/proc/PID/maps` line whose range holds `addr`.
fn file_offset_in_maps(maps: &str, addr: u64) -> Option<u64> {
    maps.lines().find_map(|line| {
        let mut it = line.split_whitespace();
        let (start, end) = it.next()?.split_once('-')?;
        let (start, end) = (
            u64::from_str_radix(start, 16).ok()?,
            u64::from_str_radix(end, 16).ok()?,
        );
        let _perms = it.next()?;
        let offset = u64::from_str_radix(it.next()?, 16).ok()?;
        (start..end).contains(&addr).then(|| addr - start + offset)
    })
}

/// BEGIN's trigger. The body differs from END's so the two are never merged into one symbol.
#[no_mangle]
#[inline(never)]
pub extern "C" fn tracer_begin_trigger() {
    std::hint::black_box(0xbe61_u32);
    // SAFETY: an empty asm block; it only keeps the call from being optimized away.
    unsafe { core::arch::asm!("", options(nomem, nostack, preserves_flags)) };
}

/// END's trigger.
#[no_mangle]
#[inline(never)]
pub extern "C" fn tracer_end_trigger() {
    std::hint::black_box(0xe4d_u32);
    // SAFETY: as above.
    unsafe { core::arch::asm!("", options(nomem, nostack, preserves_flags)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_from_maps() {
        let maps = "55d0c0000000-55d0c0010000 r--p 00000000 fd:01 42 /bin/x\n\
                    55d0c0010000-55d0c0080000 r-xp 00010000 fd:01 42 /bin/x\n";
        assert_eq!(file_offset_in_maps(maps, 0x55d0c0012345), Some(0x12345));
        assert_eq!(file_offset_in_maps(maps, 0x1000), None);
        let b = Trigger::Begin.file_offset().unwrap();
        let e = Trigger::End.file_offset().unwrap();
        assert_ne!(b, e);
        assert!(Trigger::from_symbol("ERROR").is_err());
        assert!(Trigger::from_symbol("FOO").is_err());
    }
}
