//! Understanding: what a shopper's message asks (intent), about what (entities), or that it is
//! outside what the assistant does (out of scope). Trained from [`data::Example`]s; at run time
//! [`Understanding::understand`] is pure compute on one message.
//!
//! The classifier is one multinomial logistic regression over TF-IDF n-grams (word 1–2, char 2–5)
//! and, when the all-MiniLM-L6-v2 weights are present, mean-pooled hidden states of several of its
//! layers. A second, n-gram-only regression is always trained beside it: it answers when the
//! weights are absent at run time. Out of scope is a message the classifier puts in the
//! out-of-scope intent or whose best probability falls under a threshold calibrated on held-out
//! training messages.

pub mod data;
pub mod entities;
mod forward;
pub mod linear;
pub mod minilm;
pub mod ngrams;
mod packed;
pub mod wordpiece;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

pub use data::Example;
pub use entities::{Entity, EntityExtractor};
use linear::{softmax, Features, Softmax, TrainParams};
use minilm::{MiniLm, TuneParams, TunedRuntime, TunedTop};
use ngrams::NgramVectorizer;

use crate::AssistantError;

/// Format of a stored [`UnderstandingModel`]; an artifact of another version is retrained, not read.
pub const FORMAT_VERSION: u32 = 2;

/// The intent name that means "not something the assistant does".
pub const OUT_OF_SCOPE: &str = "out_of_scope";

/// Longest message understood, in characters; the rest is ignored (the chat API refuses longer ones).
pub const MAX_MESSAGE_CHARS: usize = 2_000;

/// How understanding is trained.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnderstandingConfig {
    /// Encoder layers (0 = embeddings … 6 = last) whose mean-pooled states are features.
    pub layers: Vec<usize>,
    /// Length of each layer's (unit) vector relative to the unit n-gram vector.
    pub dense_scale: f32,
    /// Candidate lengths: training keeps the pair (with `ngram_scales`) most accurate on the
    /// held-out share of the training messages (never the test) and stores it as `dense_scale`.
    pub dense_scales: Vec<f32>,
    /// Length of the n-gram vector in the combined head (the n-gram-only head keeps 1).
    pub ngram_scale: f32,
    /// Candidate lengths of the n-gram vector, chosen with `dense_scales`.
    pub ngram_scales: Vec<f32>,
    /// N-grams seen in fewer training messages are dropped.
    pub min_df: usize,
    /// The regression's training.
    pub params: TrainParams,
    /// The intent label meaning out of scope.
    pub oos_label: String,
    /// Share of held-out in-scope messages the out-of-scope threshold may turn away.
    pub oos_budget: f32,
    /// Share of the training messages held out to calibrate that threshold.
    pub calibration_share: f32,
    /// Fine-tuning of the encoder's top layers (None: the encoder stays frozen).
    pub tune: Option<TuneParams>,
    /// Weight of the fine-tuned encoder's log-probabilities against the regression's (0..=1).
    pub tune_weight: f32,
    /// A file keeping encoder features of training messages between runs (evaluation only: the
    /// encoder is deterministic, so a cached vector equals a fresh one).
    #[serde(skip)]
    pub encoding_cache: Option<std::path::PathBuf>,
}

impl Default for UnderstandingConfig {
    fn default() -> Self {
        Self {
            layers: vec![4, 5, 6],
            dense_scale: 1.0,
            dense_scales: vec![0.35, 0.5, 0.7],
            ngram_scale: 1.0,
            ngram_scales: vec![1.0, 1.5],
            min_df: 1,
            params: TrainParams::default(),
            oos_label: OUT_OF_SCOPE.to_string(),
            oos_budget: 0.006,
            calibration_share: 0.1,
            // Fine-tuning is off until it is measured to pay for its training time.
            tune: None,
            tune_weight: 0.5,
            encoding_cache: None,
        }
    }
}

/// One classifier and its out-of-scope threshold.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Head {
    softmax: Softmax,
    threshold: f32,
}

