//! The encoder's forward pass for one sentence, inference only, in plain f32: the weights packed
//! at load ([`Packed`]), attention computed directly over the short sequence, bias, GELU, residual
//! and layer norm each one pass over the row buffers. It computes what candle's graph computes
//! (to float rounding; a test holds them within 1e-4) in a fraction of the time, because a chat
//! message is 10–30 tokens and candle's per-op dispatch and allocations cost more than the
//! arithmetic at that size. Training (fine-tuning) keeps candle, which has gradients.

use super::packed::Packed;

/// Hidden width.
const H: usize = 384;
/// Attention heads and their width.
const HEADS: usize = 12;
const HEAD_DIM: usize = H / HEADS;
const LN_EPS: f32 = 1e-12;

/// A layer norm's scale and shift.
#[derive(Debug, Clone)]
pub struct Norm {
    w: Vec<f32>,
    b: Vec<f32>,
}

impl Norm {
    /// From its weight and bias (each [`H`] values); None otherwise.
    pub fn new(w: Vec<f32>, b: Vec<f32>) -> Option<Self> {
        (w.len() == H && b.len() == H).then_some(Self { w, b })
    }

    /// Normalises each row of `x` in place.
    fn apply(&self, x: &mut [f32]) {
        for row in x.chunks_exact_mut(H) {
            let mean = row.iter().sum::<f32>() / H as f32;
            let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / H as f32;
            let inv = 1.0 / (var + LN_EPS).sqrt();
            for ((v, w), b) in row.iter_mut().zip(&self.w).zip(&self.b) {
                *v = (*v - mean) * inv * w + b;
            }
        }
    }
}

/// One transformer layer, packed.
#[derive(Debug, Clone)]
pub struct Block {
    /// Query, key and value side by side (3 × [`H`] outputs).
    pub qkv: Packed,
    /// Attention output projection.
    pub attn_out: Packed,
    /// Norm after attention.
    pub attn_ln: Norm,
    /// Feed-forward up projection (GELU follows).
    pub inter: Packed,
    /// Feed-forward down projection.
    pub out: Packed,
    /// Norm after the feed-forward.
    pub out_ln: Norm,
}

impl Block {
    /// True when every product has the encoder's sizes.
    fn sized(&self) -> bool {
        let shape = |p: &Packed| (p.inputs(), p.outputs());
        shape(&self.qkv) == (H, 3 * H)
            && shape(&self.attn_out) == (H, H)
            && self.inter.inputs() == H
            && shape(&self.out) == (self.inter.outputs(), H)
    }
}

/// The encoder for inference.
#[derive(Debug, Clone)]
pub struct Forward {
    /// vocabulary × [`H`].
    word: Vec<f32>,
    /// positions × [`H`].
    position: Vec<f32>,
    /// The token-type-0 embedding ([`H`]).
    token_type: Vec<f32>,
    emb_ln: Norm,
    layers: Vec<Block>,
}

/// Row buffers of one pass, sized for its sequence.
struct Scratch {
    qkv: Vec<f32>,
    ctx: Vec<f32>,
    tmp: Vec<f32>,
    inter: Vec<f32>,
    scores: Vec<f32>,
}

impl Forward {
    /// From the embedding tables (row-major, [`H`] wide), the embedding norm and the layers; None
    /// when a size is off.
    pub fn new(
        word: Vec<f32>,
        position: Vec<f32>,
        token_type: Vec<f32>,
        emb_ln: Norm,
        layers: Vec<Block>,
    ) -> Option<Self> {
        let ok = !word.is_empty()
            && word.len().is_multiple_of(H)
            && !position.is_empty()
            && position.len().is_multiple_of(H)
            && token_type.len() >= H
            && layers.iter().all(Block::sized);
        ok.then(|| Self { word, position, token_type: token_type[..H].to_vec(), emb_ln, layers })
    }

    /// Longest sequence it takes (the position table's length).
    pub fn max_tokens(&self) -> usize {
        self.position.len() / H
    }

    /// Runs `ids` (cut to [`Forward::max_tokens`]; ids outside the vocabulary read as 0) through
    /// the first `upto` layers, calling `visit(layer, states)` with the L × [`H`] hidden states
    /// after each (layer 0: the embeddings).
    pub fn run(&self, ids: &[u32], upto: usize, mut visit: impl FnMut(usize, &[f32])) {
        let l = ids.len().min(self.max_tokens());
        if l == 0 {
            return;
        }
        let vocab = self.word.len() / H;
        let mut x = vec![0f32; l * H];
        for (t, (row, &id)) in x.chunks_exact_mut(H).zip(ids).enumerate() {
            let id = if (id as usize) < vocab { id as usize } else { 0 };
            let w = &self.word[id * H..(id + 1) * H];
            let p = &self.position[t * H..(t + 1) * H];
            for (((v, w), p), tt) in row.iter_mut().zip(w).zip(p).zip(&self.token_type) {
                *v = w + p + tt;
            }
        }
        self.emb_ln.apply(&mut x);
        visit(0, &x);
        let inter = self.layers.first().map_or(0, |b| b.inter.outputs());
        let mut s = Scratch {
            qkv: vec![0f32; l * 3 * H],
            ctx: vec![0f32; l * H],
            tmp: vec![0f32; l * H],
            inter: vec![0f32; l * inter],
            scores: vec![0f32; l],
        };
        for (i, block) in self.layers.iter().take(upto).enumerate() {
            layer(block, &mut x, l, &mut s);
            visit(i + 1, &x);
        }
    }

