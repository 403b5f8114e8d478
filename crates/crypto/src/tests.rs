#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use uuid::Uuid;

use crate::*;

fn cheap() -> Argon2Settings {
    // Tests exercise the mechanism; production costs are covered by the default.
    Argon2Settings {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    }
}

#[test]
fn seal_round_trips_and_uses_a_fresh_nonce() {
    let key = DataKey::generate().unwrap();
    let record = Uuid::new_v4();
    let b = Binding::new(record, "data", 1);
    let a = key.seal(b, b"sk_live_123").unwrap();
    let c = key.seal(b, b"sk_live_123").unwrap();
    assert_ne!(a, c, "two seals of one value must differ");
    assert_eq!(key.open(b, &a).unwrap().as_slice(), b"sk_live_123");
    assert_eq!(key.open(b, &c).unwrap().as_slice(), b"sk_live_123");
}

#[test]
fn binding_covers_record_field_and_version() {
    let key = DataKey::generate().unwrap();
    let record = Uuid::new_v4();
    let sealed = key.seal(Binding::new(record, "data", 1), b"v").unwrap();
    let other = Uuid::new_v4();
    for wrong in [
        Binding::new(other, "data", 1),
        Binding::new(record, "url", 1),
        Binding::new(record, "data", 2),
    ] {
        assert_eq!(key.open(wrong, &sealed), Err(CryptoError::Decrypt));
    }
}

#[test]
fn wrong_key_and_truncated_input_fail() {
    let record = Uuid::new_v4();
    let b = Binding::new(record, "data", 1);
    let sealed = DataKey::generate().unwrap().seal(b, b"v").unwrap();
    assert_eq!(
        DataKey::generate().unwrap().open(b, &sealed),
        Err(CryptoError::Decrypt)
    );
    let key = DataKey::generate().unwrap();
    assert_eq!(key.open(b, &[]), Err(CryptoError::Decrypt));
    assert_eq!(key.open(b, &[0u8; 27]), Err(CryptoError::Decrypt));
}

#[test]
fn master_key_slot_round_trip_and_check_value() {
    let master = MasterKey::generate().unwrap();
    let record = Uuid::new_v4();
    let dek = DataKey::generate().unwrap();
    let b = Binding::new(record, "slot:server", master.version());
    let wrapped = master.kek().wrap(b, &dek).unwrap();
    let payload = dek.seal(Binding::new(record, "data", 1), b"x").unwrap();
    let unwrapped = master.kek().unwrap(b, &wrapped).unwrap();
    assert_eq!(
        unwrapped
            .open(Binding::new(record, "data", 1), &payload)
            .unwrap()
            .as_slice(),
        b"x"
    );

    let other = MasterKey::generate().unwrap();
    assert!(other.kek().unwrap(b, &wrapped).is_err());
    assert!(
        master
            .matches_check_value(&master.check_value().unwrap())
            .unwrap()
    );
    assert!(
        !other
            .matches_check_value(&master.check_value().unwrap())
            .unwrap()
    );
}

#[test]
fn master_key_parsing_rejects_wrong_sizes_and_encodings() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(
        MasterKey::from_base64(&b64.encode([1u8; 16])).unwrap_err(),
        CryptoError::KeySize(16)
    );
    assert_eq!(
        MasterKey::from_base64(&b64.encode([1u8; 33])).unwrap_err(),
        CryptoError::KeySize(33)
    );
    assert_eq!(
        MasterKey::from_base64("not base64!").unwrap_err(),
        CryptoError::KeyEncoding
    );
    let key = MasterKey::from_base64(&format!(" {}\n", b64.encode([7u8; 32]))).unwrap();
    assert_eq!(key.to_base64().as_str(), b64.encode([7u8; 32]));
}

#[test]
fn debug_output_never_shows_key_material() {
    let master = MasterKey::generate().unwrap();
    let api = ApiKey::generate().unwrap();
    let printed = format!(
        "{master:?} {api:?} {:?} {:?}",
        DataKey::generate().unwrap(),
        master.kek()
    );
    assert!(!printed.contains(master.to_base64().as_str()));
    assert!(!printed.contains(api.expose()));
    assert!(printed.contains("***"));
}