/// The trained, storable part of understanding (the encoder's weights stay in their own files).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnderstandingModel {
    format: u32,
    config: UnderstandingConfig,
    intents: Vec<String>,
    vectorizer: NgramVectorizer,
    /// N-grams and encoder states; absent when trained without the encoder.
    combined: Option<Head>,
    /// N-grams only: the fallback.
    ngram: Head,
    /// The fine-tuned top of the encoder, blended with the combined head.
    tuned: Option<TunedTop>,
    entities: EntityExtractor,
}

/// An intent with its probability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scored {
    /// Intent label.
    pub intent: String,
    /// Probability in [0, 1].
    pub confidence: f32,
}

/// What a message asks: the flows above decide what to do with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Understood {
    /// The intent, or `None` when the message is out of scope.
    pub intent: Option<String>,
    /// Probability of the best in-scope intent.
    pub confidence: f32,
    /// True when the assistant should say what it can help with instead of guessing.
    pub out_of_scope: bool,
    /// The best in-scope intent even when the message is out of scope (a flow may offer it as
    /// "did you mean…").
    pub closest: String,
    /// The best three intents, best first (out of scope included when it was a class).
    pub ranked: Vec<Scored>,
    /// Entities found, left to right.
    pub entities: Vec<Entity>,
    /// True when the sentence encoder took part (false: the n-gram fallback answered).
    pub encoder: bool,
}

/// What the heads said about one message.
struct Scores {
    /// Probabilities the intent is chosen from.
    probs: Vec<f32>,
    /// The calibrated regression's probabilities, which decide out of scope.
    gate: Vec<f32>,
    threshold: f32,
    encoder: bool,
}

/// Understanding ready to answer: the trained model and, when present, the encoder.
#[derive(Debug, Clone)]
pub struct Understanding {
    model: Arc<UnderstandingModel>,
    encoder: Option<Arc<MiniLm>>,
    tuned: Option<TunedRuntime>,
    /// Encoder outputs of recent messages by token ids ("yes", "hi", "where is my order" come
    /// back often; the encoder is deterministic, so a cached output equals a fresh one).
    recent: Arc<std::sync::Mutex<Recent>>,
}

/// Encoder outputs per token sequence, the oldest dropped first.
#[derive(Debug, Default)]
struct Recent {
    map: std::collections::HashMap<wordpiece::TokenIds, (Vec<f32>, Option<Vec<f32>>)>,
    order: std::collections::VecDeque<wordpiece::TokenIds>,
}

/// Messages whose encoder output is kept.
const RECENT: usize = 4096;

impl Recent {
    fn get(&self, k: &wordpiece::TokenIds) -> Option<(Vec<f32>, Option<Vec<f32>>)> {
        self.map.get(k).cloned()
    }

    fn put(&mut self, k: wordpiece::TokenIds, v: (Vec<f32>, Option<Vec<f32>>)) {
        if self.map.insert(k.clone(), v).is_none() {
            self.order.push_back(k);
            while self.order.len() > RECENT {
                if let Some(old) = self.order.pop_front() {
                    self.map.remove(&old);
                }
            }
        }
    }
}

/// Loads the sentence encoder from a folder holding `model.safetensors` and `vocab.txt`.
pub fn load_encoder(dir: &Path) -> Result<Arc<MiniLm>, AssistantError> {
    MiniLm::load(dir).map(Arc::new)
}

