//! `tailor pricing elasticity`: weekly sales per product from The Complete Journey, estimated
//! with `tailor_pricing::elasticity` (being written).

use std::path::Path;

use anyhow::{bail, Result};

/// Prints the report (and writes every estimate to `out` when given).
pub fn run(shared: &Path, top: usize, out: Option<&Path>) -> Result<()> {
    let _ = (shared, top, out);
    bail!("the elasticity report is not built yet")
}
