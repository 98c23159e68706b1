//! A linear layer whose weights are packed once, at load, for products with a few rows: the
//! inputs of one chat message are 10–30 token rows, so every weight is read once per message and
//! the product is as fast as those reads and the multiply-adds allow: a register tile of up to 8
//! rows × [`NR`] outputs, with AVX-512 or AVX2 intrinsics when the CPU has them (found at run
//! time), plain loops otherwise.

/// Output columns per packed panel (two AVX-512 or four AVX2 registers of f32).
pub const NR: usize = 32;

/// `y = x · W + b` with `W` (k × n) stored as panels of [`NR`] columns, each panel k rows of
/// [`NR`] consecutive values (the last panel padded with zeros).
#[derive(Debug, Clone)]
pub struct Packed {
    k: usize,
    n: usize,
    panels: Vec<f32>,
    bias: Vec<f32>,
}

impl Packed {
    /// Packs a row-major k × n weight (`w[r * n + c]`, the input-by-output layout) and its n biases.
    /// None when the lengths do not match the sizes.
    pub fn new(w: &[f32], bias: &[f32], k: usize, n: usize) -> Option<Self> {
        if k == 0 || n == 0 || w.len() != k.checked_mul(n)? || bias.len() != n {
            return None;
        }
        let count = n.div_ceil(NR);
        let mut panels = vec![0f32; count.checked_mul(k)?.checked_mul(NR)?];
        for (p, panel) in panels.chunks_exact_mut(k * NR).enumerate() {
            let c0 = p * NR;
            let width = NR.min(n - c0);
            for (r, dst) in panel.chunks_exact_mut(NR).enumerate() {
                dst[..width].copy_from_slice(&w[r * n + c0..r * n + c0 + width]);
            }
        }
        Some(Self { k, n, panels, bias: bias.to_vec() })
    }

    /// Inputs per row.
    pub fn inputs(&self) -> usize {
        self.k
    }

    /// Outputs per row.
    pub fn outputs(&self) -> usize {
        self.n
    }

    /// `out = x · W + b` for `rows` rows: `x` holds rows × k values, `out` rows × n.
    ///
    /// # Panics
    /// When `x` or `out` is shorter than that (a caller's sizing bug).
    pub fn forward(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        assert!(x.len() >= rows * self.k && out.len() >= rows * self.n, "packed product sizes");
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(cpu) = x86::Avx512::detect() {
                #[target_feature(enable = "avx512f")]
                fn avx512(cpu: x86::Avx512, p: &Packed, x: &[f32], rows: usize, out: &mut [f32]) {
                    product::<8, _>(&cpu, p, x, rows, out)
                }
                // SAFETY: `cpu` exists only when the CPU has AVX-512F, the function's only
                // requirement.
                #[allow(unsafe_code)]
                unsafe {
                    avx512(cpu, self, x, rows, out)
                };
                return;
            }
            if let Some(cpu) = x86::Avx2::detect() {
                #[target_feature(enable = "avx2,fma")]
                fn avx2(cpu: x86::Avx2, p: &Packed, x: &[f32], rows: usize, out: &mut [f32]) {
                    product::<3, _>(&cpu, p, x, rows, out)
                }
                // SAFETY: `cpu` exists only when the CPU has AVX2 and FMA, the function's only
                // requirements.
                #[allow(unsafe_code)]
                unsafe {
                    avx2(cpu, self, x, rows, out)
                };
                return;
            }
        }
        product::<4, _>(&Portable, self, x, rows, out)
    }
}

/// Multiplies MR rows (interleaved: `a[c * MR + i]`) by one panel: an MR × [`NR`] block of sums.
trait Tile<const MR: usize> {
    fn tile(&self, a: &[f32], panel: &[f32]) -> [[f32; NR]; MR];
}

