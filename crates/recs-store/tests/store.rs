//! Recommendation storage on SQLite and PostgreSQL: versions kept and pruned, artifacts
//! replaced and deleted, rules and weather read back as written.

use tailor_core::time::now_millis;
use tailor_recs::situation::Weather;
use tailor_recs::{BoostRule, Merchandising};
use tailor_recs_store::{self as store, TrainSummary, KEEP_VERSIONS, WEATHER_MILLIS};
use tailor_testkit::TestEngine;

fn summary(trained_at: i64) -> TrainSummary {
    TrainSummary {
        version: 0,
        interactions: 10,
        customers: 2,
        products: 3,
        seconds: 0.5,
        validation_ndcg: Some((0.25, 0.125)),
        trained_at,
    }
}

async fn versions_are_numbered_and_the_newest_are_kept(t: &TestEngine) {
    let db = t.engine.db();
    assert_eq!(store::newest_artifact(db).await.expect("newest"), None);
    let now = now_millis();
    for n in 1..=KEEP_VERSIONS + 2 {
        let saved = store::save_model(db, summary(now + n), vec![n as u8; 4]).await.expect("save");
        assert_eq!(saved.version, n);
    }
    let mut versions = store::versions(db).await.expect("versions");
    versions.sort_unstable();
    assert_eq!(versions, (3..=KEEP_VERSIONS + 2).collect::<Vec<_>>());
    let newest = KEEP_VERSIONS + 2;
    assert_eq!(store::newest_artifact(db).await.expect("newest"), Some((newest, vec![newest as u8; 4])));
    let listed = store::summaries(db).await.expect("summaries");
    assert_eq!(listed.iter().map(|s| s.version).collect::<Vec<_>>(), vec![5, 4, 3]);
    assert_eq!((listed[0].trained_at, listed[0].validation_ndcg), (now + 5, Some((0.25, 0.125))));

    store::replace_artifact(db, 4, vec![9, 9]).await.expect("replace");
    assert_eq!(store::artifact(db, 4).await.expect("artifact"), Some(vec![9, 9]));
    store::delete_version(db, 4).await.expect("delete");
    assert_eq!(store::artifact(db, 4).await.expect("artifact"), None);
}

async fn rules_and_weather_read_back(t: &TestEngine) {
    let db = t.engine.db();
    let rules = Merchandising {
        max_per_brand: Some(2),
        boosts: vec![BoostRule { product_id: None, category: Some("SOUP".into()), brand: None, factor: 1.5 }],
        pins: vec!["p1".into()],
        ..Merchandising::default()
    };
    let now = now_millis();
    store::set_merchandising(db, &rules, now).await.expect("set");
    assert_eq!(store::merchandising(db).await.expect("read"), Some(rules));

    store::set_weather(db, "S1", Weather::Rain, Some(12.5), now).await.expect("weather");
    assert_eq!(store::weather_at(db, "S1", now).await.expect("read"), Some(Weather::Rain));
    assert_eq!(store::weather_at(db, "S1", now + WEATHER_MILLIS + 1).await.expect("read"), None, "too old");
    assert_eq!(store::weather_at(db, "S2", now).await.expect("read"), None);
    store::set_weather(db, "S1", Weather::Snow, None, now).await.expect("weather");
    assert_eq!(store::weather_at(db, "S1", now).await.expect("read"), Some(Weather::Snow));
}

tailor_testkit::both_backends!(versions_are_numbered_and_the_newest_are_kept, rules_and_weather_read_back);
