//! Optional floats bind on both backends through [`Float`]: a NULL then a value (and back) on
//! one PostgreSQL connection, which caches the statement with the first call's parameter types.
//! The test also pins the sqlx behaviour `Float` works around, so that an upgrade which fixes
//! it says so here.

use sqlx::{Connection, Row};
use tailor_store::Float;

async fn roundtrip(url: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(url).await.expect("connect");
    sqlx::query("CREATE TEMPORARY TABLE floats (n BIGINT NOT NULL, v DOUBLE PRECISION)")
        .execute(&mut conn)
        .await
        .expect("create");
    let values = [None, Some(21.79), None, Some(-3.5), Some(1e300)];
    for (n, v) in values.iter().enumerate() {
        sqlx::query("INSERT INTO floats (n, v) VALUES ($1, $2)")
            .bind(n as i64)
            .bind(Float(*v))
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("bind {v:?}: {e}"));
    }
    let rows = sqlx::query("SELECT v FROM floats ORDER BY n").fetch_all(&mut conn).await.expect("read");
    let read: Vec<Option<f64>> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(read, values);
}

#[tokio::test]
async fn optional_floats_bind_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    roundtrip(&format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display())).await;
}

#[tokio::test]
async fn optional_floats_bind_on_postgres() {
    let Ok(url) = std::env::var("TAILOR_TEST_POSTGRES_URL") else {
        assert!(std::env::var_os("CI").is_none(), "CI must run the PostgreSQL tests: set TAILOR_TEST_POSTGRES_URL");
        eprintln!("skipping the PostgreSQL run: set TAILOR_TEST_POSTGRES_URL to run it");
        return;
    };
    roundtrip(&url).await;
    // What `Float` works around: a plain `Option<f64>` NULL prepares the statement as float4.
    let mut conn = sqlx::AnyConnection::connect(&url).await.expect("connect");
    sqlx::query("CREATE TEMPORARY TABLE plain (v DOUBLE PRECISION)").execute(&mut conn).await.expect("create");
    let insert = "INSERT INTO plain (v) VALUES ($1)";
    sqlx::query(insert).bind(None::<f64>).execute(&mut conn).await.expect("a NULL");
    let then = sqlx::query(insert).bind(Some(21.79)).execute(&mut conn).await;
    assert!(then.is_err(), "sqlx now binds a NULL f64 as float8: Float is no longer needed (bind Option<f64> again)");
}