#[test]
fn api_keys_are_distinct_and_unwrap_only_their_own_record() {
    let a = ApiKey::generate().unwrap();
    let b = ApiKey::generate().unwrap();
    assert_ne!(a.expose(), b.expose());
    assert!(a.expose().starts_with("brk_"));
    assert_eq!(a.expose().len(), 4 + 43);

    let record = Uuid::new_v4();
    let dek = DataKey::generate().unwrap();
    let bind = Binding::new(record, "slot:api_key", 1);
    let wrapped = a.kek(record).unwrap().wrap(bind, &dek).unwrap();
    assert!(a.kek(record).unwrap().unwrap(bind, &wrapped).is_ok());
    assert!(b.kek(record).unwrap().unwrap(bind, &wrapped).is_err());
    // The same key presented for another record derives another KEK.
    let elsewhere = Uuid::new_v4();
    assert!(
        a.kek(elsewhere)
            .unwrap()
            .unwrap(Binding::new(elsewhere, "slot:api_key", 1), &wrapped)
            .is_err()
    );
}

#[test]
fn password_slot_round_trip_and_encoding() {
    let kdf = SlotKdf::new(cheap()).unwrap();
    let parsed = SlotKdf::parse(&kdf.encode()).unwrap();
    assert_eq!(parsed, kdf);

    let record = Uuid::new_v4();
    let dek = DataKey::generate().unwrap();
    let bind = Binding::new(record, "slot:password", 1);
    let wrapped = kdf
        .derive(b"correct horse")
        .unwrap()
        .wrap(bind, &dek)
        .unwrap();
    assert!(
        parsed
            .derive(b"correct horse")
            .unwrap()
            .unwrap(bind, &wrapped)
            .is_ok()
    );
    assert!(
        parsed
            .derive(b"wrong horse")
            .unwrap()
            .unwrap(bind, &wrapped)
            .is_err()
    );

    for bad in [
        "",
        "argon2id$v=19$m=64,t=1$",
        "argon2i$v=19$m=64,t=1,p=1$AAAA",
        "argon2id$v=19$m=1,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA",
    ] {
        assert!(SlotKdf::parse(bad).is_err(), "{bad} must be rejected");
    }
}

#[test]
fn default_argon2_settings_meet_owasp_minimum() {
    let s = Argon2Settings::default();
    assert!(s.memory_kib >= 19 * 1024 && s.iterations >= 2 && s.parallelism >= 1);
}