/// Encoder features of many messages, computed in length-sorted batches (little padding).
fn encode_all(encoder: &MiniLm, texts: &[&str], config: &UnderstandingConfig) -> Result<Vec<Vec<f32>>, AssistantError> {
    // the cache file is per layer choice; an unreadable one is ignored (it is only a cache)
    let cache_path = config.encoding_cache.as_ref().map(|p| {
        let layers: Vec<String> = config.layers.iter().map(|l| l.to_string()).collect();
        p.with_extension(format!("layers-{}.bin", layers.join("-")))
    });
    let mut cache: std::collections::HashMap<String, Vec<f32>> = cache_path
        .as_ref()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|b| postcard::from_bytes(&b).ok())
        .unwrap_or_default();
    let before = cache.len();
    let tokens: Vec<_> = texts.iter().map(|t| encoder.tokenize(&clip(t))).collect();
    let mut order: Vec<usize> = (0..tokens.len()).filter(|&i| !cache.contains_key(texts[i])).collect();
    order.sort_by_key(|&i| tokens[i].len());
    for chunk in order.chunks(32) {
        let batch: Vec<_> = chunk.iter().map(|&i| tokens[i].clone()).collect();
        let pooled = encoder.pooled(&batch, &config.layers)?;
        for (&i, v) in chunk.iter().zip(pooled) {
            cache.insert(texts[i].to_string(), v);
        }
    }
    if let Some(p) = cache_path.filter(|_| cache.len() > before) {
        if let Ok(bytes) = postcard::to_stdvec(&cache) {
            let _ = std::fs::write(p, bytes);
        }
    }
    Ok(texts.iter().map(|t| dense_features(cache.get(*t).cloned().unwrap_or_default(), config)).collect())
}

/// Each layer's pooled block normalised to length `dense_scale`.
fn dense_features(mut v: Vec<f32>, config: &UnderstandingConfig) -> Vec<f32> {
    for block in v.chunks_mut(minilm::HIDDEN) {
        let n = block.iter().map(|x| x * x).sum::<f32>().sqrt();
        if n > 0.0 && n.is_finite() {
            block.iter_mut().for_each(|x| *x *= config.dense_scale / n);
        } else {
            block.iter_mut().for_each(|x| *x = 0.0);
        }
    }
    v
}

/// A message cut to [`MAX_MESSAGE_CHARS`] characters.
fn clip(text: &str) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((i, _)) => std::borrow::Cow::Borrowed(&text[..i]),
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// How much the n-gram and the encoder parts of the inputs are stretched.
type Stretch = (f32, f32);

/// `xs` with the n-gram part multiplied by `s.0` and the dense part by `s.1` (the same inputs
/// when both are 1).
fn scaled(xs: &[Features], s: Stretch) -> std::borrow::Cow<'_, [Features]> {
    if s == (1.0, 1.0) {
        return std::borrow::Cow::Borrowed(xs);
    }
    std::borrow::Cow::Owned(xs.iter().map(|x| stretch(x.clone(), s)).collect())
}

fn stretch(mut x: Features, s: Stretch) -> Features {
    x.sparse.iter_mut().for_each(|(_, v)| *v *= s.0);
    x.dense.iter_mut().for_each(|v| *v *= s.1);
    x
}

