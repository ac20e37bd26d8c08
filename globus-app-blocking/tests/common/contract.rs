//! The contract every token storage keeps, checked on each of them.

use globus_app_blocking::proto::UnixTime;
use globus_app_blocking::proto::secret::{AccessToken, RefreshToken};
use globus_app_blocking::proto::token::TokenData;
use globus_app_blocking::storage::TokenStorage;

/// A full record for `rs` with access token `token`, and an unknown field.
pub fn record(rs: &str, token: &str) -> TokenData {
    let mut extra = serde_json::Map::new();
    extra.insert("future_field".into(), serde_json::json!({"kept": [1, 2]}));
    let mut record = TokenData::new(
        rs,
        format!("urn:globus:auth:scope:{rs}:all"),
        AccessToken::new(token),
        UnixTime::from_secs(1_900_000_000),
    );
    record.identity_id = Some("c8aad43e-d274-11e5-bf98-8b02896cf782".into());
    record.refresh_token = Some(RefreshToken::new(format!("{token}-refresh")));
    record.extra = extra;
    record
}

/// The access token stored for `rs`, if any.
pub fn token_of(storage: &dyn TokenStorage, rs: &str) -> Option<String> {
    storage
        .load()
        .unwrap()
        .get(rs)
        .map(|record| record.access_token.secret().to_owned())
}

/// Empty at first; stores replace by resource server and keep every field;
/// removals remove only what they name.
pub fn round_trip(storage: &dyn TokenStorage) {
    assert!(storage.load().unwrap().is_empty());
    storage
        .store(&[record("a.example.org", "A1"), record("b.example.org", "B1")])
        .unwrap();
    storage.store(&[record("a.example.org", "A2")]).unwrap();
    let tokens = storage.load().unwrap();
    assert_eq!(tokens.records().len(), 2);
    assert_eq!(token_of(storage, "a.example.org").as_deref(), Some("A2"));
    assert_eq!(
        tokens.get("b.example.org").unwrap(),
        &record("b.example.org", "B1"),
        "every field, unknown ones included, comes back"
    );
    storage.remove(&["b.example.org".into()]).unwrap();
    assert!(storage.load().unwrap().get("b.example.org").is_none());
    assert!(storage.load().unwrap().get("a.example.org").is_some());
    storage.remove(&["not.stored".into()]).unwrap();
}

/// Two namespaces in one store do not see each other's records.
pub fn namespaces_are_isolated(one: &dyn TokenStorage, two: &dyn TokenStorage) {
    one.store(&[record("rs", "A")]).unwrap();
    assert!(two.load().unwrap().is_empty());
    two.store(&[record("rs", "B")]).unwrap();
    assert_eq!(token_of(one, "rs").as_deref(), Some("A"));
    assert_eq!(token_of(two, "rs").as_deref(), Some("B"));
}

/// A write through another handle on the same store is seen on the next
/// load after a renewal lock (a storage with a read cache must re-read
/// under the lock).
pub fn sees_the_other_writer_under_the_lock(ours: &dyn TokenStorage, theirs: &dyn TokenStorage) {
    ours.store(&[record("rs", "A")]).unwrap();
    assert_eq!(token_of(ours, "rs").as_deref(), Some("A"));
    theirs.store(&[record("rs", "B")]).unwrap();
    let guard = ours.lock_renewal("rs").unwrap();
    assert_eq!(token_of(ours, "rs").as_deref(), Some("B"));
    drop(guard);
}

/// The renewal lock excludes a second holder until the first lets go.
pub fn renewal_lock_is_exclusive(ours: &dyn TokenStorage, theirs: &(dyn TokenStorage + Sync)) {
    let guard = ours.lock_renewal("rs").unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let second = theirs.lock_renewal("rs").unwrap();
            sender.send(()).unwrap();
            drop(second);
        });
        assert!(
            receiver
                .recv_timeout(std::time::Duration::from_millis(300))
                .is_err(),
            "a second holder got the lock"
        );
        drop(guard);
        receiver
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the lock was not handed over");
    });
}

/// `try_lock_renewal` never waits: `None` while another handle holds the
/// lock, the lock once it is free (which the other handle's try then finds
/// held). A storage that waited would take its lock timeout (60 s) and fail
/// with `LockTimeout`.
pub fn try_lock_renewal_never_waits(ours: &dyn TokenStorage, theirs: &dyn TokenStorage) {
    let held = theirs.lock_renewal("rs").unwrap();
    assert!(
        ours.try_lock_renewal("rs").unwrap().is_none(),
        "held elsewhere"
    );
    held.release();
    let mine = ours.try_lock_renewal("rs").unwrap().expect("free again");
    assert!(
        theirs.try_lock_renewal("rs").unwrap().is_none(),
        "held by ours"
    );
    mine.release();
}
