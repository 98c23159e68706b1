//! Quick experiments without the CLI: `cargo run --release -p tailor-assistant --example nlu_eval
//! -- TRAIN.csv TEST.csv [OOS_LABEL]`, knobs from NLU_* environment variables (see `knob`).

use tailor_assistant::understanding::{data, load_encoder, UnderstandingConfig};
use tailor_assistant::{eval, models};

fn knob<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(train), Some(test)) = (args.get(1), args.get(2)) else {
        return Err("usage: nlu_eval TRAIN.csv TEST.csv [OOS_LABEL]".into());
    };
    let mut c = UnderstandingConfig::default();
    if let Ok(v) = std::env::var("NLU_LAYERS") {
        c.layers = v.split(',').filter_map(|x| x.parse().ok()).collect();
    }
    if let Some(v) = knob("NLU_DENSE_SCALE") {
        c.dense_scale = v;
    }
    if let Some(v) = knob("NLU_EPOCHS") {
        c.params.epochs = v;
    }
    if let Some(v) = knob("NLU_L2") {
        c.params.l2 = v;
    }
    if let Some(v) = knob("NLU_LR") {
        c.params.learning_rate = v;
    }
    if let Some(t) = c.tune.as_mut() {
        if let Some(v) = knob("NLU_TUNE_EPOCHS") {
            t.epochs = v;
        }
        if let Some(v) = knob("NLU_TUNE_LAYERS") {
            t.layers = v;
        }
        if let Some(v) = knob("NLU_TUNE_LR") {
            t.learning_rate = v;
        }
    }
    if let Some(v) = knob("NLU_TUNE_WEIGHT") {
        c.tune_weight = v;
    }
    let enc = if std::env::var_os("NLU_NO_ENCODER").is_some() {
        None
    } else {
        Some(load_encoder(models::locate_minilm()?.path())?)
    };
    let start = std::time::Instant::now();
    let out = eval::train_and_score(
        &data::read_csv_file(train.as_ref())?,
        &data::read_csv_file(test.as_ref())?,
        enc,
        &c,
        args.get(3).map(String::as_str),
        &mut |s| eprintln!("{:7.1}s {s}", start.elapsed().as_secs_f64()),
    )?;
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}