    /// Mean over tokens of the hidden states of each of `layers` (0 = embeddings … 6 = last),
    /// side by side: `layers.len()` × [`H`] values. Also returns the states after layer `also`
    /// when asked (the input of a fine-tuned top).
    pub fn pooled(&self, ids: &[u32], layers: &[usize], also: Option<usize>) -> (Vec<f32>, Option<Vec<f32>>) {
        let upto = layers.iter().copied().chain(also).max().unwrap_or(0).min(self.layers.len());
        let mut out = vec![0f32; layers.len() * H];
        let mut kept = None;
        self.run(ids, upto, |at, states| {
            let l = states.len() / H;
            for (slot, _) in layers.iter().enumerate().filter(|(_, &want)| want == at) {
                let dst = &mut out[slot * H..(slot + 1) * H];
                for row in states.chunks_exact(H) {
                    dst.iter_mut().zip(row).for_each(|(d, v)| *d += v);
                }
                dst.iter_mut().for_each(|d| *d /= l as f32);
            }
            if also == Some(at) {
                kept = Some(states.to_vec());
            }
        });
        (out, kept)
    }
}

/// One layer over the L × [`H`] states `x`, in place.
fn layer(b: &Block, x: &mut [f32], l: usize, s: &mut Scratch) {
    b.qkv.forward(x, l, &mut s.qkv);
    attention(&s.qkv, l, &mut s.ctx, &mut s.scores);
    b.attn_out.forward(&s.ctx, l, &mut s.tmp);
    s.tmp.iter_mut().zip(x.iter()).for_each(|(t, v)| *t += v);
    b.attn_ln.apply(&mut s.tmp);
    x.copy_from_slice(&s.tmp);
    b.inter.forward(x, l, &mut s.inter);
    gelu(&mut s.inter);
    b.out.forward(&s.inter, l, &mut s.tmp);
    s.tmp.iter_mut().zip(x.iter()).for_each(|(t, v)| *t += v);
    b.out_ln.apply(&mut s.tmp);
    x.copy_from_slice(&s.tmp);
}

/// Self-attention of every head, no mask (one sentence, no padding): `qkv` rows hold query, key
/// and value side by side; `ctx` gets L × [`H`] (heads side by side).
fn attention(qkv: &[f32], l: usize, ctx: &mut [f32], scores: &mut [f32]) {
    let scale = 1.0 / (HEAD_DIM as f32).sqrt();
    let row = |t: usize, part: usize, h: usize| {
        let at = t * 3 * H + part * H + h * HEAD_DIM;
        &qkv[at..at + HEAD_DIM]
    };
    for h in 0..HEADS {
        for i in 0..l {
            let q = row(i, 0, h);
            for (j, sc) in scores.iter_mut().enumerate().take(l) {
                *sc = q.iter().zip(row(j, 1, h)).map(|(a, b)| a * b).sum::<f32>() * scale;
            }
            let max = scores[..l].iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for sc in &mut scores[..l] {
                *sc = (*sc - max).exp();
                sum += *sc;
            }
            let out = &mut ctx[i * H + h * HEAD_DIM..i * H + (h + 1) * HEAD_DIM];
            out.iter_mut().for_each(|o| *o = 0.0);
            for (j, &p) in scores[..l].iter().enumerate() {
                let p = p / sum;
                out.iter_mut().zip(row(j, 2, h)).for_each(|(o, v)| *o += p * v);
            }
        }
    }
}

/// GELU with the exact erf form, `x · (1 + erf(x / √2)) / 2`, in place.
fn gelu(x: &mut [f32]) {
    for v in x {
        *v = 0.5 * *v * (1.0 + erf(*v * std::f32::consts::FRAC_1_SQRT_2));
    }
}

/// erf for f32 as a rational function of x on [-4, 4] (±1 beyond, where f32 cannot tell):
/// within a few units in the last place, and branch-free, so a loop over it vectorises.
/// The coefficients are those of Eigen's and XLA's float erf.
#[inline(always)]
fn erf(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = x2 * -2.726_142_3e-10 + 2.770_681_4e-8;
    p = x2 * p + -2.101_024e-6;
    p = x2 * p + -5.692_506_4e-5;
    p = x2 * p + -7.349_906_3e-4;
    p = x2 * p + -2.954_6e-3;
    p = x2 * p + -1.609_603_3e-2;
    p *= x;
    let mut q = x2 * -1.456_607_2e-5 + -2.133_740_6e-4;
    q = x2 * q + -1.682_827e-3;
    q = x2 * q + -7.373_329_2e-3;
    q = x2 * q + -1.426_473_9e-2;
    p / q
}

#[cfg(test)]
mod tests {
    use super::*;

    /// erf by its Taylor series in f64 (exact enough for |x| ≤ 4 with enough terms).
    fn erf_reference(x: f64) -> f64 {
        let mut sum = 0f64;
        let mut term = x;
        let mut n = 0f64;
        while term.abs() > 1e-17 || n < 10.0 {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -x * x / n;
            if n > 200.0 {
                break;
            }
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn erf_is_within_a_millionth_everywhere() {
        for i in -6000..=6000 {
            let x = i as f32 / 1000.0;
            let want = if x.abs() > 4.0 { x.signum() as f64 } else { erf_reference(f64::from(x)) };
            let got = f64::from(erf(x));
            assert!((got - want).abs() < 1e-6, "erf({x}) = {got}, want {want}");
        }
    }
}
