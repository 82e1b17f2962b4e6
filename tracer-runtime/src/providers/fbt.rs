//! The fbt provider: `fbt:MODULE:FUNC:entry|return` on kernel functions, and bpftrace's
//! `kprobe:f`, `kretprobe:f`, `fentry:f`, `fexit:f`.
//!
//! Each function attaches through fentry/fexit when the kernel has BPF trampolines and BTF
//! describes the function (cheapest, and `args[]` comes typed in the context), and through
//! kprobe/kretprobe otherwise. Whether trampolines work is asked of the kernel once, by
//! loading and attaching an empty fentry program: arm64 before 6.0 has no direct calls and
//! answers ENOTSUPP there, and some kernels refuse fentry outright.

use super::{glob_match, Pattern};
use std::os::fd::{FromRawFd, OwnedFd};
use tracer_common::{Attach, ProbeDesc};
use tracer_lang::btf::{Btf, KernelTypes};
use tracer_lang::probes::{ArgSource, ResolvedProbe, Sharing};

/// More probes than this in one description is refused when each needs its own program
/// (kernels without kprobe_multi).
const MAX_PROBES: usize = 2000;

/// How this kernel lets fbt attach.
#[derive(Debug, Clone, PartialEq)]
pub enum Method {
    Fentry,
    Kprobe,
    /// Neither works; the reason says why.
    None(String),
}

/// Kernel functions and how to reach them, found on first use.
#[derive(Default)]
pub struct Fbt {
    /// (function, module) from /proc/kallsyms, sorted and deduplicated.
    symbols: Option<Vec<(String, String)>>,
    fentry: Option<Result<(), String>>,
    multi: Option<bool>,
    /// Notices for the user (functions skipped), taken by the resolver.
    pub notices: Vec<String>,
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// `/proc/kallsyms` text symbols that can be probed, as (name, module).
fn kallsyms() -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string("/proc/kallsyms")
        .map_err(|e| format!("cannot read /proc/kallsyms: {e}"))?;
    let mut out: Vec<(String, String)> = text
        .lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let _addr = f.next()?;
            let kind = f.next()?;
            let name = f.next()?;
            if !matches!(kind, "t" | "T") || skipped(name) {
                return None;
            }
            let module = f
                .next()
                .map(|m| m.trim_matches(['[', ']']).to_string())
                .unwrap_or_else(|| "vmlinux".into());
            Some((name.to_string(), module))
        })
        .collect();
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    Ok(out)
}