/// The product in groups of up to `MR` rows: the rows are interleaved once (k × MR values per
/// group, read in order by the tile), then each weight panel is read once for all the groups.
#[inline(always)]
fn product<const MR: usize, T: Tile<MR>>(t: &T, p: &Packed, x: &[f32], rows: usize, out: &mut [f32]) {
    let k = p.k;
    let groups = rows.div_ceil(MR);
    let mut inter = vec![0f32; groups * k * MR];
    for (g, dst) in inter.chunks_exact_mut(k * MR).enumerate() {
        for i in 0..MR.min(rows - g * MR) {
            let src = &x[(g * MR + i) * k..(g * MR + i + 1) * k];
            for (c, &v) in src.iter().enumerate() {
                dst[c * MR + i] = v;
            }
        }
    }
    for (pi, panel) in p.panels.chunks_exact(k * NR).enumerate() {
        let c0 = pi * NR;
        let width = NR.min(p.n - c0);
        let bias = &p.bias[c0..c0 + width];
        for (g, a) in inter.chunks_exact(k * MR).enumerate() {
            let acc = t.tile(a, panel);
            for (i, row) in acc.iter().enumerate().take(MR.min(rows - g * MR)) {
                let r = g * MR + i;
                let dst = &mut out[r * p.n + c0..r * p.n + c0 + width];
                for ((d, &v), &b) in dst.iter_mut().zip(row).zip(bias) {
                    *d = v + b;
                }
            }
        }
    }
}

/// Plain loops, for any CPU.
struct Portable;

impl<const MR: usize> Tile<MR> for Portable {
    #[inline(always)]
    fn tile(&self, a: &[f32], panel: &[f32]) -> [[f32; NR]; MR] {
        let mut acc = [[0f32; NR]; MR];
        for (xs, w) in a.chunks_exact(MR).zip(panel.chunks_exact(NR)) {
            for (row, &x) in acc.iter_mut().zip(xs) {
                for (s, &wv) in row.iter_mut().zip(w) {
                    *s += x * wv;
                }
            }
        }
        acc
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Tile, NR};

    /// How far ahead (in values) the weights are asked for.
    const PREFETCH: usize = 64 * NR;

    /// Proof that the CPU has AVX-512F: each row's [`NR`] sums live in two registers.
    #[derive(Clone, Copy)]
    pub struct Avx512(());

    impl Avx512 {
        pub fn detect() -> Option<Self> {
            std::arch::is_x86_feature_detected!("avx512f").then_some(Self(()))
        }
    }

    impl<const MR: usize> Tile<MR> for Avx512 {
        #[inline(always)]
        fn tile(&self, a: &[f32], panel: &[f32]) -> [[f32; NR]; MR] {
            // SAFETY: `self` exists only on a CPU with AVX-512F (all the intrinsics need), and
            // every load and store stays within a slice of NR = 32 values (two sixteens).
            unsafe {
                let mut lo = [_mm512_setzero_ps(); MR];
                let mut hi = [_mm512_setzero_ps(); MR];
                for (xs, w) in a.chunks_exact(MR).zip(panel.chunks_exact(NR)) {
                    _mm_prefetch::<_MM_HINT_T0>(w.as_ptr().wrapping_add(PREFETCH).cast());
                    _mm_prefetch::<_MM_HINT_T0>(w.as_ptr().wrapping_add(PREFETCH + 16).cast());
                    let (w0, w1) = (_mm512_loadu_ps(w.as_ptr()), _mm512_loadu_ps(w.as_ptr().add(16)));
                    for i in 0..MR {
                        let x = _mm512_set1_ps(xs[i]);
                        lo[i] = _mm512_fmadd_ps(x, w0, lo[i]);
                        hi[i] = _mm512_fmadd_ps(x, w1, hi[i]);
                    }
                }
                let mut out = [[0f32; NR]; MR];
                for (i, row) in out.iter_mut().enumerate() {
                    _mm512_storeu_ps(row.as_mut_ptr(), lo[i]);
                    _mm512_storeu_ps(row.as_mut_ptr().add(16), hi[i]);
                }
                out
            }
        }
    }

    /// Proof that the CPU has AVX2 and FMA: each row's [`NR`] sums live in four registers.
    #[derive(Clone, Copy)]
    pub struct Avx2(());

