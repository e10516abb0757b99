//! Sessions in wagate's database: they survive a restart, a wrong server key stops the server
//! at start, and a corrupted value breaks its own line only. Both backends.

mod support;

use std::sync::Arc;

use support::{secret, wall, Db};
use wagate_domain::ids::LineId;
use wagate_whatsapp::backend::{kind, LineBackend};
use wagate_whatsapp::seal::SealKey;
use wagate_whatsapp::{Options, WhatsAppConnector};
use whatsapp_rust::wacore::store::traits::{DeviceStore, SignalStore};
use whatsapp_rust::wacore::store::Device;
use whatsapp_rust::Jid;

fn backend(store: Arc<dyn wagate_store::Store>, key: u8, line: &LineId) -> LineBackend {
    LineBackend::new(
        store,
        Arc::new(SealKey::from_base64(&secret(key)).unwrap()),
        wall(),
        line.clone(),
    )
}

fn linked_device(phone: &str) -> Device {
    let mut device = Device::new();
    device.pn = Some(Jid::pn(phone));
    device.push_name = "Ana's shop".into();
    device
}

both!(a_linked_session_survives_a_restart, restart_body);
async fn restart_body(db: Db) {
    let line = LineId::generate();
    let device = linked_device("5511987650001");
    {
        let store = db.open().await;
        WhatsAppConnector::open(store.clone(), &secret(1), wall(), Options::default())
            .await
            .unwrap();
        let b = backend(store, 1, &line);
        assert!(!b.exists().await.unwrap());
        b.save(&device).await.unwrap();
        b.put_session("5511987650002.0", b"ratchet state")
            .await
            .unwrap();
        b.put_identity("5511987650002.0", [9; 32]).await.unwrap();
        b.store_prekey(7, b"prekey", false).await.unwrap();
        b.mark_prekeys_uploaded(&[7, 8]).await.unwrap();
    }
    let store = db.open().await;
    WhatsAppConnector::open(store.clone(), &secret(1), wall(), Options::default())
        .await
        .unwrap();
    let b = backend(store.clone(), 1, &line);
    let loaded = b.load().await.unwrap().unwrap();
    assert_eq!(loaded.pn, device.pn);
    assert_eq!(loaded.push_name, "Ana's shop");
    assert_eq!(
        loaded.identity_key.public_key, device.identity_key.public_key,
        "the device's identity key comes back as it was"
    );
    assert_eq!(
        b.linked_phone().await.unwrap().as_deref(),
        Some("+5511987650001")
    );
    assert_eq!(
        b.get_session("5511987650002.0").await.unwrap().as_deref(),
        Some(&b"ratchet state"[..])
    );
    assert_eq!(
        b.load_identity("5511987650002.0").await.unwrap(),
        Some([9; 32])
    );
    assert_eq!(
        b.load_prekey(7).await.unwrap().as_deref(),
        Some(&b"prekey"[..])
    );
    // Marking uploaded never resurrects a key that is not there.
    assert_eq!(b.load_prekey(8).await.unwrap(), None);
    assert_eq!(b.get_max_prekey_id().await.unwrap(), 7);

    // Nothing readable in the database: neither the contact's number nor the values.
    for k in [kind::SESSION, kind::IDENTITY, kind::DEVICE] {
        for row in store.wa_list(&line, k).await.unwrap() {
            assert!(!row.key_id.contains("5511987650002"));
            assert!(!row.value.contains("ratchet"));
        }
    }

    // Forgetting the line leaves nothing behind.
    b.forget().await.unwrap();
    assert!(b.load().await.unwrap().is_none());
    assert!(b.get_session("5511987650002.0").await.unwrap().is_none());
}

both!(a_wrong_server_key_stops_the_server_at_start, wrong_key_body);
async fn wrong_key_body(db: Db) {
    let line = LineId::generate();
    {
        let store = db.open().await;
        WhatsAppConnector::open(store.clone(), &secret(1), wall(), Options::default())
            .await
            .unwrap();
        backend(store, 1, &line)
            .save(&linked_device("5511987650001"))
            .await
            .unwrap();
    }
    let store = db.open().await;
    let err = WhatsAppConnector::open(store.clone(), &secret(2), wall(), Options::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("WAGATE_SECRET_KEY is not the key"),
        "a clear error, not a silent re-link: {err}"
    );
    // A malformed key is refused before the database is asked.
    let err = WhatsAppConnector::open(store.clone(), "c2hvcnQ=", wall(), Options::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("must be 32 bytes"), "{err}");
    // The right key still opens everything.
    WhatsAppConnector::open(store.clone(), &secret(1), wall(), Options::default())
        .await
        .unwrap();
    assert!(backend(store, 1, &line).load().await.unwrap().is_some());
}

both!(a_corrupted_value_breaks_its_own_line_only, corrupted_body);
async fn corrupted_body(db: Db) {
    let store = db.open().await;
    let (a, b) = (LineId::generate(), LineId::generate());
    for line in [&a, &b] {
        backend(store.clone(), 1, line)
            .save(&linked_device("5511987650001"))
            .await
            .unwrap();
    }
    // Flip one character of line a's sealed device.
    let mut rows = store.wa_list(&a, kind::DEVICE).await.unwrap();
    let row = &mut rows[0];
    let mut chars: Vec<char> = row.value.chars().collect();
    chars[20] = if chars[20] == 'A' { 'B' } else { 'A' };
    row.value = chars.into_iter().collect();
    store
        .wa_put(&a, &rows, jiff::Timestamp::UNIX_EPOCH)
        .await
        .unwrap();
    // Copy line b's sealed device over to a third line: it must not open there either.
    let c = LineId::generate();
    let mut copied = store.wa_list(&b, kind::DEVICE).await.unwrap();
    // Filed under the name line c's device would have.
    copied[0].key_id = SealKey::from_base64(&secret(1))
        .unwrap()
        .key_id(&c, kind::DEVICE, "");
    store
        .wa_put(&c, &copied, jiff::Timestamp::UNIX_EPOCH)
        .await
        .unwrap();

    for broken in [&a, &c] {
        let err = match backend(store.clone(), 1, broken).load().await {
            Err(err) => err,
            Ok(found) => panic!("line {broken}: the device loaded ({})", found.is_some()),
        };
        let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(
            chain.contains("corrupted WhatsApp session value (device) of line"),
            "{chain}"
        );
        assert!(chain.contains(broken.as_str()), "{chain}");
    }
    assert!(backend(store.clone(), 1, &b)
        .load()
        .await
        .unwrap()
        .is_some());
}
