//! Built-in variables (`pid`, `execname`, `arg0`, …): their values. Their types are in
//! `sema::signatures`.

use super::{CompileError, Lower, Result};
use crate::lower::expr::Val;
use crate::probes::ArgSource;
use crate::syntax::ast::Span;
use tracer_ebpf::insn::{helper, AluOp, JmpOp, Size};
use tracer_ebpf::ir::{Inst, Operand};

impl<'g, 'a> Lower<'g, 'a> {
    pub(crate) fn builtin(&mut self, name: &str, span: Span) -> Result<Val> {
        let ty = crate::sema::signatures::variable(name).ok_or_else(|| {
            CompileError::new(
                span,
                format!("failed to resolve {name}: Unknown variable name"),
            )
        })?;
        if let Some(v) = self.stable_thread(name, &ty, span) {
            return v;
        }
        let int = |v| Val::Int(v, ty.clone());
        Ok(match name {
            "pid" | "tid" | "ppid" if self.scoped_pid_applies() => {
                let v = self.scoped_pid(name).expect("pid-namespace scope");
                int(v)
            }
            "pid" | "tid" | "hostpid" | "hosttid" => {
                let v = self.f.call(helper::GET_CURRENT_PID_TGID, vec![]);
                let r = if name == "pid" || name == "hostpid" {
                    self.f.alu(AluOp::Rsh, v, Operand::Imm(32))
                } else {
                    self.f.alu(AluOp::And, v, Operand::Imm(0xffff_ffff))
                };
                int(r)
            }
            "uid" | "gid" => {
                let v = self.f.call(helper::GET_CURRENT_UID_GID, vec![]);
                let r = if name == "gid" {
                    self.f.alu(AluOp::Rsh, v, Operand::Imm(32))
                } else {
                    self.f.alu(AluOp::And, v, Operand::Imm(0xffff_ffff))
                };
                int(r)
            }
            "ppid" => {
                let v = self.read_task_parent_tgid(span)?;
                int(v)
            }
            "cpu" => int(self.f.call(helper::GET_SMP_PROCESSOR_ID, vec![])),
            "cgroupid" => int(self.f.call(helper::GET_CURRENT_CGROUP_ID, vec![])),
            "pidns" => {
                let offs = match self.g.input.scope {
                    super::Scope::PidNs { offsets, .. } => Some(offsets),
                    _ => (self.g.input.ns_offsets)().map(|o| o.pid),
                };
                let offs = offs.ok_or_else(|| {
                    CompileError::new(span, "pidns needs kernel BTF (/sys/kernel/btf/vmlinux) to find struct pid offsets")
                })?;
                int(self.own_pidns(offs))
            }
            "cgroup" | "container" => {
                let offs = (self.g.input.ns_offsets)().ok_or_else(|| {
                    CompileError::new(span, format!("{name} needs kernel BTF (/sys/kernel/btf/vmlinux) to find struct cgroup offsets"))
                })?;
                Val::Str(if name == "cgroup" {
                    self.cgroup_path(offs.cgroup)
                } else {
                    self.container_id(offs.cgroup)
                })
            }
            "timestamp" => int(self.f.call(helper::KTIME_GET_NS, vec![])),
            "vtimestamp" => {
                let v = self.read_task_field(span, |o| o.sum_exec_runtime, 8)?;
                int(v)
            }
            "walltimestamp" => {
                let t = self.f.call(helper::KTIME_GET_NS, vec![]);
                int(self
                    .f
                    .alu(AluOp::Add, t, Operand::Imm(self.g.input.boot_to_wall_ns)))
            }
            "curthread" => int(self.f.call(helper::GET_CURRENT_TASK, vec![])),
            "epid" => int(self.f.imm(self.epid as i64 + 1)),
            "id" if self.shared_sites() => int(self.site_id()),
            "id" => int(self.f.imm(self.probe.desc.id as i64)),
            "execname" => {
                let off = self.temp(self.g.opts.strsize);
                let buf = self.scratch_ptr(off);
                self.f.push(Inst::MemZero { dst: buf, len: 16 });
                self.f
                    .call(helper::GET_CURRENT_COMM, vec![buf.into(), Operand::Imm(16)]);
                Val::Str(buf)
            }
            "probeprov" => self.string_literal(&self.probe.desc.provider.clone()),
            "probemod" => self.string_literal(&self.probe.desc.module.clone()),
            "probename" => self.string_literal(&self.probe.desc.name.clone()),
            "probefunc" => {
                if self.shared_sites() {
                    Val::Str(self.site_func())
                } else {
                    self.string_literal(&self.probe.desc.function.clone())
                }
            }
            "errno" => {
                let ret = match self.probe.args {
                    ArgSource::SyscallReturn | ArgSource::RawSyscallReturn => {
                        Some(self.f.load(tracer_ebpf::ir::Function::CTX, 16, Size::DW))
                    }
                    _ => None,
                };
                match ret {
                    Some(r) => {
                        // errno = -ret for an error return (-4095..-1), else 0
                        let out = self.f.imm(0);
                        let done = self.f.label();
                        self.f.branch(JmpOp::Jsge, r, Operand::Imm(0), done);
                        self.f.branch(JmpOp::Jslt, r, Operand::Imm(-4095), done);
                        self.f.push(Inst::Neg { dst: out, a: r });
                        self.f.push(Inst::Label(done));
                        int(out)
                    }
                    None => int(self.f.imm(0)),
                }
            }
            a if a.starts_with("arg") => {
                let i: u32 = a[3..].parse().unwrap_or(0);
                self.check_arg(i, span)?;
                int(self.arg(i))
            }
            _ => {
                return Err(CompileError::new(
                    span,
                    format!("{name} is not supported yet"),
                ))
            }
        })
    }

