//! Server-side cost of one card check's cryptography (certificate profile, chain signatures up
//! to the root, validity, revocation against current CRLs, and the card's signature over the
//! bound challenge) against the raw cost of one
//! RSA-2048 PKCS#1 v1.5 SHA-256 verification, measured in the same run. The same card is checked
//! again and again, as at a desk: its chain signature is verified once and then remembered by
//! the certificate's bytes (`onshi::card::trust::VerifiedIssuers`).
//! `cargo bench --bench card`

use criterion::{criterion_group, criterion_main, Criterion};
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use sha2::Sha256;

fn card(c: &mut Criterion) {
    let pki = card_reader::virtual_card::TestPki::generate().expect("the synthetic PKI");
    let dir = std::env::temp_dir().join(format!("onshi-bench-pki-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("root.der"), &pki.root.cert_der).unwrap();
    std::fs::write(dir.join("user-auth-ca.der"), &pki.user_ca.cert_der).unwrap();
    std::fs::write(dir.join("user-auth-ca.crl"), &pki.crl_der).unwrap();
    std::fs::write(dir.join("root-ca.crl"), &pki.root_crl_der).unwrap();
    let trust = onshi::card::trust::Snapshot::load(&dir, Some(&dir), 0).unwrap();
    let person = &pki.person_valid;
    let nonce = [7u8; 32];
    let origin = onshi::card::binding::Origin::parse("https://onshi.example.jp").unwrap();
    let purpose = onshi::card::binding::Purpose::Check;
    let digest = onshi::card::binding::digest(purpose, &origin, &nonce, Some(Default::default()));
    let signature = person
        .key
        .sign(Pkcs1v15Sign::new::<Sha256>(), &digest)
        .unwrap();
    let public = RsaPublicKey::from(&person.key);
    let now = chrono::Utc::now();

    let mut group = c.benchmark_group("card");
    group.bench_function("raw RSA-2048 verify", |b| {
        b.iter(|| {
            public
                .verify(Pkcs1v15Sign::new::<Sha256>(), &digest, &signature)
                .unwrap()
        })
    });
    group.bench_function(
        "card check crypto (chain + validity + CRL + nonce signature)",
        |b| {
            b.iter(|| {
                let card = onshi::card::verify::verify_certificate(
                    &trust,
                    &person.cert_der,
                    now,
                    onshi::card::verify::Grace::Eligibility,
                )
                .unwrap();
                let digest = onshi::card::binding::digest(
                    purpose,
                    &origin,
                    &nonce,
                    Some(Default::default()),
                );
                card.signed(&digest, &signature).unwrap()
            })
        },
    );
    group.finish();
    let _ = std::fs::remove_dir_all(dir);
}

criterion_group!(benches, card);
criterion_main!(benches);
