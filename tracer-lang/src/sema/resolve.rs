//! Type names as written in a script (`unsigned long`, `string`, `struct task_struct *`,
//! kernel typedefs), resolved to [`Type`]s; kernel structs, unions and typedefs come from BTF.

use crate::btf::KernelTypes;
use crate::diag::CompileError;
use crate::syntax::ast::TypeName;
use crate::types::Type;

/// A D type name, with kernel structs, unions and typedefs looked up in BTF.
pub fn resolve_type(kernel: &KernelTypes, ty: &TypeName) -> Result<Type, CompileError> {
    let builtin = Type::from_name(&ty.base, ty.pointers);
    let words: Vec<&str> = ty
        .base
        .split_whitespace()
        .filter(|w| *w != "const" && *w != "volatile")
        .collect();
    let (kind, name) = match words.as_slice() {
        [k @ ("struct" | "union"), name] => (Some(*k), *name),
        [name] => (None, *name),
        _ => return builtin.ok_or_else(|| unknown(ty)),
    };
    if kind.is_none() {
        if let Some(t) = builtin {
            return Ok(t);
        }
    }
    let btf = match kernel.get() {
        Some(b) => b,
        None if kind.is_some() => {
            return Err(CompileError::new(
                ty.span,
                format!(
                    "`{}` is a kernel type, and kernel types need BTF (/sys/kernel/btf/vmlinux), which this kernel does not provide",
                    ty.base
                ),
            ))
        }
        None => return Err(unknown(ty)),
    };
    let mut t = match kind {
        Some(k) => btf.struct_type(name, k == "union"),
        None => btf.typedef(name),
    }
    .ok_or_else(|| unknown(ty))?;
    for _ in 0..ty.pointers {
        t = Type::Ptr(Box::new(t));
    }
    Ok(t)
}

fn unknown(ty: &TypeName) -> CompileError {
    CompileError::new(ty.span, format!("unknown type `{}`", ty.base))
}

/// The type of `curthread`: `struct task_struct *`, or `void *` without kernel BTF.
pub fn curthread_type(kernel: &KernelTypes) -> Type {
    let task = kernel
        .get()
        .and_then(|b| b.struct_type("task_struct", false))
        .unwrap_or(Type::Void);
    Type::Ptr(Box::new(task))
}
