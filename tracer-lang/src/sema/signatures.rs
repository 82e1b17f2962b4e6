//! The signatures of D's built-in variables (`pid`, `execname`, `arg0`, …) and subroutines
//! (`strlen`, `copyinstr`, `stack`, …): one table each. Adding a built-in is one row here plus
//! one arm in lowering (`lower/builtins.rs` for variables, `lower/strings.rs` for
//! subroutines), and of actions (`printf`, `exit`, …), which return nothing: [`ACTIONS`],
//! lowered in `lower/actions.rs`.

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

/// An action: a call that is a statement of its own and records or does something. Its
/// arity (`min..=max` arguments) and argument classes are checked by sema at the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    pub name: &'static str,
    pub min: usize,
    pub max: usize,
    /// The class of each argument, where sema checks one (`Int`: not a string).
    pub args: &'static [Option<Arg>],
}

impl Action {
    /// The message for `args` when the action takes another number of arguments, in the
    /// words lowering always used. `format_first` is whether the first argument is a string
    /// literal (`printa`'s optional format).
    pub fn arity_error(&self, n: usize, format_first: bool) -> Option<String> {
        let name = self.name;
        match name {
            "printf" | "system" if n == 0 => {
                return Some(format!("{name}( ) requires a format string"))
            }
            "printa" if n == 0 => return Some("printa( ) requires an aggregation".into()),
            "printa" if n == 1 && format_first => {
                return Some("printa( ) requires an aggregation after the format".into())
            }
            _ => {}
        }
        if (self.min..=self.max).contains(&n) {
            return None;
        }
        let expected = if self.min == self.max {
            self.min.to_string()
        } else {
            format!("{} to {}", self.min, self.max)
        };
        Some(format!(
            "{name}( ) prototype mismatch: {n} arguments passed, {expected} expected"
        ))
    }

    /// The message when argument `i` is a string and the action wants an integer.
    pub fn class_error(&self, i: usize) -> Option<String> {
        match self.args.get(i) {
            Some(Some(Arg::Int)) => Some(format!(
                "{}( ) argument #{} is incompatible with prototype: it must be an integer",
                self.name,
                i + 1
            )),
            _ => None,
        }
    }
}

const fn act(name: &'static str, min: usize, max: usize, args: &'static [Option<Arg>]) -> Action {
    Action {
        name,
        min,
        max,
        args,
    }
}

/// Actions. `stack()`, `ustack()` and `jstack()` are actions too, but their arity is that of
/// the subroutines of the same name. `printf`, `system` and `printa` take any number of
/// arguments after their first.
pub const ACTIONS: &[Action] = &[
    act("trace", 1, 1, &[]),
    act("printf", 1, usize::MAX, &[]),
    act("system", 1, usize::MAX, &[]),
    act("printa", 1, usize::MAX, &[]),
    act("clear", 1, 1, &[]),
    act("denormalize", 1, 1, &[]),
    act("trunc", 1, 2, &[]),
    act("normalize", 2, 2, &[]),
    act("exit", 1, 1, &[Some(Int)]),
    act("speculate", 1, 1, &[]),
    act("commit", 1, 1, &[]),
    act("discard", 1, 1, &[]),
    act("raise", 1, 1, &[]),
    act("stop", 0, 0, &[]),
    act("setopt", 0, usize::MAX, &[]),
];

/// The action called `name`, or None for subroutines and unknown names.
pub fn action(name: &str) -> Option<&'static Action> {
    ACTIONS.iter().find(|a| a.name == name)
}

/// Aggregating functions (`@a = count()`): name and arity `min..=max`. Their constant
/// arguments (`lquantize`'s bounds) are checked by lowering, which reads them.
pub const AGGREGATIONS: &[(&str, usize, usize)] = &[
    ("count", 0, 0),
    ("sum", 1, 1),
    ("avg", 1, 1),
    ("min", 1, 1),
    ("max", 1, 1),
    ("stddev", 1, 1),
    ("quantize", 1, 2),
    ("lquantize", 3, 5),
    ("llquantize", 5, 6),
];

/// The error of `@a = name(...)` with `n` arguments, in lowering's words: an unknown
/// function, or another number of arguments.
pub fn aggregation_error(name: &str, n: usize) -> Option<String> {
    match AGGREGATIONS.iter().find(|a| a.0 == name) {
        None => Some(format!("{name}( ) is not an aggregating function")),
        Some(&(_, min, max)) if !(min..=max).contains(&n) => Some(format!(
            "{name}( ) prototype mismatch: {n} arguments passed"
        )),
        Some(_) => None,
    }
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
        for a in ACTIONS {
            assert!(seen.insert(a.name), "{} twice", a.name);
            assert!(a.min <= a.max && a.args.len() <= a.max, "{}", a.name);
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
        let a = |n, k| action(n).unwrap().arity_error(k, false);
        assert_eq!(
            a("trace", 2).as_deref(),
            Some("trace( ) prototype mismatch: 2 arguments passed, 1 expected")
        );
        assert_eq!(
            a("trunc", 3).as_deref(),
            Some("trunc( ) prototype mismatch: 3 arguments passed, 1 to 2 expected")
        );
        assert_eq!(
            a("printf", 0).as_deref(),
            Some("printf( ) requires a format string")
        );
        assert_eq!(a("printf", 5), None);
        assert_eq!(
            aggregation_error("count", 1).as_deref(),
            Some("count( ) prototype mismatch: 1 arguments passed")
        );
        assert_eq!(
            aggregation_error("frob", 0).as_deref(),
            Some("frob( ) is not an aggregating function")
        );
        assert_eq!(aggregation_error("quantize", 2), None);
        assert_eq!(
            action("printa").unwrap().arity_error(1, true).as_deref(),
            Some("printa( ) requires an aggregation after the format")
        );
    }
}
