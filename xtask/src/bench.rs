//! `cargo xtask bench` (being written; see the issue tracker).

use anyhow::{bail, Result};

pub fn main(_args: &[String]) -> Result<()> {
    bail!("cargo xtask bench is not available yet")
}
