use patchbay_store::*;
use sqlx::{Connection, Row};
use std::time::Instant;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch() {
    let dir = tempfile::tempdir_in(std::env::var("SCRATCH_DIR").unwrap_or("/tmp".into())).unwrap();
    let path = dir.path().join("p.db");
    let store = SqliteStore::open(SqliteOptions::new(&path)).await.unwrap();
    let mk = |k: Option<String>| NewRun {
        id: RunId::now_v7(),
        flow: "f".into(),
        trigger: "webhook".into(),
        input: serde_json::json!({"order_id": 123, "total_cents": 1250, "currency":"eur","items":[1,2,3]}),
        headers: serde_json::json!({"webhook-id": "abc", "content-type": "application/json"}),
        config_version: "v1".into(),
        dedupe_key: k,
    };
    for bs in [1usize, 10, 100, 1, 10, 100] {
        let n = 20000;
        let t = Instant::now();
        let mut i = 0;
        while i < n {
            let batch: Vec<_> = (0..bs)
                .map(|j| mk(Some(format!("k{bs}-{}-{:?}", i + j, t))))
                .collect();
            store.enqueue(&batch).await.unwrap();
            i += bs;
        }
        let el = t.elapsed();
        println!("batch {bs}: {:.0} runs/s", n as f64 / el.as_secs_f64());
    }
    let t = Instant::now();
    let mut c = 0;
    loop {
        let r = store
            .claim("w", 100, std::time::Duration::from_secs(60))
            .await
            .unwrap();
        if r.is_empty() {
            break;
        }
        c += r.len();
    }
    println!("claimed {c} in {:?}", t.elapsed());
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    let sql = "EXPLAIN QUERY PLAN UPDATE runs
SET status = 'running', lease_owner = $1, lease_expires_at = $2, attempts = attempts + 1,
    updated_at = $3
WHERE id IN (
    SELECT id FROM (
        SELECT id, next_attempt_at FROM (
            SELECT id, next_attempt_at FROM runs
            WHERE status = 'queued' AND next_attempt_at <= $3
            ORDER BY next_attempt_at, id LIMIT $4)
        UNION ALL
        SELECT id, next_attempt_at FROM (
            SELECT id, next_attempt_at FROM runs INDEXED BY runs_lease
            WHERE status = 'running' AND lease_expires_at < $3
            ORDER BY lease_expires_at LIMIT $4)
    )
    ORDER BY next_attempt_at, id LIMIT $4) RETURNING id";
    for q in [
        sql,
        "EXPLAIN QUERY PLAN SELECT id FROM runs WHERE flow = $1 ORDER BY id DESC LIMIT 5",
        "EXPLAIN QUERY PLAN SELECT seq FROM journal WHERE run_id = $1 ORDER BY seq",
    ] {
        let rows = sqlx::query(q)
            .bind("x")
            .bind(1i64)
            .bind(2i64)
            .bind(3i64)
            .fetch_all(&mut conn)
            .await
            .unwrap();
        for r in rows {
            let d: String = r.get(3);
            println!("{d}");
        }
        println!("--");
    }
}