    impl Avx2 {
        pub fn detect() -> Option<Self> {
            (std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma"))
                .then_some(Self(()))
        }
    }

    impl<const MR: usize> Tile<MR> for Avx2 {
        #[inline(always)]
        fn tile(&self, a: &[f32], panel: &[f32]) -> [[f32; NR]; MR] {
            // SAFETY: `self` exists only on a CPU with AVX2 and FMA (all the intrinsics need), and
            // every load and store stays within a slice of NR = 32 values (four eights).
            unsafe {
                let mut acc = [[_mm256_setzero_ps(); 4]; MR];
                for (xs, w) in a.chunks_exact(MR).zip(panel.chunks_exact(NR)) {
                    let ws = [
                        _mm256_loadu_ps(w.as_ptr()),
                        _mm256_loadu_ps(w.as_ptr().add(8)),
                        _mm256_loadu_ps(w.as_ptr().add(16)),
                        _mm256_loadu_ps(w.as_ptr().add(24)),
                    ];
                    for i in 0..MR {
                        let x = _mm256_set1_ps(xs[i]);
                        for (a, &w) in acc[i].iter_mut().zip(&ws) {
                            *a = _mm256_fmadd_ps(x, w, *a);
                        }
                    }
                }
                let mut out = [[0f32; NR]; MR];
                for (i, row) in out.iter_mut().enumerate() {
                    for (q, &a) in acc[i].iter().enumerate() {
                        _mm256_storeu_ps(row.as_mut_ptr().add(8 * q), a);
                    }
                }
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain triple loop.
    fn reference(w: &[f32], b: &[f32], x: &[f32], rows: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0f32; rows * n];
        for r in 0..rows {
            for c in 0..n {
                let mut s = f64::from(b[c]);
                for i in 0..k {
                    s += f64::from(x[r * k + i]) * f64::from(w[i * n + c]);
                }
                out[r * n + c] = s as f32;
            }
        }
        out
    }

    fn values(len: usize, seed: u32) -> Vec<f32> {
        // a fixed pseudo-random sequence in [-1, 1)
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn products_match_the_plain_loop_for_any_row_count_and_ragged_widths() {
        for (k, n) in [(384, 64), (7, 45), (33, 1), (16, 96)] {
            let w = values(k * n, 1);
            let b = values(n, 2);
            let p = Packed::new(&w, &b, k, n).expect("sizes");
            for rows in [1, 2, 3, 5, 8, 9, 17, 31] {
                let x = values(rows * k, rows as u32);
                let mut out = vec![f32::NAN; rows * n];
                p.forward(&x, rows, &mut out);
                let want = reference(&w, &b, &x, rows, k, n);
                for (got, want) in out.iter().zip(&want) {
                    assert!(
                        (got - want).abs() <= 1e-4 * (1.0 + want.abs()),
                        "k {k} n {n} rows {rows}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn each_kernel_this_cpu_has_gives_the_portable_sums() {
        let k = 50;
        let panel = values(k * NR, 10);
        let close = |got: &[[f32; NR]], want: &[[f32; NR]]| {
            for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
                assert!((g - w).abs() < 1e-4, "{g} vs {w}");
            }
        };
        let a8 = values(k * 8, 9);
        let a3 = values(k * 3, 11);
        let (want8, want3): ([[f32; NR]; 8], [[f32; NR]; 3]) = (Portable.tile(&a8, &panel), Portable.tile(&a3, &panel));
        assert!(want8.iter().flatten().all(|v| v.is_finite() && *v != 0.0));
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(cpu) = x86::Avx512::detect() {
                close(&Tile::<8>::tile(&cpu, &a8, &panel), &want8);
            }
            if let Some(cpu) = x86::Avx2::detect() {
                close(&Tile::<3>::tile(&cpu, &a3, &panel), &want3);
            }
        }
    }

    #[test]
    fn wrong_sizes_are_refused() {
        assert!(Packed::new(&values(40 * 32, 3), &values(32, 4), 40, 31).is_none());
        assert!(Packed::new(&values(40 * 32, 3), &values(31, 4), 40, 32).is_none());
    }
}
