//! WhatsApp Web session values, on SQLite and on PostgreSQL (`WAGATE_TEST_POSTGRES_URL`).

use jiff::Timestamp;
use wagate_domain::ids::LineId;
use wagate_store::{testing, SqlStore, WaSessionValue, WhatsAppSessionStore};

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn value(kind: &str, key: &str, value: &str, stamp: Option<i64>) -> WaSessionValue {
    WaSessionValue {
        kind: kind.into(),
        key_id: key.into(),
        value: value.into(),
        stamp,
    }
}

/// Opens the store of one backend; `reopen` opens the same database again, as a restarted
/// server would.
enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(String),
}

impl Db {
    async fn new(postgres: bool) -> Self {
        if postgres {
            Db::Postgres(testing::fresh_postgres_database().await.unwrap())
        } else {
            Db::Sqlite(tempfile::tempdir().unwrap())
        }
    }

    async fn open(&self) -> SqlStore {
        match self {
            Db::Sqlite(dir) => SqlStore::open_sqlite_dir(dir.path()).await.unwrap(),
            Db::Postgres(url) => SqlStore::open(url, Default::default()).await.unwrap(),
        }
    }
}

macro_rules! both {
    ($name:ident, $body:ident) => {
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$body(super::Db::new(false).await).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$body(super::Db::new(true).await).await;
            }
        }
    };
}

both!(values_survive_a_restart_per_line, survive_body);
async fn survive_body(db: Db) {
    let a = LineId::generate();
    let b = LineId::generate();
    let now = t("2026-01-01T00:00:00Z");
    {
        let store = db.open().await;
        store
            .wa_put(
                &a,
                &[
                    value("device", "", "sealed-device", None),
                    value("session", "k1", "s1", None),
                    value("session", "k2", "s2", None),
                    // The same key twice in one call: the last value counts.
                    value("session", "k2", "s2-new", None),
                ],
                now,
            )
            .await
            .unwrap();
        store
            .wa_put(&b, &[value("session", "k1", "other line", None)], now)
            .await
            .unwrap();
        // Replacing a value keeps one row.
        store
            .wa_put(&a, &[value("session", "k1", "s1-new", Some(5))], now)
            .await
            .unwrap();
    }
    let store = db.open().await;
    assert_eq!(
        store.wa_get(&a, "device", "").await.unwrap().as_deref(),
        Some("sealed-device")
    );
    assert_eq!(
        store.wa_get(&a, "session", "k1").await.unwrap().as_deref(),
        Some("s1-new")
    );
    assert_eq!(
        store.wa_get(&b, "session", "k1").await.unwrap().as_deref(),
        Some("other line")
    );
    assert_eq!(store.wa_get(&a, "session", "k3").await.unwrap(), None);
    let mut listed = store.wa_list(&a, "session").await.unwrap();
    listed.sort_by(|x, y| x.key_id.cmp(&y.key_id));
    assert_eq!(
        listed,
        vec![
            value("session", "k1", "s1-new", Some(5)),
            value("session", "k2", "s2-new", None)
        ]
    );
    let mut lines = vec![a.clone()];
    lines.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    assert_eq!(store.wa_lines_with("device").await.unwrap(), lines);

    // Deleting keys, kinds, stamped values and whole lines touches only what it names.
    store
        .wa_delete(&a, "session", &["k2".to_owned()])
        .await
        .unwrap();
    assert_eq!(store.wa_list(&a, "session").await.unwrap().len(), 1);
    assert_eq!(store.wa_delete_before(&a, "session", 5).await.unwrap(), 0);
    assert_eq!(store.wa_delete_before(&a, "session", 6).await.unwrap(), 1);
    store
        .wa_put(&a, &[value("prekey", "1", "p", None)], now)
        .await
        .unwrap();
    assert_eq!(store.wa_delete_kind(&a, "prekey").await.unwrap(), 1);
    assert_eq!(store.wa_forget(&a).await.unwrap(), 1);
    assert!(store.wa_lines_with("device").await.unwrap().is_empty());
    assert_eq!(
        store.wa_get(&b, "session", "k1").await.unwrap().as_deref(),
        Some("other line")
    );
}

both!(the_first_key_check_is_kept, key_check_body);
async fn key_check_body(db: Db) {
    let now = t("2026-01-01T00:00:00Z");
    {
        let store = db.open().await;
        assert_eq!(store.wa_key_check("first", now).await.unwrap(), "first");
    }
    let store = db.open().await;
    assert_eq!(store.wa_key_check("second", now).await.unwrap(), "first");
}

both!(a_large_batch_is_written_whole, large_batch_body);
async fn large_batch_body(db: Db) {
    let store = db.open().await;
    let line = LineId::generate();
    // More rows than one statement can bind (16,000 parameters / 6 per row).
    let values: Vec<_> = (0..3_000)
        .map(|i| value("prekey", &i.to_string(), "p", None))
        .collect();
    store
        .wa_put(&line, &values, t("2026-01-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(store.wa_list(&line, "prekey").await.unwrap().len(), 3_000);
    let keys: Vec<String> = (0..2_999).map(|i| i.to_string()).collect();
    store.wa_delete(&line, "prekey", &keys).await.unwrap();
    assert_eq!(
        store.wa_list(&line, "prekey").await.unwrap()[0].key_id,
        "2999"
    );
}
