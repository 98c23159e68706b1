//! The seam for hybrid search: an [`Embedder`] turns text into a vector (the assistant's
//! sentence model, once it ships), and [`fuse_semantic`] turns the nearest products into the
//! similarity hits a [`crate::SearchQuery`] fuses with the words' matches.

/// Turns text into a unit-length sentence embedding; `None` when it cannot (no model loaded).
pub trait Embedder: Send + Sync {
    /// The embedding of `text`.
    fn embed(&self, text: &str) -> Option<Vec<f32>>;
}

/// The `k` products nearest to `query` among `products` (id, unit vector), by cosine
/// similarity mapped to [0, 1], best first: the `semantic` hits of a search. Vectors of
/// another length than the query's are skipped.
pub fn fuse_semantic<'a>(
    query: &[f32],
    products: impl IntoIterator<Item = (&'a str, &'a [f32])>,
    k: usize,
) -> Vec<(String, f32)> {
    let mut hits: Vec<(String, f32)> = products
        .into_iter()
        .filter(|(_, v)| v.len() == query.len())
        .map(|(id, v)| {
            let cos: f32 = v.iter().zip(query).map(|(a, b)| a * b).sum();
            (id.to_string(), if cos.is_finite() { (cos.clamp(-1.0, 1.0) + 1.0) / 2.0 } else { 0.0 })
        })
        .collect();
    hits.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    hits.truncate(k);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_vectors_come_first() {
        let a = [1.0, 0.0];
        let b = [0.0, 1.0];
        let c = [0.6, 0.8];
        let hits = fuse_semantic(&[1.0, 0.0], [("a", &a[..]), ("b", &b[..]), ("c", &c[..]), ("bad", &[1.0][..])], 2);
        assert_eq!(hits.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(), ["a", "c"]);
        assert!((hits[0].1 - 1.0).abs() < 1e-6);
    }
}