/// Trains a head: on a held-out share of the messages, picks the stretch of the inputs (among
/// `factors`) that classifies them best and calibrates the out-of-scope threshold; then fits all
/// the messages. Returns the head and the stretch chosen.
#[allow(clippy::too_many_arguments)]
fn train_head(
    xs: &[Features],
    ys: &[usize],
    n_sparse: usize,
    n_dense: usize,
    classes: usize,
    oos: Option<usize>,
    config: &UnderstandingConfig,
    factors: &[Stretch],
    stage: &mut dyn FnMut(&str),
) -> (Head, Stretch) {
    let mut order: Vec<usize> = (0..xs.len()).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(config.params.seed ^ 0x5eed));
    let held = ((xs.len() as f32 * config.calibration_share.clamp(0.0, 0.5)) as usize).min(xs.len().saturating_sub(1));
    let mut threshold = 0.0;
    let mut factor = factors.first().copied().unwrap_or((1.0, 1.0));
    if held >= 20 {
        let (cal, fit) = order.split_at(held);
        let fy: Vec<usize> = fit.iter().map(|&i| ys[i]).collect();
        let mut best: Option<(usize, Stretch, Softmax)> = None;
        for &f in factors.iter().chain(factors.is_empty().then_some(&(1.0, 1.0))) {
            let fx: Vec<Features> = fit.iter().map(|&i| xs[i].clone()).collect();
            let m = Softmax::train(&scaled(&fx, f), &fy, n_sparse, n_dense, classes, &config.params);
            let cx = scaled(xs, f);
            let right = cal
                .iter()
                .filter(|&&i| {
                    let p = m.logits(&cx[i]);
                    p.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(k, _)| k) == Some(ys[i])
                })
                .count();
            if factors.len() > 1 {
                stage(&format!(
                    "lengths n-gram {} encoder {}: {right} of {} held-out messages right",
                    f.0,
                    f.1 * config.dense_scale,
                    cal.len()
                ));
            }
            if best.as_ref().is_none_or(|b| right > b.0) {
                best = Some((right, f, m));
            }
        }
        let Some((_, f, m)) = best else { unreachable!("at least one factor is tried") };
        factor = f;
        let cx = scaled(xs, factor);
        let mut correct_conf = Vec::new();
        let mut in_scope = 0usize;
        for &i in cal {
            if Some(ys[i]) == oos {
                continue;
            }
            in_scope += 1;
            let (best, conf) = best_in_scope(&softmax(&m.logits(&cx[i])), oos);
            if best == ys[i] {
                correct_conf.push(conf);
            }
        }
        correct_conf.sort_by(f32::total_cmp);
        // the highest threshold that turns away at most the budget of in-scope messages
        let allowed = (in_scope as f32 * config.oos_budget).floor() as usize;
        threshold = correct_conf.get(allowed).copied().unwrap_or(0.0);
        // just under the first kept confidence, so that one stays in
        threshold = (threshold - 1e-6).max(0.0);
    }
    let softmax = Softmax::train(&scaled(xs, factor), ys, n_sparse, n_dense, classes, &config.params);
    (Head { softmax, threshold }, factor)
}

/// Weighted geometric mean of two distributions, renormalised.
fn blend(lr: &[f32], tuned: &[f32], w: f32) -> Vec<f32> {
    let w = w.clamp(0.0, 1.0);
    let logs: Vec<f32> =
        lr.iter().zip(tuned).map(|(a, b)| (1.0 - w) * a.max(1e-12).ln() + w * b.max(1e-12).ln()).collect();
    softmax(&logs)
}

/// The best class that is not out of scope, and its probability.
fn best_in_scope(probs: &[f32], oos: Option<usize>) -> (usize, f32) {
    probs
        .iter()
        .enumerate()
        .filter(|(k, _)| Some(*k) != oos)
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(k, p)| (k, *p))
        .unwrap_or((0, 0.0))
}

impl UnderstandingModel {
    /// Trains on examples; with an encoder the combined head is trained too.
    pub fn train(
        examples: &[Example],
        encoder: Option<&MiniLm>,
        config: &UnderstandingConfig,
    ) -> Result<Self, AssistantError> {
        Self::train_with(examples, encoder, config, &mut |_| {})
    }

