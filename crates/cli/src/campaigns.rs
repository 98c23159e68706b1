//! `tailor campaigns`: campaign intelligence from files (uplift targeting on a past campaign).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;
use tailor_targeting::table::{Campaign, Columns};
use tailor_targeting::uplift::{UpliftModel, DEFAULT_ENSEMBLE};

/// Campaign intelligence commands.
#[derive(Subcommand)]
pub enum CampaignsCommand {
    /// Learn from a randomized past campaign whom a message changes, and score other customers:
    /// writes one `uplift` per TEST row (the predicted rise in the chance to act), in order.
    Uplift {
        /// The past campaign: one row per customer with the treatment, outcome and features.
        #[arg(long)]
        train: PathBuf,
        /// Customers to score, in the same columns (treatment and outcome may be any valid value).
        #[arg(long)]
        test: PathBuf,
        /// Where to write the scores (CSV with one column `uplift`).
        #[arg(long)]
        out: PathBuf,
        /// The treatment column: 0/1, or arm names with --control.
        #[arg(long, default_value = "treatment")]
        treatment: String,
        /// The value of the treatment column that means "held out" (arm names then mean messages).
        #[arg(long)]
        control: Option<String>,
        /// The outcome column (0/1).
        #[arg(long, default_value = "outcome")]
        outcome: String,
        /// Comma-separated columns that are not features (e.g. outcomes measured after the send).
        #[arg(long, value_delimiter = ',')]
        exclude: Vec<String>,
    },
    /// Offline check of per-customer send hours on The Complete Journey: each household's hour
    /// chosen from its baskets before a cut, against the best single hour for everyone.
    SendTimeEval {
        /// The shared folder holding data/completejourney.
        #[arg(long, default_value = "../shared")]
        shared: PathBuf,
        /// Share of the data's time span used as history (the rest holds each next basket).
        #[arg(long, default_value_t = 0.8)]
        history: f64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a campaigns command.
pub fn run(command: CampaignsCommand) -> Result<()> {
    match command {
        CampaignsCommand::Uplift { train, test, out, treatment, control, outcome, exclude } => {
            let columns = Columns { treatment, control, outcome, exclude };
            uplift(&train, &test, &out, &columns)
        }
        CampaignsCommand::SendTimeEval { shared, history, json } => {
            crate::campaigns_sendtime::run(&shared, history, json)
        }
    }
}

fn uplift(train: &Path, test: &Path, out: &Path, columns: &Columns) -> Result<()> {
    let open = |path: &Path| File::open(path).with_context(|| format!("cannot open {}", path.display()));
    let campaign =
        Campaign::read(open(train)?, columns, None).with_context(|| format!("{} (--train)", train.display()))?;
    campaign.check_arms(&columns.treatment).with_context(|| format!("{} (--train)", train.display()))?;
    let model = UpliftModel::fit(&campaign, &DEFAULT_ENSEMBLE)?;
    let scoring = Campaign::read(open(test)?, columns, Some(model.arms()))
        .with_context(|| format!("{} (--test)", test.display()))?;
    if scoring.features != campaign.features {
        anyhow::bail!(
            "{} (--test) has feature columns {:?}, the training file {:?}: give both files the same columns",
            test.display(),
            scoring.features,
            campaign.features
        );
    }
    let scores = model.score(&scoring).with_context(|| format!("{} (--test)", test.display()))?;
    let mut writer = BufWriter::new(File::create(out).with_context(|| format!("cannot write {}", out.display()))?);
    writeln!(writer, "uplift")?;
    for s in &scores {
        writeln!(writer, "{s}")?;
    }
    writer.flush()?;
    eprintln!(
        "scored {} customers from a campaign of {} ({} message arm(s)) → {}",
        scores.len(),
        campaign.rows.len(),
        campaign.arms.len(),
        out.display()
    );
    Ok(())
}
