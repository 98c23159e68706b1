//! The recommendation sources on small data whose right answers are known.

use std::io::Write;

use tailor_recs::als::{Als, AlsConfig};
use tailor_recs::data::Dataset;
use tailor_recs::eval::{evaluate, Protocol};
use tailor_recs::knn::ItemKnn;
use tailor_recs::topk::top_k;

/// Two taste groups: users 0–9 buy items a0..a4, users 10–19 buy b0..b4; each user misses one.
fn two_groups() -> Dataset {
    let mut csv = String::from("user,item,timestamp\n");
    for u in 0..20 {
        let group = if u < 10 { "a" } else { "b" };
        for i in 0..5 {
            if i != u % 5 {
                csv.push_str(&format!("u{u},{group}{i},{}\n", 1_600_000_000 + i * 86_400));
            }
        }
    }
    let mut f = tempfile_path("groups.csv");
    f.1.write_all(csv.as_bytes()).expect("write");
    Dataset::read_csv(&f.0).expect("read")
}

fn tempfile_path(name: &str) -> (std::path::PathBuf, std::fs::File) {
    let dir = std::env::temp_dir().join(format!("tailor-recs-{}-{name}", std::process::id()));
    let file = std::fs::File::create(&dir).expect("create");
    (dir, file)
}

#[test]
fn als_recommends_the_missing_item_of_the_users_group() {
    let data = two_groups();
    let als = Als::train(
        &data.counts(),
        data.items.len(),
        &AlsConfig { factors: 2, iterations: 15, alpha: 10.0, regularization: 0.1, ..Default::default() },
        &|_| {},
    );
    let mut scores = vec![0f32; data.items.len()];
    for u in 0..20usize {
        als.scores(u, &mut scores);
        let bought: Vec<u32> = data.rows.iter().filter(|r| r.user as usize == u).map(|r| r.item).collect();
        let best = top_k(&scores, 1, |i| bought.contains(&(i as u32)))[0].0;
        let name = &data.items[best as usize];
        let group = if u < 10 { "a" } else { "b" };
        assert_eq!(name, &format!("{group}{}", u % 5), "user {u}");
    }
}

#[test]
fn item_neighbours_stay_within_the_group() {
    let data = two_groups();
    let knn = ItemKnn::train(&data.counts(), data.items.len(), 10, None);
    for (i, name) in data.items.iter().enumerate() {
        for (j, sim) in knn.similar(i as u32, 4) {
            assert!(data.items[j as usize].starts_with(&name[..1]), "{name} ~ {}", data.items[j as usize]);
            assert!(sim > 0.0 && sim <= 1.0);
        }
    }
}

#[test]
fn metrics_follow_the_reference_definitions() {
    let data = two_groups();
    let mut test = data.clone_empty();
    let f = tempfile_path("test.csv").0;
    std::fs::write(&f, "user,item,timestamp\nu0,a0,1700000000\nu0,a1,1700000000\nu1,a1,1700000000\nu2,zz,1700000000\n")
        .expect("write");
    test.extend_from_csv(&f, true, false).expect("read");
    let idx = |n: &str| data.item_index[n];
    let mut lists = vec![Vec::new(); test.users.len()];
    // u0 never had a0 (novel) but had a1; the list puts a1 first, then a0.
    lists[test.user_index["u0"] as usize] = vec![idx("a1"), idx("a0"), idx("b0")];
    // u1 never had a1: a hit at rank 3.
    lists[test.user_index["u1"] as usize] = vec![idx("b0"), idx("b1"), idx("a1")];
    let novel = evaluate(&data, &test, &lists, Protocol::Novel);
    assert_eq!(novel.scored_users, 2, "u2's only test item is outside the vocabulary");
    assert_eq!(novel.hr10, 1.0);
    // u0: a1 is dropped (already bought), a0 moves to rank 1 → NDCG 1; u1: hit at rank 3 → 1/log2(4) = 0.5.
    assert!((novel.ndcg10 - 0.75).abs() < 1e-9, "{}", novel.ndcg10);
    assert_eq!(novel.short_lists, 2);
    let repeats = evaluate(&data, &test, &lists, Protocol::Repeats);
    // u0's relevant set is {a0, a1} at ranks 1 and 2: NDCG 1.
    assert!((repeats.ndcg10 - 0.75).abs() < 1e-9, "{}", repeats.ndcg10);
    assert!((repeats.recall20 - 1.0).abs() < 1e-9);
}

#[test]
fn a_large_catalog_gets_an_index_and_still_recommends_the_group_item() {
    use std::collections::HashMap;
    use tailor_recs::model::{Model, ModelConfig, TrainingSet};
    use tailor_recs::recommend::{Query, Rules, Shopper, Surface};

    let data = two_groups();
    let set = TrainingSet { data: &data, attributes: vec![None; data.items.len()], store_region: HashMap::new() };
    let mut cfg = ModelConfig { ann_min_items: 1, min_buyers: 1, ..ModelConfig::default() };
    cfg.als = AlsConfig { factors: 2, iterations: 15, alpha: 10.0, regularization: 0.1, ..Default::default() };
    let model = Model::train(&set, &cfg, &|_| {});
    assert!(model.als_index.is_some(), "the index is built from ann_min_items on");
    let mut weights = model.novel_weights;
    weights = tailor_recs::model::Weights {
        als: 1.0,
        knn: 0.0,
        ease: 0.0,
        popularity: 0.0,
        trending: 0.0,
        catching_on: 0.0,
        category: 0.0,
        ..weights
    };
    for u in [0usize, 13] {
        let purchases: Vec<(u32, i64)> =
            data.rows.iter().filter(|r| r.user as usize == u).map(|r| (r.item, r.ts)).collect();
        let shopper =
            Shopper { user: Some(u as u32), purchases: purchases.into(), personal: true, ..Shopper::default() };
        let query = Query {
            surface: Surface::Home,
            anchors: vec![],
            store: None,
            k: 1,
            now: 1_600_500_000,
            utc_offset_secs: 0,
            weather: None,
            novel: true,
            kind: None,
        };
        let answer = model.recommend_weighted(&shopper, &query, &Rules::default(), &weights);
        let group = if u < 10 { "a" } else { "b" };
        let first = answer.items.first().map(|i| model.items[i.item as usize].clone());
        assert_eq!(first, Some(format!("{group}{}", u % 5)), "user {u}");
    }
}
