//! Kernel types from BTF (`/sys/kernel/btf/vmlinux`): structs and unions for `->` and `.`,
//! function signatures for fbt's typed `args[]`. aya's BTF lookups are crate-private, so this
//! is a small reader of the format (Documentation/bpf/btf.rst). Types are indexed once (one
//! pass over the type section); names are looked up by scanning, since a script asks only a
//! handful of them and building a full name index would cost more than it saves.

use crate::types::Type;
use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// A parsed BTF blob: the raw bytes plus where each type id starts.
pub struct Btf {
    data: Vec<u8>,
    strings: (usize, usize),
    /// Byte offset of each type's `btf_type`; index 0 stands for `void`.
    offsets: Vec<u32>,
    by_name: RefCell<HashMap<(u32, String), Option<u32>>>,
}

/// One member of a struct or union, with anonymous members flattened by `Btf::member`.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub name: String,
    /// Offset from the start of the outermost struct, in bits.
    pub bit_offset: u32,
    /// Width of a bitfield, 0 for an ordinary member.
    pub bitfield_size: u32,
    pub ty: Type,
}

/// A kernel function's parameters (names and D types) and return type.
#[derive(Debug, Clone, PartialEq)]
pub struct FuncSig {
    pub params: Vec<(String, Type)>,
    pub ret: Type,
}

struct Raw {
    name_off: u32,
    kind: u32,
    vlen: usize,
    kflag: bool,
    /// `size` or `type`, depending on the kind.
    size_or_type: u32,
    /// Where the kind-specific data starts.
    extra: usize,
}

impl Btf {
    /// Parse a BTF blob (header, types, strings). None when it is not BTF.
    pub fn parse(data: Vec<u8>) -> Option<Btf> {
        let u32_at = |off: usize| -> Option<u32> {
            Some(u32::from_le_bytes(data.get(off..off + 4)?.try_into().ok()?))
        };
        if data.get(0..2)? != [0x9f, 0xeb] {
            return None;
        }
        let hdr_len = u32_at(4)? as usize;
        let type_off = hdr_len + u32_at(8)? as usize;
        let type_end = type_off + u32_at(12)? as usize;
        let str_off = hdr_len + u32_at(16)? as usize;
        let str_end = str_off + u32_at(20)? as usize;
        if type_end > data.len() || str_end > data.len() {
            return None;
        }
        let mut offsets = vec![0u32];
        let mut at = type_off;
        while at + 12 <= type_end {
            offsets.push(at as u32);
            let info = u32_at(at + 4)?;
            let vlen = (info & 0xffff) as usize;
            let kind = (info >> 24) & 0x1f;
            at += 12
                + match kind {
                    1 | 14 | 17 => 4,
                    3 => 12,
                    4 | 5 => 12 * vlen,
                    6 | 13 => 8 * vlen,
                    15 | 19 => 12 * vlen,
                    _ => 0,
                };
        }
        Some(Btf {
            data,
            strings: (str_off, str_end),
            offsets,
            by_name: RefCell::new(HashMap::new()),
        })
    }

    fn u32_at(&self, off: usize) -> u32 {
        self.data
            .get(off..off + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
            .unwrap_or(0)
    }

    fn str_at(&self, off: u32) -> &str {
        let s = self
            .data
            .get(self.strings.0 + off as usize..self.strings.1)
            .unwrap_or(&[]);
        let end = s.iter().position(|b| *b == 0).unwrap_or(s.len());
        std::str::from_utf8(&s[..end]).unwrap_or("")
    }

    fn raw(&self, id: u32) -> Option<Raw> {
        let at = *self.offsets.get(id as usize).filter(|_| id != 0)? as usize;
        let info = self.u32_at(at + 4);
        Some(Raw {
            name_off: self.u32_at(at),
            kind: (info >> 24) & 0x1f,
            vlen: (info & 0xffff) as usize,
            kflag: info >> 31 == 1,
            size_or_type: self.u32_at(at + 8),
            extra: at + 12,
        })
    }

    pub fn type_count(&self) -> usize {
        self.offsets.len()
    }

    /// The id of the first type of `kind` called `name` (full definitions win over forward
    /// declarations).
    fn find(&self, kind: u32, name: &str) -> Option<u32> {
        let key = (kind, name.to_string());
        if let Some(hit) = self.by_name.borrow().get(&key) {
            return *hit;
        }
        let mut found = None;
        for id in 1..self.offsets.len() as u32 {
            let r = self.raw(id)?;
            if r.kind == kind && self.str_at(r.name_off) == name {
                found = Some(id);
                break;
            }
        }
        self.by_name.borrow_mut().insert(key, found);
        found
    }

    /// `struct NAME` (or `union NAME`) as a D type.
    pub fn struct_type(&self, name: &str, union: bool) -> Option<Type> {
        let id = self.find(if union { KIND_UNION } else { KIND_STRUCT }, name)?;
        Some(self.to_type(id))
    }

    /// A typedef such as `pid_t` or `u64`, resolved to its D type.
    pub fn typedef(&self, name: &str) -> Option<Type> {
        let id = self.find(KIND_TYPEDEF, name)?;
        Some(self.to_type(id))
    }

    /// The signature of the kernel function `name`, if BTF describes it.
    pub fn func(&self, name: &str) -> Option<FuncSig> {
        let id = self.find(KIND_FUNC, name)?;
        let proto = self.raw(self.raw(id)?.size_or_type)?;
        if proto.kind != KIND_FUNC_PROTO {
            return None;
        }
        let mut params = Vec::with_capacity(proto.vlen);
        for i in 0..proto.vlen {
            let p = proto.extra + 8 * i;
            let pname = self.str_at(self.u32_at(p)).to_string();
            params.push((pname, self.to_type(self.u32_at(p + 4))));
        }
        Some(FuncSig {
            params,
            ret: self.to_type(proto.size_or_type),
        })
    }

    /// Skip typedefs and qualifiers.
    fn strip(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.raw(id) {
                Some(r)
                    if matches!(
                        r.kind,
                        KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT | KIND_TYPE_TAG
                    ) =>
                {
                    id = r.size_or_type
                }
                _ => return id,
            }
        }
        id
    }

