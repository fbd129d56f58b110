//! What the keyed audit chain costs per record, against the unkeyed SHA-256 chain it replaced,
//! in the same run; and what the alternative (an HMAC in the PKCS#11 token per record) would.
//!
//! `keyed_link` is one record's HMAC-SHA256 under a session's chain key (the keyed state cloned),
//! `unkeyed_link` the plain SHA-256 link of before. `lane_key_*` is what a writer pays once per
//! lane claim. With `ONSHI_PKCS11_MODULE` etc. set (`eval "$(ops/softhsm)"`), `token_hmac` is one
//! `CKM_SHA256_HMAC` in the token: the per-record cost had every record been MACed there.
//! Keys and inputs are built outside the timed closures.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use onshi::audit::chain::{link, link_unkeyed, ChainFields, ChainKey, GENESIS};
use onshi::audit::key::{AuditKey, AuditSettings};
use onshi::health_id::keys::{KeySettings, Pkcs11Key};

fn fields() -> ChainFields<'static> {
    ChainFields {
        at_micros: 1_700_000_000_000_000,
        party_id: 12,
        person_id: Some(123_456),
        coverage_id: Some(234_567),
        kind: "eligibility.number",
        check_id: [7; 16],
        validity: 1,
    }
}

fn audit(c: &mut Criterion) {
    let mut group = c.benchmark_group("audit_chain");
    group.throughput(Throughput::Elements(1));
    let key = ChainKey::new(&[0x42; 32]);
    let f = fields();
    group.bench_function("keyed_link", |b| {
        b.iter(|| link(black_box(&key), black_box(&GENESIS), black_box(&f)))
    });
    group.bench_function("unkeyed_link", |b| {
        b.iter(|| link_unkeyed(black_box(&GENESIS), black_box(&f)))
    });
    let file_key = AuditKey::from_bytes(zeroize::Zeroizing::new(vec![0x42; 32]))
        .expect("32 bytes is a valid audit key");
    group.bench_function("lane_key_file", |b| {
        b.iter(|| file_key.lane_key(black_box(3), black_box(99)))
    });
    let token: KeySettings = onshi::config::Settings::load()
        .expect("the settings in the environment are valid")
        .health_id;
    if token.pkcs11_module.is_some() {
        let audit = AuditSettings::default();
        let token_key = audit
            .open_key(&token)
            .expect("the token holds the audit key (ops/softhsm)");
        group.bench_function("lane_key_token", |b| {
            b.iter(|| token_key.lane_key(black_box(3), black_box(99)))
        });
        let raw = Pkcs11Key::open(
            token.pkcs11_module.as_deref().expect("checked above"),
            token.pkcs11_token_label.as_deref().unwrap_or("onshi-test"),
            token
                .pkcs11_pin_file
                .as_deref()
                .expect("ops/softhsm sets it"),
            &audit.pkcs11_key_label,
        )
        .expect("the token holds the audit key");
        let message = [0u8; 120];
        group.bench_function("token_hmac", |b| b.iter(|| raw.mac(black_box(&message))));
    } else {
        eprintln!("no PKCS#11 token configured: the token figures are skipped");
    }
    group.finish();
}

criterion_group!(benches, audit);
criterion_main!(benches);
