//! Durability: the server is killed with SIGKILL in the middle of batch intake, several times;
//! every event that was answered 200 is in the store after the restart.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::json;
use tailor_engine::{Engine, EngineConfig, Storage};

const BIN: &str = env!("CARGO_BIN_EXE_tailor");

fn start(dir: &Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("TAILOR_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tailor serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("read banner");
    let addr = line.trim().rsplit("http://").next().expect("address").to_string();
    (child, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_event_survives_sigkill() {
    let dir = tempfile::tempdir().expect("dir");
    let out = Command::new(BIN)
        .args(["keys", "create", "--scope", "write", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("keys");
    let key = String::from_utf8(out.stdout).expect("utf8").trim().to_string();
    assert!(key.starts_with("tk_write_"), "keys create prints only the key: {key:?}");

    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let http = reqwest::Client::new();
    for round in 0..3 {
        let (mut child, addr) = start(dir.path());
        let batches_acked = Arc::new(AtomicUsize::new(0));
        let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
        let kill_tx = Arc::new(Mutex::new(Some(kill_tx)));
        let mut clients = Vec::new();
        for client in 0..4 {
            let (http, key, addr, acked, batches_acked, kill_tx) =
                (http.clone(), key.clone(), addr.clone(), acked.clone(), batches_acked.clone(), kill_tx.clone());
            clients.push(tokio::spawn(async move {
                for b in 0.. {
                    let ids: Vec<String> = (0..200).map(|i| format!("r{round}-c{client}-b{b}-e{i}")).collect();
                    let batch: Vec<_> = ids
                        .iter()
                        .map(|id| {
                            json!({"type": "track", "event": "Product Viewed", "messageId": id,
                        "anonymousId": format!("anon-{client}-{}", b % 7), "properties": {"product_id": "p1"}})
                        })
                        .collect();
                    let res = http
                        .post(format!("http://{addr}/v1/batch"))
                        .basic_auth(&key, Some(""))
                        .json(&json!({"batch": batch}))
                        .send()
                        .await;
                    match res {
                        Ok(r) if r.status().is_success() => {
                            acked.lock().expect("lock").extend(ids);
                            // Kill once enough batches are in flight from every client.
                            if batches_acked.fetch_add(1, Ordering::SeqCst) + 1 == 12 {
                                if let Some(tx) = kill_tx.lock().expect("lock").take() {
                                    let _ = tx.send(());
                                }
                            }
                        }
                        _ => return,
                    }
                }
            }));
        }
        kill_rx.await.expect("enough batches acknowledged");
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        for c in clients {
            c.await.expect("client");
        }
    }

    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() >= 3 * 12 * 200, "only {} events were acknowledged", acked.len());
    let engine = Engine::open(EngineConfig {
        storage: Storage::Embedded(dir.path().to_path_buf()),
        background: false,
        retrain_every: None,
    })
    .await
    .expect("reopen");
    let stored = engine.log().count().await.expect("count") as usize;
    assert!(stored >= acked.len(), "{stored} stored < {} acknowledged", acked.len());
    let mut missing = 0;
    for id in &acked {
        if !engine.log().contains("cli", id).await.expect("lookup") {
            missing += 1;
        }
    }
    assert_eq!(missing, 0, "{missing} acknowledged events were lost");
    // The projection resumes where it stopped and reaches the head of the log.
    engine.sync().await.expect("projection resumes");
    assert_eq!(engine.stats().await.expect("stats").projection_lag, 0);
}