    /// The D type of BTF type `id`. Structs are named by id, so recursive types stay finite.
    pub fn to_type(&self, id: u32) -> Type {
        let id = self.strip(id);
        let Some(r) = self.raw(id) else {
            return Type::Void;
        };
        match r.kind {
            KIND_INT => {
                let enc = self.u32_at(r.extra);
                let bits = enc & 0xff;
                // D's `char` is signed, whatever the architecture's C says.
                let signed = enc >> 24 & 1 == 1 || self.str_at(r.name_off) == "char";
                let size = match bits {
                    0..=8 => 1,
                    9..=16 => 2,
                    17..=32 => 4,
                    _ => 8,
                };
                Type::Int { size, signed }
            }
            KIND_PTR => {
                let target = self.strip(r.size_or_type);
                let pointee = match self.raw(target).map(|t| t.kind) {
                    Some(KIND_FUNC_PROTO) => Type::Void,
                    _ => self.to_type(target),
                };
                Type::Ptr(Box::new(pointee))
            }
            KIND_ARRAY => {
                let elem = self.to_type(self.u32_at(r.extra));
                let len = self.u32_at(r.extra + 8);
                Type::Array {
                    elem: Box::new(elem),
                    len,
                }
            }
            KIND_STRUCT | KIND_UNION => Type::Struct {
                id,
                name: self.str_at(r.name_off).to_string(),
                size: r.size_or_type,
                union: r.kind == KIND_UNION,
            },
            KIND_FWD => {
                // A forward declaration: use the definition when BTF has one.
                let union = r.kflag;
                let name = self.str_at(r.name_off).to_string();
                match self.find(if union { KIND_UNION } else { KIND_STRUCT }, &name) {
                    Some(def) => self.to_type(def),
                    None => Type::Struct {
                        id,
                        name,
                        size: 0,
                        union,
                    },
                }
            }
            KIND_ENUM | KIND_ENUM64 => Type::Int {
                size: r.size_or_type.clamp(1, 8) as u8,
                signed: r.kflag,
            },
            _ => Type::Void,
        }
    }

    /// Member `name` of struct/union `id`, searching anonymous members as C does.
    pub fn member(&self, id: u32, name: &str) -> Option<Member> {
        self.member_at(id, name, 0, 0)
    }

    fn member_at(&self, id: u32, name: &str, base_bits: u32, depth: u32) -> Option<Member> {
        let r = self.raw(self.strip(id))?;
        if !matches!(r.kind, KIND_STRUCT | KIND_UNION) || depth > 8 {
            return None;
        }
        for i in 0..r.vlen {
            let m = r.extra + 12 * i;
            let mname = self.str_at(self.u32_at(m));
            let mtype = self.u32_at(m + 4);
            let off = self.u32_at(m + 8);
            let (bit_offset, bitfield_size) = if r.kflag {
                (off & 0xff_ffff, off >> 24)
            } else {
                (off, 0)
            };
            if mname == name {
                return Some(Member {
                    name: name.to_string(),
                    bit_offset: base_bits + bit_offset,
                    bitfield_size,
                    ty: self.to_type(mtype),
                });
            }
            if mname.is_empty() {
                if let Some(found) = self.member_at(mtype, name, base_bits + bit_offset, depth + 1)
                {
                    return Some(found);
                }
            }
        }
        None
    }

    /// Byte offset of `path` (`se.sum_exec_runtime`: members, dotted) inside struct `name`.
    pub fn offset_of(&self, name: &str, path: &str) -> Option<u32> {
        let mut ty = self.struct_type(name, false)?;
        let mut bits = 0;
        for part in path.split('.') {
            let Type::Struct { id, .. } = ty else {
                return None;
            };
            let m = self.member(id, part)?;
            bits += m.bit_offset;
            ty = m.ty;
        }
        Some(bits / 8)
    }

