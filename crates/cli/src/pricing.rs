//! `tailor pricing …`: the elasticity report on sales history and the pricing simulator.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;

/// Pricing commands.
#[derive(Subcommand)]
pub enum PricingCommand {
    /// Estimate price elasticity per product from The Complete Journey's sales history
    /// (product estimates shrunk toward their category, with intervals), print a report and
    /// store each category's estimate in the store: new price experiments on a category's
    /// products start from it (as after PUT /v1/pricing/elasticities/{category}).
    Elasticity {
        #[command(flatten)]
        storage: crate::StorageArgs,
        /// Print the report only; store nothing.
        #[arg(long)]
        no_store: bool,
        /// The shared folder holding data/completejourney.
        #[arg(long, default_value = "../shared")]
        shared: PathBuf,
        /// Products listed in the report.
        #[arg(long, default_value_t = 20)]
        top: usize,
        /// Also write every product's estimate as CSV here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run pricing policies against products with known demand curves and report each
    /// policy's revenue and margin as a share of the oracle's (docs/pricing-scenario.md).
    Simulate {
        /// The scenario file (JSON); without it the default scenario runs.
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Random seed of the demand noise and the policies' draws.
        #[arg(long, default_value_t = 7)]
        seed: u64,
        /// Write the default scenario to this file (a starting point for your own) and stop.
        #[arg(long)]
        export_default: Option<PathBuf>,
        /// Run the suite of scenario families built to break a policy (the built-in one, or a
        /// suite file) and print each family × policy as a share of the oracle.
        #[arg(long, num_args = 0..=1, value_name = "FILE", conflicts_with = "scenario")]
        suite: Option<Option<PathBuf>>,
        /// Seeds the suite runs each family with: a range (1-5) or a list (1,4,9).
        #[arg(long, default_value = "1-5", requires = "suite")]
        seeds: String,
    },
}

/// Runs a pricing command.
pub async fn run(command: PricingCommand) -> Result<()> {
    match command {
        PricingCommand::Elasticity { storage, no_store, shared, top, out } => {
            let report = crate::pricing_elasticity::run(&shared, top, out.as_deref())?;
            if !no_store {
                let engine = storage.open(false).await?;
                let stored = crate::pricing_elasticity::store_categories(&engine, &report).await;
                engine.close().await;
                let (stored, skipped) = stored?;
                println!(
                    "\nStored {stored} category estimates as the priors of new price experiments \
                     ({skipped} left out: a mean elasticity of 0 or above is no prior)"
                );
            }
            Ok(())
        }
        PricingCommand::Simulate { scenario, seed, export_default, suite, seeds } => match suite {
            Some(file) => crate::pricing_simulate::run_suite(file.as_deref(), &seeds),
            None => crate::pricing_simulate::run(scenario.as_deref(), seed, export_default.as_deref()),
        },
    }
}
