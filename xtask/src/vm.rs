//! `cargo xtask vm-test` (being written; see the issue tracker).

use anyhow::{bail, Result};

pub fn main(_args: &[String]) -> Result<()> {
    bail!("cargo xtask vm-test is not available yet")
}
