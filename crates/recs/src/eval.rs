//! Offline evaluation with exactly the definitions of `shared/bench/recs/score.py`.

use std::collections::HashSet;

use crate::data::Dataset;

/// Which items count as relevant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Only test items the user never had in train; items they had are dropped from the lists.
    Novel,
    /// Every test item in the train vocabulary; lists are scored as they are.
    Repeats,
}

/// The metrics of one evaluation.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Metrics {
    /// Users with a non-empty relevant set.
    pub scored_users: usize,
    /// Scored users whose list had fewer than 20 usable items.
    pub short_lists: usize,
    /// Share of users with a hit in the top 10.
    pub hr10: f64,
    /// NDCG@10 with binary gains.
    pub ndcg10: f64,
    /// Hits in the top 20 / relevant items.
    pub recall20: f64,
    /// Distinct items in all top-10 lists / train items.
    pub coverage10: f64,
}

/// Scores ranked lists (`lists[u]`, user indexes of `train`, items best first) against the
/// test rows, which use `train`'s item indexes; test users unknown to train have indexes at or
/// beyond `train.users.len()` and no list unless one is given.
pub fn evaluate(train: &Dataset, test: &Dataset, lists: &[Vec<u32>], protocol: Protocol) -> Metrics {
    let users = test.users.len().max(train.users.len());
    let mut seen: Vec<HashSet<u32>> = vec![HashSet::new(); users];
    let mut vocab = HashSet::new();
    for r in &train.rows {
        seen[r.user as usize].insert(r.item);
        vocab.insert(r.item);
    }
    let mut relevant: Vec<HashSet<u32>> = vec![HashSet::new(); users];
    for r in &test.rows {
        if vocab.contains(&r.item) && (protocol == Protocol::Repeats || !seen[r.user as usize].contains(&r.item)) {
            relevant[r.user as usize].insert(r.item);
        }
    }
    let disc: Vec<f64> = (0..20).map(|k| 1.0 / ((k + 2) as f64).log2()).collect();
    let mut m = Metrics::default();
    let mut covered = HashSet::new();
    for (u, rel) in relevant.iter().enumerate() {
        if rel.is_empty() {
            continue;
        }
        m.scored_users += 1;
        let mut got: Vec<u32> = Vec::with_capacity(20);
        for &i in lists.get(u).map(Vec::as_slice).unwrap_or(&[]) {
            if protocol == Protocol::Novel && seen[u].contains(&i) {
                continue;
            }
            if !got.contains(&i) {
                got.push(i);
            }
            if got.len() == 20 {
                break;
            }
        }
        if got.len() < 20 {
            m.short_lists += 1;
        }
        let hits: Vec<bool> = got.iter().map(|i| rel.contains(i)).collect();
        if hits.iter().take(10).any(|h| *h) {
            m.hr10 += 1.0;
        }
        let dcg: f64 = hits.iter().take(10).zip(&disc).filter(|(h, _)| **h).map(|(_, d)| d).sum();
        let idcg: f64 = disc.iter().take(rel.len().min(10)).sum();
        m.ndcg10 += dcg / idcg;
        m.recall20 += hits.iter().filter(|h| **h).count() as f64 / rel.len() as f64;
        covered.extend(got.iter().take(10).copied());
    }
    let n = m.scored_users.max(1) as f64;
    m.hr10 /= n;
    m.ndcg10 /= n;
    m.recall20 /= n;
    m.coverage10 = covered.len() as f64 / vocab.len().max(1) as f64;
    m
}

/// HR@10 and NDCG@10 of completed carts as `shared/bench/recs/cart.py score` computes them:
/// `cases[c]` is a cart and its hidden item, `lists[c]` the items ranked for it (best first);
/// cart items in a list are skipped and the first 10 others count; a hit is the hidden item
/// among them. `scored_users` is the number of cases.
pub fn evaluate_carts<T: PartialEq>(cases: &[(Vec<T>, T)], lists: &[Vec<T>]) -> Metrics {
    let mut m = Metrics { scored_users: cases.len(), ..Metrics::default() };
    for (c, (cart, hidden)) in cases.iter().enumerate() {
        let list = lists.get(c).map(Vec::as_slice).unwrap_or(&[]);
        let mut top = list.iter().filter(|i| !cart.contains(i)).take(10);
        if let Some(rank) = top.position(|i| i == hidden) {
            m.hr10 += 1.0;
            m.ndcg10 += 1.0 / ((rank + 2) as f64).log2();
        }
    }
    let n = cases.len().max(1) as f64;
    m.hr10 /= n;
    m.ndcg10 /= n;
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carts_are_scored_past_their_own_items_like_cart_py() {
        let cases = vec![(vec![1, 2], 3), (vec![1], 9), (vec![5], 7)];
        // Case 0: cart items first do not count, so 3 is at rank 1 (NDCG 1). Case 1: a miss.
        // Case 2: 7 at rank 11 of the non-cart items is a miss.
        let lists = vec![vec![1, 2, 3], vec![4, 5], (8..18).chain([7]).collect()];
        let m = evaluate_carts(&cases, &lists);
        assert_eq!(m.scored_users, 3);
        assert!((m.hr10 - 1.0 / 3.0).abs() < 1e-9 && (m.ndcg10 - 1.0 / 3.0).abs() < 1e-9, "{m:?}");
        let second = evaluate_carts(&[(vec![], 2)], &[vec![1, 2]]);
        assert!((second.ndcg10 - 1.0 / 3f64.log2()).abs() < 1e-9);
    }
}
