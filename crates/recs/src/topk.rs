//! Picking the best k of many scores.

/// The `k` highest-scoring indexes of `scores`, best first, skipping those `excluded` says.
pub fn top_k(scores: &[f32], k: usize, excluded: impl Fn(usize) -> bool) -> Vec<(u32, f32)> {
    let mut best: Vec<(u32, f32)> = Vec::with_capacity(k + 1);
    let mut floor = f32::NEG_INFINITY;
    for (i, &s) in scores.iter().enumerate() {
        if s.is_nan() || (best.len() == k && s <= floor) || excluded(i) {
            continue;
        }
        let pos = best.partition_point(|&(_, b)| b >= s);
        best.insert(pos, (i as u32, s));
        if best.len() > k {
            best.pop();
        }
        if best.len() == k {
            floor = best[k - 1].1;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_best_in_order() {
        let got = super::top_k(&[0.1, 0.9, 0.5, 0.7, 0.3], 3, |i| i == 3);
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [1, 2, 4]);
    }
}