    /// [`UnderstandingModel::train`], telling `stage` what it starts (for a progress display).
    pub fn train_with(
        examples: &[Example],
        encoder: Option<&MiniLm>,
        config: &UnderstandingConfig,
        stage: &mut dyn FnMut(&str),
    ) -> Result<Self, AssistantError> {
        let mut labels: BTreeMap<&str, usize> = BTreeMap::new();
        for e in examples {
            let n = labels.len();
            labels.entry(e.intent.as_str()).or_insert(n);
        }
        if labels.len() < 2 {
            return Err(AssistantError::Data {
                origin: "training data".into(),
                line: 0,
                message: "at least two intents are needed".into(),
            });
        }
        let intents: Vec<String> = labels.keys().map(|s| s.to_string()).collect();
        let index: BTreeMap<&str, usize> = intents.iter().enumerate().map(|(i, s)| (s.as_str(), i)).collect();
        let ys: Vec<usize> = examples.iter().map(|e| index[e.intent.as_str()]).collect();
        let oos = index.get(config.oos_label.as_str()).copied();
        let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
        stage("n-gram features");
        let vectorizer = NgramVectorizer::fit(texts.iter().copied(), config.min_df);
        let sparse: Vec<_> = texts.iter().map(|t| vectorizer.transform(&clip(t))).collect();
        let classes = intents.len();
        let xs: Vec<Features> = sparse.iter().map(|s| Features { sparse: s.clone(), dense: Vec::new() }).collect();
        stage("n-gram regression");
        let (ngram, _) = train_head(&xs, &ys, vectorizer.len(), 0, classes, oos, config, &[(1.0, 1.0)], stage);
        let mut config = config.clone();
        let (combined, tuned) = match encoder {
            Some(enc) => {
                stage("encoding");
                let dense = encode_all(enc, &texts, &config)?;
                let n_dense = config.layers.len() * minilm::HIDDEN;
                let xs: Vec<Features> =
                    sparse.into_iter().zip(dense).map(|(sparse, dense)| Features { sparse, dense }).collect();
                stage("combined regression");
                // candidate lengths relative to the one the features were built with
                let ok = |s: &&f32| s.is_finite() && **s > 0.0;
                let mut factors = Vec::new();
                for n in config.ngram_scales.iter().filter(ok) {
                    for d in config.dense_scales.iter().filter(ok) {
                        factors.push((*n, d / config.dense_scale.max(f32::MIN_POSITIVE)));
                    }
                }
                let (head, factor) =
                    train_head(&xs, &ys, vectorizer.len(), n_dense, classes, oos, &config, &factors, stage);
                config.ngram_scale = factor.0;
                config.dense_scale *= factor.1;
                let tuned = match &config.tune {
                    Some(p) if p.epochs > 0 => {
                        stage("fine-tuning");
                        let tokens: Vec<_> = texts.iter().map(|t| enc.tokenize(&clip(t))).collect();
                        Some(enc.fine_tune(&tokens, &ys, classes, p, |epoch, loss| {
                            stage(&format!("fine-tuning epoch {} done, loss {loss:.3}", epoch + 1))
                        })?)
                    }
                    _ => None,
                };
                (Some(head), tuned)
            }
            None => (None, None),
        };
        Ok(Self {
            format: FORMAT_VERSION,
            config,
            intents,
            vectorizer,
            combined,
            ngram,
            tuned,
            entities: EntityExtractor::fit(examples),
        })
    }

    /// The intents it knows, sorted.
    pub fn intents(&self) -> &[String] {
        &self.intents
    }

    /// True when it was trained with the sentence encoder (and will use it when it is present).
    pub fn uses_encoder(&self) -> bool {
        self.combined.is_some()
    }

    /// The entity extractor, to add catalog values (brands, product names) to its gazetteer.
    pub fn entities_mut(&mut self) -> &mut EntityExtractor {
        &mut self.entities
    }

    /// Serialises the model (format version first).
    pub fn to_bytes(&self) -> Result<Vec<u8>, AssistantError> {
        postcard::to_stdvec(self).map_err(|e| AssistantError::Artifact(e.to_string()))
    }

    /// Reads a stored model; another format version is an error the caller answers by retraining.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, AssistantError> {
        let format: u32 = postcard::take_from_bytes::<u32>(bytes)
            .map(|(v, _)| v)
            .map_err(|e| AssistantError::Artifact(e.to_string()))?;
        if format != FORMAT_VERSION {
            return Err(AssistantError::Artifact(format!("format {format}, this build reads {FORMAT_VERSION}")));
        }
        postcard::from_bytes(bytes).map_err(|e| AssistantError::Artifact(e.to_string()))
    }
}

impl Understanding {
    /// Understanding from a trained model and the encoder (when the model uses one and it is present).
    pub fn new(model: UnderstandingModel, encoder: Option<Arc<MiniLm>>) -> Self {
        let encoder = if model.uses_encoder() { encoder } else { None };
        // A corrupt tuned top is dropped: the combined head still answers.
        let tuned = encoder.as_ref().and(model.tuned.as_ref()).and_then(|t| t.runtime().ok());
        Self { model: Arc::new(model), encoder, tuned, recent: Arc::default() }
    }