    /// `sizeof(struct name)`.
    pub fn struct_size(&self, name: &str) -> Option<u32> {
        match self.struct_type(name, false)? {
            Type::Struct { size, .. } => Some(size),
            _ => None,
        }
    }

    /// The names of a struct's members, anonymous members flattened (for error messages).
    pub fn member_names(&self, id: u32) -> Vec<String> {
        let mut out = Vec::new();
        self.collect_names(id, &mut out, 0);
        out
    }

    fn collect_names(&self, id: u32, out: &mut Vec<String>, depth: u32) {
        let Some(r) = self.raw(self.strip(id)) else {
            return;
        };
        if !matches!(r.kind, KIND_STRUCT | KIND_UNION) || depth > 8 {
            return;
        }
        for i in 0..r.vlen {
            let m = r.extra + 12 * i;
            let mname = self.str_at(self.u32_at(m));
            if mname.is_empty() {
                self.collect_names(self.u32_at(m + 4), out, depth + 1);
            } else {
                out.push(mname.to_string());
            }
        }
    }

    /// Names of all functions BTF describes (fbt's listing when kallsyms is unreadable).
    pub fn func_names(&self) -> Vec<&str> {
        (1..self.offsets.len() as u32)
            .filter_map(|id| self.raw(id))
            .filter(|r| r.kind == KIND_FUNC)
            .map(|r| self.str_at(r.name_off))
            .collect()
    }

    /// The BTF id of function `name` (fentry/fexit attach by id).
    pub fn func_id(&self, name: &str) -> Option<u32> {
        self.find(KIND_FUNC, name)
    }
}

/// Kernel BTF, read on first use: most scripts never need it, and reading it costs
/// milliseconds that a `BEGIN { exit(0) }` should not pay.
pub struct KernelTypes {
    load: Box<dyn Fn() -> Option<Vec<u8>>>,
    cell: OnceCell<Option<Btf>>,
}

impl KernelTypes {
    /// The running kernel's BTF.
    pub fn system() -> KernelTypes {
        KernelTypes::new(|| std::fs::read("/sys/kernel/btf/vmlinux").ok())
    }

    /// No kernel types (compiling without a kernel, e.g. in golden tests).
    pub fn none() -> KernelTypes {
        KernelTypes::new(|| None)
    }

    pub fn new(load: impl Fn() -> Option<Vec<u8>> + 'static) -> KernelTypes {
        KernelTypes {
            load: Box::new(load),
            cell: OnceCell::new(),
        }
    }

    pub fn get(&self) -> Option<&Btf> {
        self.cell
            .get_or_init(|| (self.load)().and_then(Btf::parse))
            .as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel() -> Option<Btf> {
        Btf::parse(std::fs::read("/sys/kernel/btf/vmlinux").ok()?)
    }

    #[test]
    fn task_struct_members_resolve_through_anonymous_members() {
        let Some(btf) = kernel() else {
            eprintln!("skipped: no /sys/kernel/btf/vmlinux");
            return;
        };
        let Some(Type::Struct { id, size, .. }) = btf.struct_type("task_struct", false) else {
            panic!("no struct task_struct")
        };
        assert!(size > 1000);
        let comm = btf.member(id, "comm").unwrap();
        assert_eq!(
            comm.ty,
            Type::Array {
                elem: Box::new(Type::Int {
                    size: 1,
                    signed: true
                }),
                len: 16
            }
        );
        let pid = btf.member(id, "pid").unwrap();
        assert_eq!(pid.ty, Type::INT);
        let parent = btf.member(id, "real_parent").unwrap();
        assert!(
            matches!(parent.ty, Type::Ptr(ref t) if matches!(**t, Type::Struct { ref name, .. } if name == "task_struct"))
        );
        // `__state` lives directly in task_struct; `sum_exec_runtime` inside `se`.
        assert!(btf.member(id, "no_such_member").is_none());
        assert!(btf.member_names(id).iter().any(|n| n == "tgid"));
    }

    #[test]
    fn function_signatures_name_their_parameters() {
        let Some(btf) = kernel() else {
            eprintln!("skipped: no /sys/kernel/btf/vmlinux");
            return;
        };
        let sig = btf.func("vfs_read").unwrap();
        let names: Vec<&str> = sig.params.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["file", "buf", "count", "pos"]);
        assert!(
            matches!(&sig.params[0].1, Type::Ptr(t) if matches!(&**t, Type::Struct { name, .. } if name == "file"))
        );
        assert_eq!(sig.ret, Type::LONG);
        assert!(btf.func("no_such_function_in_any_kernel").is_none());
    }

    #[test]
    fn not_btf_is_none() {
        assert!(Btf::parse(b"not btf at all".to_vec()).is_none());
        assert!(Btf::parse(vec![0x9f, 0xeb, 1, 0, 24, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).is_none());
    }
}
