//! What the proof of check costs per answer: one Ed25519 signature of a proof's claims, in
//! process (a file key) and, with `ONSHI_PKCS11_MODULE` etc. set (`eval "$(ops/softhsm)"`), in
//! the token (`CKM_EDDSA` through the pair's session). The claims and keys are built outside the
//! timed closures; serializing the claims is inside, as each answer pays it.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use onshi::health_id::keys::KeySettings;
use onshi::proof::{ProofKey, ProofSettings};

#[path = "support/claims.rs"]
mod support;
use support::claims;

fn proof(c: &mut Criterion) {
    let mut group = c.benchmark_group("proof");
    group.throughput(Throughput::Elements(1));
    let claims = claims();
    let file_key = ProofKey::from_file_key(&[0x42; 32]).expect("32 bytes is a valid proof key");
    group.bench_function("sign_in_process", |b| {
        b.iter(|| black_box(&claims).sign(&file_key))
    });
    let token: KeySettings = onshi::config::Settings::load()
        .expect("the settings in the environment are valid")
        .health_id;
    if token.pkcs11_module.is_some() {
        let in_token = ProofSettings::default()
            .open(&token)
            .expect("the token holds the onshi-proof pair (ops/softhsm)");
        group.bench_function("sign_in_token", |b| {
            b.iter(|| black_box(&claims).sign(&in_token))
        });
    } else {
        eprintln!("no PKCS#11 token configured: the token figure is skipped");
    }
    group.finish();
}

criterion_group!(benches, proof);
criterion_main!(benches);
