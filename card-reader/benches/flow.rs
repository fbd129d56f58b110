//! One full desk flow against the virtual card through pcscd and vpcd: connect, select
//! the JPKI application, read the certificate, verify the PIN, sign a nonce, reset.
//! Needs pcscd with vsmartcard-vpcd (`sudo ops/card-stack`). The PKI, the card and the
//! PC/SC context are set up outside the timed closure.
#![forbid(unsafe_code)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Duration;

use card_reader::{JpkiCard, Pin};
use criterion::{criterion_group, criterion_main, Criterion};
use support::{profile, Slot};

fn flow(c: &mut Criterion) {
    let slot = Slot::acquire();
    let _card = slot.insert(profile());
    let reader = slot.c_name();
    let nonce = [0x42u8; 32];
    let mut group = c.benchmark_group("card");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("read cert + verify PIN + sign", |b| {
        b.iter(|| {
            let mut card = JpkiCard::open(&slot.readers, &reader).expect("open");
            let cert = card.read_auth_certificate().expect("certificate");
            card.verify_pin(Pin::parse("1234").expect("PIN"))
                .expect("verify");
            let sig = card.sign_message(&nonce).expect("sign");
            (cert, sig)
        });
    });
    group.finish();
}

criterion_group!(benches, flow);
criterion_main!(benches);
