//! The signatures of D's built-in variables (`pid`, `execname`, `arg0`, …) and subroutines
//! (`strlen`, `copyinstr`, `stack`, …): one table each. Adding a built-in is one row here plus
//! one arm in lowering (`lower/builtins.rs` for variables, `lower/strings.rs` for
//! subroutines). Actions (`printf`, `exit`, …) return nothing and are not listed.

use crate::types::Type;

/// A result type, spelled so that the tables can be constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    Int {
        size: u8,
        signed: bool,
    },
    Str,
    /// `void *`: `curthread` without BTF, `NULL`.
    VoidPtr,
    /// `char *`: `copyin()`'s buffer.
    CharPtr,
    Stack {
        user: bool,
    },
    Sym {
        user: bool,
    },
}

impl Ret {
    pub fn ty(self) -> Type {
        match self {
            Ret::Int { size, signed } => Type::Int { size, signed },
            Ret::Str => Type::Str,
            Ret::VoidPtr => Type::Ptr(Box::new(Type::Void)),
            Ret::CharPtr => Type::Ptr(Box::new(Type::Int {
                size: 1,
                signed: true,
            })),
            Ret::Stack { user } => Type::Stack { user },
            Ret::Sym { user } => Type::Sym { user },
        }
    }
}

const INT: Ret = Ret::Int {
    size: 4,
    signed: true,
};
const UINT: Ret = Ret::Int {
    size: 4,
    signed: false,
};
const LONG: Ret = Ret::Int {
    size: 8,
    signed: true,
};
const ULONG: Ret = Ret::Int {
    size: 8,
    signed: false,
};
const USHORT: Ret = Ret::Int {
    size: 2,
    signed: false,
};

/// Built-in variables and their types. `curthread` is `struct task_struct *` when kernel BTF
/// knows the struct (see `resolve::curthread_type`).
pub const VARIABLES: &[(&str, Ret)] = &[
    ("pid", INT),
    ("tid", INT),
    ("ppid", INT),
    ("cpu", INT),
    ("errno", INT),
    ("hostpid", INT),
    ("hosttid", INT),
    ("uid", UINT),
    ("gid", UINT),
    ("epid", UINT),
    ("id", UINT),
    ("pidns", UINT),
    ("cgroupid", ULONG),
    ("timestamp", ULONG),
    ("vtimestamp", ULONG),
    ("walltimestamp", ULONG),
    ("arg0", LONG),
    ("arg1", LONG),
    ("arg2", LONG),
    ("arg3", LONG),
    ("arg4", LONG),
    ("arg5", LONG),
    ("arg6", LONG),
    ("arg7", LONG),
    ("arg8", LONG),
    ("arg9", LONG),
    ("execname", Ret::Str),
    ("cgroup", Ret::Str),
    ("container", Ret::Str),
    ("probeprov", Ret::Str),
    ("probemod", Ret::Str),
    ("probefunc", Ret::Str),
    ("probename", Ret::Str),
    ("curthread", Ret::VoidPtr),
];

/// `uregs[R]`: a saved user register.
pub const UREGS: Ret = ULONG;

/// The type of built-in variable `name`, or None when it is not one.
pub fn variable(name: &str) -> Option<Type> {
    VARIABLES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, r)| r.ty())
}

/// What a subroutine argument must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arg {
    /// An integer or pointer.
    Int,
    /// A string.
    Str,
    /// A constant integer (a size or a frame count), read by lowering.
    Const,
}

/// A subroutine: its name, its arguments (the first `min` required), and its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subroutine {
    pub name: &'static str,
    pub args: &'static [Arg],
    pub min: usize,
    pub result: Ret,
}

impl Subroutine {
    pub fn result(&self) -> Type {
        self.result.ty()
    }

    /// The message for `n` arguments when the subroutine takes another number, in DTrace's
    /// words.
    pub fn arity_error(&self, n: usize) -> Option<String> {
        let (min, max) = (self.min, self.args.len());
        if (min..=max).contains(&n) {
            return None;
        }
        let name = self.name;
        Some(if min == max {
            format!("{name}( ) prototype mismatch: {n} arguments passed, {min} expected")
        } else if min == 0 {
            format!("{name}( ) takes at most {max} arguments")
        } else {
            format!("{name}( ) takes {min} or {max} arguments")
        })
    }
}

