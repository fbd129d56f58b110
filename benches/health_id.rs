//! Health-ID derivation against raw HMAC-SHA256 on the same input, in the same run.
//!
//! `derive_and_encode` is what issuance pays per ID with the purpose key prepared once: building
//! the length-prefixed message, the MAC, keeping 160 bits and writing them in Crockford base32
//! with the check symbol. `raw_hmac_sha256` is HMAC-SHA256 of the same message under the same key
//! (keyed afresh, as a plain HMAC call would be), and `raw_hmac_sha256_prekeyed` the same with
//! the keyed state cloned, as derivation does: the fair baseline for the encoding's own cost. The
//! target is derivation within 1.5 × raw HMAC.
//! With `ONSHI_PKCS11_MODULE` etc. set (`eval "$(ops/softhsm)"`), the token path is measured too.
//! Keys and inputs are built outside the timed closures.

use std::time::Instant;

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hmac::{Hmac, Mac};
use onshi::health_id::derive::{message, with_message, HealthId, Inputs};
use onshi::health_id::keys::{KeySettings, PurposeKey};
use sha2::Sha256;

const KEY: [u8; 32] = [0x42; 32];
const BASE: [u8; 32] = [0x11; 32];

fn inputs() -> Inputs<'static> {
    Inputs {
        purpose: "regional-care",
        key_version: 1,
        base: &BASE,
        epoch: 0,
        counter: 0,
    }
}

fn raw_hmac(msg: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(&KEY).expect("HMAC takes any key length");
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

fn derive(key: &PurposeKey) -> HealthId {
    HealthId::from_mac(&with_message(&inputs(), |m| key.mac(m)))
}

/// Nanoseconds per call over `n` calls (a plain loop, for the printed ratio).
fn per_call(n: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    start.elapsed().as_nanos() as f64 / f64::from(n)
}

fn health_id(c: &mut Criterion) {
    let key = PurposeKey::from_raw(&KEY);
    let msg = message(&inputs());
    let mut group = c.benchmark_group("health_id");
    group.throughput(Throughput::Elements(1));
    group.bench_function("raw_hmac_sha256", |b| b.iter(|| raw_hmac(black_box(&msg))));
    let prekeyed = Hmac::<Sha256>::new_from_slice(&KEY).expect("HMAC takes any key length");
    group.bench_function("raw_hmac_sha256_prekeyed", |b| {
        b.iter(|| {
            let mut mac = prekeyed.clone();
            mac.update(black_box(&msg));
            mac.finalize().into_bytes()
        })
    });
    group.bench_function("derive_and_encode", |b| b.iter(|| derive(black_box(&key))));

    let settings: KeySettings = onshi::config::Settings::load()
        .expect("the settings in the environment are valid")
        .health_id;
    let token = if settings.pkcs11_module.is_some() {
        let source = settings
            .open()
            .expect("the PKCS#11 settings in the environment open")
            .expect("a PKCS#11 module is configured");
        group.bench_function("pkcs11_derive_and_encode", |b| {
            let keyed = source.keyed("regional-care", 1);
            b.iter(|| HealthId::from_mac(&keyed.mac(&message(black_box(&inputs()))).unwrap()))
        });
        Some(source)
    } else {
        eprintln!("(PKCS#11 not measured: eval \"$(ops/softhsm)\" first)");
        None
    };
    group.finish();

    let n = 200_000;
    let raw = per_call(n, || {
        black_box(raw_hmac(black_box(&msg)));
    });
    let raw_prekeyed = per_call(n, || {
        let mut mac = prekeyed.clone();
        mac.update(black_box(&msg));
        black_box(mac.finalize().into_bytes());
    });
    let derived = per_call(n, || {
        black_box(derive(black_box(&key)));
    });
    eprintln!(
        "raw HMAC-SHA256 {raw:.0} ns (pre-keyed {raw_prekeyed:.0} ns), derive+encode {derived:.0} ns: \
         ratio {:.2} to raw, {:.2} to pre-keyed (target ≤ 1.5); {:.0} IDs/s in process",
        derived / raw,
        derived / raw_prekeyed,
        1e9 / derived
    );
    if let Some(source) = token {
        let keyed = source.keyed("regional-care", 1);
        let token = per_call(5_000, || {
            black_box(HealthId::from_mac(&keyed.mac(&message(&inputs())).unwrap()));
        });
        eprintln!(
            "PKCS#11 derive+encode {token:.0} ns: {:.1} × raw HMAC; {:.0} IDs/s through the token",
            token / raw,
            1e9 / token
        );
    }
}

criterion_group!(benches, health_id);
criterion_main!(benches);
