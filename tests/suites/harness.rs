//! The test harness itself: what every suite relies on.

use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::common::TestDb;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Before: a test that failed before its last line left its PostgreSQL database behind (only
/// `.ci/run` swept them, after the whole run). Now the database goes with the test's `TestDb`,
/// however the test ends.
#[actix_web::test]
async fn a_test_database_is_dropped_even_when_its_test_fails() {
    let Some(db) = TestDb::postgres().await else { return };
    let name = db.url.rsplit('/').next().unwrap().to_owned();
    let failed = std::thread::spawn(move || {
        let _db = db;
        panic!("a failing test");
    })
    .join();
    assert!(failed.is_err());
    let admin = std::env::var("TEST_DATABASE_URL").unwrap();
    let mut conn = AsyncPgConnection::establish(&admin).await.unwrap();
    let left: Vec<Count> =
        diesel::sql_query(format!("SELECT count(*)::bigint AS n FROM pg_database WHERE datname = '{name}'"))
            .load(&mut conn)
            .await
            .unwrap();
    assert_eq!(left[0].n, 0, "{name} was left behind");
}