/// The functions ftrace can attach to (`available_filter_functions`), by name.
fn traceable_functions() -> Result<std::collections::HashSet<String>, String> {
    let root = super::tracefs::root()?;
    let text = std::fs::read_to_string(root.join("available_filter_functions"))
        .map_err(|e| format!("cannot read available_filter_functions: {e}"))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// Symbols that are never function entries one can probe: padding, CFI stubs, BPF
/// trampolines' own code, and compiler-split parts.
fn skipped(name: &str) -> bool {
    name.starts_with("__pfx_")
        || name.starts_with("__cfi_")
        || name.starts_with("__kcfi_")
        || name.starts_with("__bpf_trace_")
        || name.starts_with("bpf_trampoline_")
        || name.ends_with(".cold")
        || name.contains(".cold.")
}

/// Whether the kernel has kprobes: the kprobe PMU exists (4.17+), or tracefs lists kprobes.
pub fn kprobes_available() -> bool {
    std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists()
}

impl Fbt {
    fn symbols(&mut self) -> Result<&[(String, String)], String> {
        if self.symbols.is_none() {
            self.symbols = Some(kallsyms()?);
        }
        Ok(self.symbols.as_deref().unwrap())
    }

    /// Whether fentry works on this kernel, tried once on `func` (a BTF id).
    fn fentry_works(&mut self, func_id: u32) -> Result<(), String> {
        self.fentry
            .get_or_insert_with(|| try_fentry(func_id))
            .clone()
    }

    /// The method a run uses: `choice` is the fbtmethod option (auto, kprobe or fentry).
    pub fn method(&mut self, choice: &str, btf: Option<&Btf>, probe_func: &str) -> Method {
        const NO_KPROBES: &str = "this kernel has no kprobes (CONFIG_KPROBES is not set)";
        let kprobe = kprobes_available();
        if choice == "kprobe" {
            return if kprobe {
                Method::Kprobe
            } else {
                Method::None(NO_KPROBES.into())
            };
        }
        let fentry = btf
            .ok_or_else(|| "the kernel has no BTF (/sys/kernel/btf/vmlinux)".to_string())
            // A function every kernel has and allows tracing, so the answer is the kernel's.
            .and_then(|b| {
                b.func_id("vfs_read")
                    .or_else(|| b.func_id(probe_func))
                    .ok_or_else(|| "BTF describes no kernel function to try fentry on".into())
            })
            .and_then(|id| self.fentry_works(id));
        match fentry {
            Ok(()) => Method::Fentry,
            Err(e) if choice == "fentry" => Method::None(format!("fentry does not work here: {e}")),
            Err(_) if kprobe => Method::Kprobe,
            Err(e) => Method::None(format!("{NO_KPROBES} and fentry does not work ({e})")),
        }
    }

    /// `fbt:MODULE:FUNC:NAME` descriptions.
    pub fn resolve(
        &mut self,
        p: &Pattern,
        kernel: &KernelTypes,
        choice: &str,
    ) -> Result<Vec<ResolvedProbe>, String> {
        let kinds: Vec<bool> = [false, true]
            .into_iter()
            .filter(|ret| {
                p.name.is_empty() || glob_match(&p.name, if *ret { "return" } else { "entry" })
            })
            .collect();
        if kinds.is_empty() {
            return Ok(Vec::new());
        }
        let btf = kernel.get();
        let exact = !p.function.is_empty() && !has_glob(&p.function) && !has_glob(&p.module);
        // An exact name BTF knows needs no kallsyms scan (tens of milliseconds).
        let funcs: Vec<(String, String)> = match btf.filter(|_| exact) {
            Some(b)
                if b.func_id(&p.function).is_some()
                    && matches!(p.module.as_str(), "" | "vmlinux") =>
            {
                vec![(p.function.clone(), "vmlinux".into())]
            }
            _ => self
                .symbols()?
                .iter()
                .filter(|(f, m)| {
                    (p.function.is_empty() || glob_match(&p.function, f))
                        && (p.module.is_empty() || glob_match(&p.module, m))
                })
                .cloned()
                .collect(),
        };
        if funcs.is_empty() {
            return Ok(Vec::new());
        }
        // A glob over many functions attaches them all with one kprobe_multi program where
        // the kernel has it: one load and one link instead of one of each per function.
        // (The kernel is asked whether kprobe_multi works only for a glob that large.)
        let multi =
            funcs.len() >= Sharing::KPROBE_MULTI_MIN && choice != "fentry" && self.multi_works();
        if Sharing::kprobe_multi(funcs.len(), multi) == Sharing::KprobeMulti {
            return self.resolve_multi(p, funcs, &kinds);
        }
        let count = funcs.len() * kinds.len();
        if count > MAX_PROBES {
            return Err(format!(
                "{} matches {count} fbt probes; at most {MAX_PROBES} are supported for now (narrow the function glob)",
                p.function
            ));
        }
        let method = self.method(choice, btf, &funcs[0].0);
        if let Method::None(reason) = &method {
            return Err(format!("fbt probes cannot attach: {reason}"));
        }
        let mut out = Vec::with_capacity(count);
        for (func, module) in funcs {
            // Module functions are not in vmlinux's BTF: kprobes, untyped.
            let sig = btf
                .filter(|_| module == "vmlinux")
                .and_then(|b| b.func(&func));
            // Trampolines take scalar and pointer arguments only, at most six on every
            // kernel tracer supports: other functions go through kprobes when there are any.
            let trampoline_ok = sig.as_ref().is_some_and(|s| {
                s.params.len() <= 6
                    && !s.ret.is_aggregate()
                    && s.params.iter().all(|(_, t)| !t.is_aggregate())
            });
            let fentry = method == Method::Fentry && (trampoline_ok || !kprobes_available());
            for ret in &kinds {
                let desc = ProbeDesc {
                    id: 0,
                    provider: "fbt".into(),
                    module: module.clone(),
                    function: func.clone(),
                    name: if *ret {
                        "return".into()
                    } else {
                        "entry".into()
                    },
                };
                let attach = if fentry {
                    Attach::Fentry {
                        function: func.clone(),
                        ret: *ret,
                    }
                } else {
                    Attach::Kprobe {
                        function: func.clone(),
                        offset: 0,
                        ret: *ret,
                    }
                };
                let args = match &sig {
                    Some(s) => ArgSource::Fbt {
                        params: s.params.clone(),
                        ret_type: s.ret.clone(),
                        ret: *ret,
                        fentry,
                    },
                    None => ArgSource::PtRegs { ret: *ret },
                };
                out.push(ResolvedProbe {
                    desc,
                    attach,
                    args,
                    sites: Vec::new(),
                });
            }
        }
        Ok(out)
    }

    /// Whether kprobe_multi links work here (5.18+ with fprobe), asked once.
    fn multi_works(&mut self) -> bool {
        *self.multi.get_or_insert_with(|| {
            kprobes_available() && crate::kprobe_multi::works("vfs_read").is_ok()
        })
    }

    /// One probe per kind standing for every function: a kprobe_multi program whose attach
    /// cookie names the function that fired. Functions ftrace cannot trace would fail the
    /// whole link, so they are left out and counted.
    fn resolve_multi(
        &mut self,
        p: &Pattern,
        funcs: Vec<(String, String)>,
        kinds: &[bool],
    ) -> Result<Vec<ResolvedProbe>, String> {
        let traceable = traceable_functions()?;
        let total = funcs.len();
        let (ok, skipped): (Vec<_>, Vec<_>) =
            funcs.into_iter().partition(|(f, _)| traceable.contains(f));
        if !skipped.is_empty() {
            self.notices.push(format!(
                "{} of the {total} functions fbt:{}:{}: matches cannot be traced and were skipped (first: {})",
                skipped.len(),
                p.module,
                p.function,
                skipped[0].0
            ));
        }
        if ok.is_empty() {
            return Ok(Vec::new());
        }
        let module = if ok.iter().all(|(_, m)| *m == ok[0].1) {
            ok[0].1.clone()
        } else {
            String::new()
        };
        let functions: Vec<String> = ok.iter().map(|(f, _)| f.clone()).collect();
        let kind = |ret: bool| if ret { "return" } else { "entry" };
        Ok(kinds
            .iter()
            .map(|ret| ResolvedProbe {
                desc: ProbeDesc {
                    id: 0,
                    provider: "fbt".into(),
                    module: module.clone(),
                    function: String::new(),
                    name: if *ret {
                        "return".into()
                    } else {
                        "entry".into()
                    },
                },
                attach: Attach::KprobeMulti {
                    functions: functions.clone(),
                    ret: *ret,
                },
                args: ArgSource::PtRegs { ret: *ret },
                // Function `i`'s own probe, whose ID the resolver gives as `-l` does.
                sites: ok
                    .iter()
                    .map(|(f, m)| ProbeDesc {
                        id: 0,
                        provider: "fbt".into(),
                        module: m.clone(),
                        function: f.clone(),
                        name: kind(*ret).into(),
                    })
                    .collect(),
            })
            .collect())
    }

    /// The stable probe ID of `function`'s entry or return probe: fbt IDs start at
    /// `FIRST_ID`, two per function in symbol order, clear of the IDs given out one by one.
    pub fn id(&mut self, function: &str, ret: bool) -> Option<u32> {
        const FIRST_ID: u32 = 100_000;
        let syms = self.symbols().ok()?;
        let i = syms
            .binary_search_by(|(f, _)| f.as_str().cmp(function))
            .ok()?;
        Some(FIRST_ID + 2 * i as u32 + ret as u32)
    }

    /// Every fbt probe, for `-l`.
    pub fn list(&mut self) -> Result<Vec<ProbeDesc>, String> {
        let mut out = Vec::new();
        for (func, module) in self.symbols()? {
            for name in ["entry", "return"] {
                out.push(ProbeDesc {
                    id: 0,
                    provider: "fbt".into(),
                    module: module.clone(),
                    function: func.clone(),
                    name: name.into(),
                });
            }
        }
        Ok(out)
    }
}

/// Load an empty fentry program for BTF function `func_id` and attach it, then let go.
fn try_fentry(func_id: u32) -> Result<(), String> {
    const BPF_PROG_LOAD: libc::c_long = 5;
    const BPF_RAW_TRACEPOINT_OPEN: libc::c_long = 17;
    const BPF_PROG_TYPE_TRACING: u32 = 26;
    const BPF_TRACE_FENTRY: u32 = 24;
    // r0 = 0; exit
    let insns: [u64; 2] = [0x0000_0000_0000_00b7, 0x0000_0000_0000_0095];
    let license = c"GPL";
    let mut attr = [0u8; 128];
    let put32 =
        |a: &mut [u8; 128], off: usize, v: u32| a[off..off + 4].copy_from_slice(&v.to_ne_bytes());
    let put64 =
        |a: &mut [u8; 128], off: usize, v: u64| a[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    // union bpf_attr, BPF_PROG_LOAD layout (include/uapi/linux/bpf.h).
    put32(&mut attr, 0, BPF_PROG_TYPE_TRACING);
    put32(&mut attr, 4, insns.len() as u32);
    put64(&mut attr, 8, insns.as_ptr() as u64);
    put64(&mut attr, 16, license.as_ptr() as u64);
    put32(&mut attr, 68, BPF_TRACE_FENTRY); // expected_attach_type
    put32(&mut attr, 108, func_id); // attach_btf_id
                                    // SAFETY: attr is a valid bpf_attr for BPF_PROG_LOAD; the pointers outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            attr.as_ptr(),
            attr.len() as u32,
        )
    };
    if fd < 0 {
        return Err(format!(
            "loading an fentry program: {}",
            std::io::Error::last_os_error()
        ));
    }
    // SAFETY: the kernel returned a new file descriptor we own.
    let prog = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    let mut open = [0u8; 16];
    open[8..12].copy_from_slice(&(fd as u32).to_ne_bytes());
    // SAFETY: a valid bpf_attr for BPF_RAW_TRACEPOINT_OPEN (name = NULL, prog_fd).
    let link = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_RAW_TRACEPOINT_OPEN,
            open.as_ptr(),
            open.len() as u32,
        )
    };
    drop(prog);
    if link < 0 {
        let e = std::io::Error::last_os_error();
        let why = if e.raw_os_error() == Some(524) {
            "the kernel has no BPF trampolines for this architecture (ENOTSUPP)".to_string()
        } else {
            e.to_string()
        };
        return Err(format!("attaching an fentry program: {why}"));
    }
    // SAFETY: the link fd is ours; closing it detaches the test program.
    drop(unsafe { OwnedFd::from_raw_fd(link as i32) });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kallsyms_lists_kernel_functions_without_padding_symbols() {
        let syms = kallsyms().unwrap();
        assert!(syms.iter().any(|(f, m)| f == "vfs_read" && m == "vmlinux"));
        assert!(!syms.iter().any(|(f, _)| f.starts_with("__pfx_")));
        // Sorted and unique: resolution and -l rely on it.
        assert!(syms.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn method_follows_what_the_kernel_supports() {
        let kernel = KernelTypes::system();
        let mut fbt = Fbt::default();
        let auto = fbt.method("auto", kernel.get(), "vfs_read");
        let fentry_ok = try_fentry(kernel.get().unwrap().func_id("vfs_read").unwrap()).is_ok();
        match auto {
            Method::Fentry => assert!(fentry_ok),
            Method::Kprobe => assert!(!fentry_ok && kprobes_available()),
            Method::None(reason) => {
                assert!(!fentry_ok && !kprobes_available());
                assert!(reason.contains("no kprobes"), "{reason}");
            }
        }
        if !kprobes_available() {
            assert!(
                matches!(fbt.method("kprobe", kernel.get(), "vfs_read"), Method::None(r) if r.contains("CONFIG_KPROBES"))
            );
        }
    }
}
