//! D's types as the compiler tracks them.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Type {
    Int {
        size: u8,
        signed: bool,
    },
    /// A string of at most `strsize` bytes.
    Str,
    /// A pointer; arithmetic treats it as a u64. The pointee decides `*p` and `stringof`.
    Ptr(Box<Type>),
    Void,
    /// `stack()` / `ustack()` values.
    Stack {
        user: bool,
    },
    /// `sym()`/`func()` (kernel) and `usym()`/`ufunc()` (user) values.
    Sym {
        user: bool,
    },
    /// A kernel struct or union from BTF, named by its BTF id. A value of this type is the
    /// address of the object in kernel memory: members are read from there on use.
    Struct {
        id: u32,
        name: String,
        size: u32,
        union: bool,
    },
    /// A fixed-size array inside a kernel object (a value is its address).
    Array {
        elem: Box<Type>,
        len: u32,
    },
}

impl Type {
    pub const INT: Type = Type::Int {
        size: 4,
        signed: true,
    };
    pub const UINT: Type = Type::Int {
        size: 4,
        signed: false,
    };
    pub const LONG: Type = Type::Int {
        size: 8,
        signed: true,
    };
    pub const ULONG: Type = Type::Int {
        size: 8,
        signed: false,
    };

    pub fn is_int(&self) -> bool {
        matches!(self, Type::Int { .. } | Type::Ptr(_))
    }

    /// (size, signed) for integers and pointers.
    pub fn int_parts(&self) -> (u8, bool) {
        match self {
            Type::Int { size, signed } => (*size, *signed),
            _ => (8, false),
        }
    }

    /// C's usual arithmetic conversions, simplified to D's integer world.
    pub fn arith(a: &Type, b: &Type) -> Type {
        if let Type::Ptr(_) = a {
            return a.clone();
        }
        if let Type::Ptr(_) = b {
            return b.clone();
        }
        let (sa, ua) = a.int_parts();
        let (sb, ub) = b.int_parts();
        let size = sa.max(sb).max(4);
        let signed = if sa == sb {
            ua && ub
        } else if sa > sb {
            ua
        } else {
            ub
        };
        Type::Int { size, signed }
    }

    /// A kernel object whose members `.` reaches (its value is an address).
    pub fn is_aggregate(&self) -> bool {
        matches!(self, Type::Struct { .. } | Type::Array { .. })
    }

    /// Parse a type name as written (`unsigned long long`, `uint32_t`, `string`, `char`).
    pub fn from_name(base: &str, pointers: u32) -> Option<Type> {
        let words: Vec<&str> = base
            .split_whitespace()
            .filter(|w| *w != "const" && *w != "volatile")
            .collect();
        let joined = words.join(" ");
        let mut t =
            match joined.as_str() {
                "string" => Type::Str,
                "void" => Type::Void,
                "char" | "signed char" | "int8_t" => Type::Int {
                    size: 1,
                    signed: true,
                },
                "unsigned char" | "uchar_t" | "uint8_t" | "bool" | "_Bool" => Type::Int {
                    size: 1,
                    signed: false,
                },
                "short" | "signed short" | "short int" | "int16_t" => Type::Int {
                    size: 2,
                    signed: true,
                },
                "unsigned short" | "unsigned short int" | "uint16_t" | "ushort_t" => Type::Int {
                    size: 2,
                    signed: false,
                },
                "int" | "signed" | "signed int" | "int32_t" | "pid_t" | "id_t"
                | "processorid_t" => Type::INT,
                "unsigned" | "unsigned int" | "uint32_t" | "uint_t" | "uid_t" | "gid_t"
                | "mode_t" => Type::UINT,
                "long" | "signed long" | "long int" | "long long" | "signed long long"
                | "long long int" | "int64_t" | "ssize_t" | "intptr_t" | "off_t" | "hrtime_t"
                | "loff_t" => Type::LONG,
                "unsigned long"
                | "unsigned long int"
                | "unsigned long long"
                | "unsigned long long int"
                | "uint64_t"
                | "size_t"
                | "uintptr_t"
                | "caddr_t" => Type::ULONG,
                other
                    if other.starts_with("struct ")
                        || other.starts_with("union ")
                        || other.starts_with("enum ") =>
                {
                    if other.starts_with("enum ") {
                        Type::INT
                    } else {
                        Type::Void
                    }
                }
                _ => return None,
            };
        for _ in 0..pointers {
            t = Type::Ptr(Box::new(t));
        }
        Some(t)
    }

    /// Bytes a value of this type occupies in a record, key or variable.
    pub fn storage_size(&self, strsize: u32) -> u32 {
        match self {
            Type::Int { size, .. } => *size as u32,
            Type::Ptr(_) | Type::Sym { user: false } => 8,
            Type::Sym { user: true } => 16,
            Type::Str => strsize,
            Type::Void => 0,
            Type::Stack { .. } => 8,
            Type::Struct { size, .. } => *size,
            Type::Array { elem, len } => elem.storage_size(strsize) * len,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Int { size, signed } => {
                let base = match size {
                    1 => "char",
                    2 => "short",
                    4 => "int",
                    _ => "long long",
                };
                if *signed {
                    write!(f, "{base}")
                } else {
                    write!(f, "unsigned {base}")
                }
            }
            Type::Str => write!(f, "string"),
            Type::Ptr(t) => write!(f, "{t} *"),
            Type::Void => write!(f, "void"),
            Type::Stack { user: false } => write!(f, "stack"),
            Type::Stack { user: true } => write!(f, "ustack"),
            Type::Sym { .. } => write!(f, "symbol"),
            Type::Struct { name, union, .. } => {
                write!(f, "{} {name}", if *union { "union" } else { "struct" })
            }
            Type::Array { elem, len } => write!(f, "{elem} [{len}]"),
        }
    }
}