#[test]
fn account_password_hash_verifies_only_the_right_password() {
    let phc = hash_account_password(b"s3cret-pass", cheap()).unwrap();
    assert!(phc.starts_with("$argon2id$"));
    assert!(!phc.contains("s3cret-pass"));
    assert!(verify_account_password(b"s3cret-pass", &phc).unwrap());
    assert!(!verify_account_password(b"s3cret-pasS", &phc).unwrap());
    assert!(verify_account_password(b"x", "garbage").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn any_plaintext_round_trips(plaintext in proptest::collection::vec(any::<u8>(), 0..2048), version in any::<u32>()) {
        let key = DataKey::generate().unwrap();
        let b = Binding::new(Uuid::new_v4(), "data", version);
        let sealed = key.seal(b, &plaintext).unwrap();
        let opened = key.open(b, &sealed).unwrap();
        prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
    }

    #[test]
    fn any_flipped_bit_fails(plaintext in proptest::collection::vec(any::<u8>(), 0..256), index in any::<prop::sample::Index>(), bit in 0u8..8) {
        let key = DataKey::generate().unwrap();
        let b = Binding::new(Uuid::new_v4(), "data", 1);
        let mut sealed = key.seal(b, &plaintext).unwrap();
        let i = index.index(sealed.len());
        sealed[i] ^= 1 << bit;
        prop_assert_eq!(key.open(b, &sealed), Err(CryptoError::Decrypt));
    }

    #[test]
    fn wrapped_keys_do_not_move_between_records(a in any::<u128>(), b in any::<u128>()) {
        prop_assume!(a != b);
        let (a, b) = (Uuid::from_u128(a), Uuid::from_u128(b));
        let master = MasterKey::generate().unwrap();
        let dek = DataKey::generate().unwrap();
        let wrapped = master.kek().wrap(Binding::new(a, "slot:server", 1), &dek).unwrap();
        prop_assert!(master.kek().unwrap(Binding::new(b, "slot:server", 1), &wrapped).is_err());
    }
}

#[test]
fn keyrings_parse_every_written_form_and_refuse_mistakes() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let (one, two) = (b64.encode([1u8; 32]), b64.encode([2u8; 32]));

    // Lines with comments; `current` chooses the writer.
    let ring = Keyring::parse(&format!("# keys\ncurrent: 1\n1: {one}\n2: {two} # new\n")).unwrap();
    assert_eq!(ring.current().version(), 1);
    assert_eq!(ring.versions().collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(ring.get(2).unwrap().to_base64().as_str(), two);
    // One line for an environment variable; without `current`, the highest version writes.
    let ring = Keyring::parse(&format!("1:{one},2:{two}")).unwrap();
    assert_eq!(ring.current().version(), 2);
    assert!(ring.get(3).is_none());
    // What `to_text` writes reads back the same.
    let again = Keyring::parse(&ring.to_text()).unwrap();
    assert_eq!(again.current().version(), 2);
    assert_eq!(again.get(1).unwrap().to_base64().as_str(), one);

    assert_eq!(
        Keyring::parse(&format!("1:{one} 1:{two}")).unwrap_err(),
        KeyringError::Duplicate(1)
    );
    assert_eq!(
        Keyring::parse(&format!("current:3 1:{one}")).unwrap_err(),
        KeyringError::NoCurrent(3)
    );
    assert_eq!(
        Keyring::parse("# nothing\n").unwrap_err(),
        KeyringError::Empty
    );
    assert!(matches!(
        Keyring::parse(&format!("0:{one}")),
        Err(KeyringError::Syntax(_))
    ));
    assert!(matches!(Keyring::parse(&one), Err(KeyringError::Syntax(_))));
    let short = Keyring::parse(&format!("2:{}", b64.encode([1u8; 16]))).unwrap_err();
    assert_eq!(
        short,
        KeyringError::Key {
            version: 2,
            source: CryptoError::KeySize(16)
        }
    );
    // No error or debug output shows key material.
    let printed = format!("{ring:?} {:?}", ring.subkeys("p").unwrap());
    assert!(!printed.contains(&one) && !printed.contains(&two));
}

#[test]
fn subkeys_differ_by_version_and_the_current_one_comes_first() {
    let ring = Keyring::new(
        vec![
            MasterKey::generate().unwrap(),
            MasterKey::generate().unwrap().with_version(2),
        ],
        2,
    )
    .unwrap();
    let subkeys = ring.subkeys("brine test v1").unwrap();
    let (version, current) = subkeys.current();
    assert_eq!(version, 2);
    assert_ne!(current, subkeys.get(1).unwrap());
    assert_eq!(
        subkeys.all().map(|(v, _)| v).collect::<Vec<_>>(),
        vec![2, 1]
    );
    // Version 1's subkey is what a single-key installation always derived.
    assert_eq!(
        subkeys.get(1).unwrap(),
        &*ring.get(1).unwrap().derive_subkey("brine test v1").unwrap()
    );
    let bigger = ring.with_new_key(false).unwrap();
    assert_eq!(bigger.versions().collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(bigger.current().version(), 2);
    assert_eq!(bigger.with_new_key(true).unwrap().current().version(), 4);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever an operator (or a damaged file) puts in a keyring, parsing answers with a
    /// keyring or an error, never a panic.
    #[test]
    fn any_keyring_text_parses_or_is_refused(text in "\\PC{0,200}") {
        let _ = Keyring::parse(&text);
    }

    /// A keyring written by `to_text` reads back as the same versions, keys and current one.
    #[test]
    fn written_keyrings_read_back(
        keys in proptest::collection::btree_map(1u32..10_000, any::<[u8; 32]>(), 1..6),
        pick in any::<proptest::sample::Index>(),
    ) {
        use base64::Engine;
        let versions: Vec<u32> = keys.keys().copied().collect();
        let current = versions[pick.index(versions.len())];
        let ring = Keyring::new(
            keys.iter()
                .map(|(v, bytes)| {
                    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
                    MasterKey::from_base64(&text).unwrap().with_version(*v)
                })
                .collect(),
            current,
        )
        .unwrap();
        let again = Keyring::parse(&ring.to_text()).unwrap();
        prop_assert_eq!(again.versions().collect::<Vec<_>>(), versions);
        prop_assert_eq!(again.current().version(), current);
        for (version, bytes) in &keys {
            let text = base64::engine::general_purpose::STANDARD.encode(bytes);
            let read_back = again.get(*version).unwrap().to_base64();
            prop_assert_eq!(read_back.as_str(), text.as_str());
        }
    }
}
