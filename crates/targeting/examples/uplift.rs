//! `cargo run --release -p tailor-targeting --example uplift -- TRAIN TEST OUT [MEMBERS_JSON]`:
//! the uplift model on a Hillstrom-format split, for trying ensembles without the whole CLI.
use std::fs::File;
use std::io::Write;

use tailor_targeting::table::{Campaign, Columns};
use tailor_targeting::uplift::{Member, UpliftModel, DEFAULT_ENSEMBLE};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let columns = Columns {
        treatment: "segment".into(),
        control: Some("No E-Mail".into()),
        outcome: "visit".into(),
        exclude: vec!["conversion".into(), "spend".into()],
    };
    let members: Vec<Member> = match args.get(4) {
        Some(json) => serde_json::from_str(json).expect("members"),
        None => DEFAULT_ENSEMBLE.to_vec(),
    };
    let train = Campaign::read(File::open(&args[1]).expect("train"), &columns, None).expect("train");
    let model = UpliftModel::fit(&train, &members).expect("fit");
    let test = Campaign::read(File::open(&args[2]).expect("test"), &columns, Some(model.arms())).expect("test");
    let scores = model.score(&test).expect("score");
    let mut out = File::create(&args[3]).expect("out");
    writeln!(out, "uplift").expect("write");
    for s in scores {
        writeln!(out, "{s}").expect("write");
    }
}