    /// The trained model.
    pub fn model(&self) -> &UnderstandingModel {
        &self.model
    }

    /// Class probabilities of a message, the calibrated regression's probabilities that gate out
    /// of scope with their threshold, and whether the encoder took part. Never fails: an encoder
    /// error falls back to the n-gram head.
    fn probabilities(&self, text: &str) -> Scores {
        let text = clip(text);
        let sparse = self.model.vectorizer.transform(&text);
        if let (Some(enc), Some(head)) = (&self.encoder, &self.model.combined) {
            let tokens = enc.tokenize(&text);
            let cached = self.recent.lock().ok().and_then(|r| r.get(&tokens));
            let out = match cached {
                Some(hit) => Ok(hit),
                None => enc.features(&tokens, &self.model.config.layers, self.tuned.as_ref()).inspect(|v| {
                    if let Ok(mut r) = self.recent.lock() {
                        r.put(tokens.clone(), v.clone());
                    }
                }),
            };
            if let Ok((v, tuned)) = out {
                let x = stretch(
                    Features { sparse, dense: dense_features(v, &self.model.config) },
                    (self.model.config.ngram_scale, 1.0),
                );
                let probs = softmax(&head.softmax.logits(&x));
                let blended = match tuned {
                    Some(l) if l.len() == probs.len() => blend(&probs, &softmax(&l), self.model.config.tune_weight),
                    _ => probs.clone(),
                };
                return Scores { probs: blended, gate: probs, threshold: head.threshold, encoder: true };
            }
        }
        let x = Features { sparse, dense: Vec::new() };
        let probs = softmax(&self.model.ngram.softmax.logits(&x));
        Scores { gate: probs.clone(), probs, threshold: self.model.ngram.threshold, encoder: false }
    }

    /// Understands one message.
    pub fn understand(&self, text: &str) -> Understood {
        let Scores { probs, gate, threshold, encoder } = self.probabilities(text);
        let oos = self.model.intents.iter().position(|i| *i == self.model.config.oos_label);
        let (best, confidence) = best_in_scope(&probs, oos);
        let (_, gate_confidence) = best_in_scope(&gate, oos);
        let top = gate.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(k, _)| k);
        let out_of_scope = top == oos && oos.is_some() || gate_confidence < threshold || text.trim().is_empty();
        let mut ranked: Vec<Scored> = probs
            .iter()
            .enumerate()
            .map(|(k, p)| Scored { intent: self.model.intents[k].clone(), confidence: *p })
            .collect();
        ranked.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        ranked.truncate(3);
        Understood {
            intent: (!out_of_scope).then(|| self.model.intents[best].clone()),
            closest: self.model.intents[best].clone(),
            confidence,
            out_of_scope,
            ranked,
            entities: self.model.entities.extract(&clip(text)),
            encoder,
        }
    }
}

/// The retail training set shipped with Tailor: product finding, availability, reserve for
/// pickup, price and offers, order status, returns and policies, store hours, loyalty balance,
/// tier and redeem, cart, greetings, hand-off, complaints, confirmations.
pub const RETAIL_CSV: &str = include_str!("../../data/retail.csv");

/// Out-of-scope examples shipped with Tailor (weather, trivia, chit-chat, homework…), added to a
/// retailer's file that has none so that the assistant learns what it does not do.
pub const OUT_OF_SCOPE_CSV: &str = include_str!("../../data/out_of_scope.csv");

/// The shipped out-of-scope examples.
pub fn shipped_out_of_scope() -> Vec<Example> {
    data::read_csv(OUT_OF_SCOPE_CSV.as_bytes(), "out_of_scope.csv").unwrap_or_default()
}

/// The shipped retail training set, out-of-scope examples included.
pub fn shipped_examples() -> Vec<Example> {
    let mut v = data::read_csv(RETAIL_CSV.as_bytes(), "retail.csv").unwrap_or_default();
    v.extend(shipped_out_of_scope());
    v
}