const fn sub(name: &'static str, args: &'static [Arg], min: usize, result: Ret) -> Subroutine {
    Subroutine {
        name,
        args,
        min,
        result,
    }
}

use Arg::{Const, Int, Str};

/// Subroutines that return a value. `stack()`, `ustack()` and `jstack()` are also actions.
pub const SUBROUTINES: &[Subroutine] = &[
    sub("strlen", &[Str], 1, ULONG),
    sub("strjoin", &[Str, Str], 2, Ret::Str),
    sub("substr", &[Str, Int, Int], 2, Ret::Str),
    sub("strchr", &[Str, Int], 2, Ret::Str),
    sub("strrchr", &[Str, Int], 2, Ret::Str),
    sub("strstr", &[Str, Str], 2, Ret::Str),
    sub("index", &[Str, Str, Int], 2, INT),
    sub("rindex", &[Str, Str, Int], 2, INT),
    sub("basename", &[Str], 1, Ret::Str),
    sub("dirname", &[Str], 1, Ret::Str),
    sub("lltostr", &[Int], 1, Ret::Str),
    sub("copyinstr", &[Int, Int], 1, Ret::Str),
    sub("copyin", &[Int, Const], 2, Ret::CharPtr),
    sub("inet_ntoa", &[Int], 1, Ret::Str),
    sub("htons", &[Int], 1, USHORT),
    sub("ntohs", &[Int], 1, USHORT),
    sub("htonl", &[Int], 1, UINT),
    sub("ntohl", &[Int], 1, UINT),
    sub("htonll", &[Int], 1, ULONG),
    sub("ntohll", &[Int], 1, ULONG),
    sub("rand", &[], 0, UINT),
    sub("speculation", &[], 0, INT),
    sub("func", &[Int], 1, Ret::Sym { user: false }),
    sub("sym", &[Int], 1, Ret::Sym { user: false }),
    sub("ufunc", &[Int], 1, Ret::Sym { user: true }),
    sub("usym", &[Int], 1, Ret::Sym { user: true }),
    sub("stack", &[Const, Const], 0, Ret::Stack { user: false }),
    sub("ustack", &[Const, Const], 0, Ret::Stack { user: true }),
    sub("jstack", &[Const, Const], 0, Ret::Stack { user: true }),
];

/// The subroutine called `name`, or None for actions and unknown names.
pub fn subroutine(name: &str) -> Option<&'static Subroutine> {
    SUBROUTINES.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for (n, _) in VARIABLES {
            assert!(seen.insert(*n), "{n} twice");
        }
        for s in SUBROUTINES {
            assert!(seen.insert(s.name), "{} twice", s.name);
            assert!(s.min <= s.args.len(), "{}", s.name);
        }
    }

    #[test]
    fn variables_and_results() {
        assert_eq!(variable("pid"), Some(Type::INT));
        assert_eq!(variable("execname"), Some(Type::Str));
        assert_eq!(variable("timestamp"), Some(Type::ULONG));
        assert_eq!(variable("x"), None);
        assert_eq!(subroutine("strlen").unwrap().result(), Type::ULONG);
        assert_eq!(
            subroutine("htons").unwrap().result(),
            Type::Int {
                size: 2,
                signed: false
            }
        );
        assert!(subroutine("printf").is_none());
    }

    #[test]
    fn arity_messages() {
        let m = |n, k| subroutine(n).unwrap().arity_error(k);
        assert_eq!(
            m("strlen", 2).as_deref(),
            Some("strlen( ) prototype mismatch: 2 arguments passed, 1 expected")
        );
        assert_eq!(
            m("substr", 1).as_deref(),
            Some("substr( ) takes 2 or 3 arguments")
        );
        assert_eq!(
            m("copyinstr", 0).as_deref(),
            Some("copyinstr( ) takes 1 or 2 arguments")
        );
        assert_eq!(
            m("stack", 3).as_deref(),
            Some("stack( ) takes at most 2 arguments")
        );
        assert_eq!(m("substr", 3), None);
    }
}
