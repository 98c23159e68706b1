//! Model artifacts carry a format version: an engine that starts on an artifact of the previous
//! format serves (the non-personal fallback), retrains in the background and swaps the new model
//! in, with no operator.

use serde_json::json;
use tailor_core::event::{Event, EventKind};
use tailor_core::time::now_millis;
use tailor_engine::{Engine, EngineConfig, RecsRequest};
use tailor_store::Row;
use tailor_testkit::{TestBackend, TestEngine};

fn request() -> RecsRequest {
    RecsRequest { context: "home".into(), k: 5, ..RecsRequest::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_artifact_of_the_previous_format_is_retrained_and_swapped_without_an_operator() {
    let t = TestEngine::new(TestBackend::Sqlite).await.expect("engine");
    let mut events = Vec::new();
    for c in 0..6 {
        for (n, p) in ["milk", "bread", "eggs", "jam"].iter().enumerate().skip(c % 2) {
            let id = format!("o-{c}-{n}");
            let raw = json!({"userId": format!("c{c}"), "event": "Order Completed", "messageId": id,
                "properties": {"order_id": id, "total": 2, "products": [{"product_id": p, "price": 2, "quantity": 1}]}});
            events.push(Event::parse(raw, Some(EventKind::Track), now_millis()).expect("event"));
        }
    }
    t.engine.ingest(&events).await.expect("ingest");
    let trained = t.engine.train_model(std::sync::Arc::new(|_: &str| {})).await.expect("train");
    // Rewrite the stored artifact as the first format wrote it: the same encoding, no header.
    let bytes: Vec<u8> = sqlx::query("SELECT artifact FROM models WHERE version = $1")
        .bind(trained.version)
        .fetch_one(t.engine.db().reader())
        .await
        .expect("artifact")
        .get(0);
    assert_eq!(tailor_recs::artifact_format(&bytes), tailor_recs::FORMAT_VERSION);
    sqlx::query("UPDATE models SET artifact = $1 WHERE version = $2")
        .bind(bytes[8..].to_vec())
        .bind(trained.version)
        .execute(t.engine.db().writer())
        .await
        .expect("downgrade");
    t.engine.close().await;

    let engine = Engine::open(EngineConfig { storage: t.storage.clone(), background: true, retrain_every: None })
        .await
        .expect("an old artifact does not stop the engine");
    let first = engine.recommend(&request()).await.expect("it serves at once");
    assert!(!first.items.is_empty(), "the fallback or the new model answers");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while engine.model_version() != Some(trained.version + 1) {
        assert!(std::time::Instant::now() < deadline, "no retrained model was swapped in");
        tokio::task::yield_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let answer = engine.recommend(&request()).await.expect("served by the new model");
    assert_eq!(answer.model_version, Some(trained.version + 1));
    engine.close().await;
}