    fn scoped_pid_applies(&self) -> bool {
        matches!(self.g.input.scope, super::Scope::PidNs { .. })
    }

    /// `argN` for the current probe (0 when the probe has no such argument).
    pub(crate) fn arg(&mut self, i: u32) -> tracer_ebpf::ir::VReg {
        use tracer_ebpf::ir::Function;
        if let Some(r) = self.stable_arg_reg(i) {
            return r;
        }
        match &self.probe.args {
            ArgSource::SyscallEntry { args } if (i as usize) < args.len() => {
                self.f.load(Function::CTX, 16 + 8 * i as i16, Size::DW)
            }
            ArgSource::RawSyscallEntry if i < 6 => {
                self.f.load(Function::CTX, 16 + 8 * i as i16, Size::DW)
            }
            ArgSource::SyscallReturn | ArgSource::RawSyscallReturn if i < 2 => {
                // DTrace: a failed call returns -1 in arg0/arg1 and the error in errno.
                let ret = self.f.load(Function::CTX, 16, Size::DW);
                let out = self.f.mov(ret);
                let done = self.f.label();
                self.f.branch(JmpOp::Jsge, ret, Operand::Imm(0), done);
                self.f.branch(JmpOp::Jslt, ret, Operand::Imm(-4095), done);
                self.f.push(Inst::Mov {
                    dst: out,
                    src: Operand::Imm(-1),
                });
                self.f.push(Inst::Label(done));
                out
            }
            ArgSource::Tracepoint { fields } if (i as usize) < fields.len() => {
                let fd = fields[i as usize].clone();
                let size = Size::from_bytes(fd.size.min(8)).unwrap_or(Size::DW);
                let v = self.f.load(Function::CTX, fd.offset as i16, size);
                let (sz, signed) = fd.ty.int_parts();
                self.normalize(v, sz.min(fd.size as u8), signed)
            }
            ArgSource::Profile if i < 2 => {
                // bpf_perf_event_data starts with pt_regs; the sample's ip is in it.
                let ip = self
                    .f
                    .load(Function::CTX, crate::arch::PT_REGS_IP, Size::DW);
                let user = self.f.label();
                let done = self.f.label();
                let out = self.f.vreg();
                // A user-mode ip is below the kernel's half of the address space.
                let top = self.f.alu(AluOp::Rsh, ip, Operand::Imm(63));
                self.f.branch(JmpOp::Jeq, top, Operand::Imm(0), user);
                self.f.push(Inst::Mov {
                    dst: out,
                    src: if i == 0 { ip.into() } else { Operand::Imm(0) },
                });
                self.f.push(Inst::Jump(done));
                self.f.push(Inst::Label(user));
                self.f.push(Inst::Mov {
                    dst: out,
                    src: if i == 1 { ip.into() } else { Operand::Imm(0) },
                });
                self.f.push(Inst::Label(done));
                out
            }
            ArgSource::Error => {
                let area = self.scratch_ptr(self.fault_area + tracer_common::record::HEADER_SIZE);
                match i {
                    1 => {
                        let e = self.f.load(area, 0, Size::W);
                        self.f.alu(AluOp::Add, e, Operand::Imm(1))
                    }
                    2 => self.f.load(area, 16, Size::DW),
                    4 => self.f.load(area, 4, Size::W),
                    5 => self.f.load(area, 8, Size::DW),
                    _ => self.f.imm(0),
                }
            }
            ArgSource::Fbt {
                params,
                ret,
                fentry,
                ..
            } => {
                let n = params.len() as u32;
                // fbt return: arg0 is the returning instruction's offset in DTrace, which
                // neither kretprobe nor fexit knows (0); arg1 is the return value.
                let slot = match (*ret, i) {
                    (false, i) if i < n => Some(i),
                    (true, 1) => Some(n),
                    _ => None,
                };
                match (slot, *fentry) {
                    (Some(k), true) => self.f.load(Function::CTX, 8 * k as i16, Size::DW),
                    (Some(k), false) => {
                        let off = if *ret {
                            crate::arch::PT_REGS_RET
                        } else {
                            crate::arch::pt_regs_arg(k)
                        };
                        match off {
                            Some(off) => self.f.load(Function::CTX, off, Size::DW),
                            None => self.f.imm(0),
                        }
                    }
                    (None, _) => self.f.imm(0),
                }
            }
            ArgSource::PtRegs { ret } => {
                // On return, DTrace gives the return value in arg1 (arg0 would be the
                // returning instruction's offset, which a uretprobe does not know: 0).
                let off = match (*ret, i) {
                    (true, 1) => crate::arch::PT_REGS_RET,
                    (true, _) => None,
                    (false, _) => crate::arch::pt_regs_arg(i),
                };
                match off {
                    Some(off) => self.f.load(Function::CTX, off, Size::DW),
                    None => self.f.imm(0),
                }
            }
            ArgSource::Regs {
                ret_offset: Some(off),
                ..
            } if i == 0 => {
                // Sites sharing a program each have their own offset, in the sites map.
                if self.shared_sites() {
                    self.site_ret_offset()
                } else {
                    self.f.imm(*off as i64)
                }
            }
            ArgSource::Regs { args, .. } if (i as usize) < args.len() => {
                let a = args[i as usize].clone();
                self.usdt_arg(&a)
            }
            ArgSource::Usdt { args } if (i as usize) < args.len() => {
                let a = args[i as usize].clone();
                self.usdt_arg(&a)
            }
            _ => self.f.imm(0),
        }
    }

    /// An argument that cannot be read is an error where it is used, not where it is
    /// declared: a probe whose odd argument the script never reads still works.
    pub(crate) fn check_arg(&self, i: u32, span: Span) -> Result<()> {
        if let ArgSource::Usdt { args } = &self.probe.args {
            if let Some(crate::probes::UsdtArg {
                loc: crate::probes::UsdtLoc::Unsupported(why),
                ..
            }) = args.get(i as usize)
            {
                return Err(CompileError::new(
                    span,
                    format!(
                        "arg{i} of {} cannot be read: {why}",
                        self.probe.desc.full_name()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A USDT argument from its site's spec: a register, a constant, or user memory.
    fn usdt_arg(&mut self, a: &crate::probes::UsdtArg) -> tracer_ebpf::ir::VReg {
        use crate::probes::UsdtLoc;
        use tracer_ebpf::ir::Function;
        let v = match &a.loc {
            UsdtLoc::Const(v) => return self.f.imm(*v),
            UsdtLoc::Unsupported(_) => return self.f.imm(0),
            UsdtLoc::Reg { off } => self.f.load(Function::CTX, *off, Size::DW),
            UsdtLoc::Mem { base, index, disp } => {
                let mut addr = match base {
                    Some(b) => self.f.load(Function::CTX, *b, Size::DW),
                    None => self.f.imm(0),
                };
                if let Some((x, scale)) = index {
                    let xv = self.f.load(Function::CTX, *x, Size::DW);
                    let scaled = self.f.alu(AluOp::Mul, xv, Operand::Imm(*scale as i64));
                    addr = self.f.alu(AluOp::Add, addr, scaled);
                }
                if *disp != 0 {
                    addr = self.f.alu(AluOp::Add, addr, Operand::Imm(*disp));
                }
                // A fault leaves the zero stored first, as DTrace reads an unmapped arg as 0.
                let slot = self.temp(8);
                let dst = self.scratch_ptr(slot);
                self.f.store(dst, 0, Operand::Imm(0), Size::DW);
                self.f.call(
                    helper::PROBE_READ_USER,
                    vec![dst.into(), Operand::Imm(a.size as i64), addr.into()],
                );
                self.f
                    .load(dst, 0, Size::from_bytes(a.size as u32).unwrap_or(Size::DW))
            }
        };
        self.normalize(v, a.size, a.signed)
    }

    /// A field of the current `task_struct`, at a BTF-derived offset.
    fn read_task_field(
        &mut self,
        span: Span,
        field: impl Fn(&super::TaskOffsets) -> u32,
        size: u32,
    ) -> Result<tracer_ebpf::ir::VReg> {
        let offs = (self.g.input.task_offsets)().ok_or_else(|| {
            CompileError::new(span, "this variable needs kernel BTF (/sys/kernel/btf/vmlinux) to find task_struct offsets")
        })?;
        let task = self.f.call(helper::GET_CURRENT_TASK, vec![]);
        let ptr = self
            .f
            .alu(AluOp::Add, task, Operand::Imm(field(&offs) as i64));
        let slot = self.temp(8);
        let dst = self.scratch_ptr(slot);
        self.f.store(dst, 0, Operand::Imm(0), Size::DW);
        self.f.call(
            helper::PROBE_READ_KERNEL,
            vec![dst.into(), Operand::Imm(size as i64), ptr.into()],
        );
        Ok(self
            .f
            .load(dst, 0, Size::from_bytes(size).unwrap_or(Size::DW)))
    }

    /// `task->real_parent->tgid` through BTF offsets the runtime resolved at compile time.
    fn read_task_parent_tgid(&mut self, span: Span) -> Result<tracer_ebpf::ir::VReg> {
        let offs = (self.g.input.task_offsets)().ok_or_else(|| {
            CompileError::new(
                span,
                "ppid needs kernel BTF (/sys/kernel/btf/vmlinux) to find task_struct offsets",
            )
        })?;
        let task = self.f.call(helper::GET_CURRENT_TASK, vec![]);
        let parent_ptr = self
            .f
            .alu(AluOp::Add, task, Operand::Imm(offs.real_parent as i64));
        let slot = self.temp(8);
        let dst = self.scratch_ptr(slot);
        self.f.call(
            helper::PROBE_READ_KERNEL,
            vec![dst.into(), Operand::Imm(8), parent_ptr.into()],
        );
        let parent = self.f.load(dst, 0, Size::DW);
        let tgid_ptr = self
            .f
            .alu(AluOp::Add, parent, Operand::Imm(offs.tgid as i64));
        self.f.call(
            helper::PROBE_READ_KERNEL,
            vec![dst.into(), Operand::Imm(4), tgid_ptr.into()],
        );
        Ok(self.f.load(dst, 0, Size::W))
    }
}
