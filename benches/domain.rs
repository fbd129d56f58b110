//! Parse throughput of the identifiers on the hot path of an eligibility check.
//!
//! Inputs and the link key are built outside the timed closures, so only parsing (and the HMAC
//! for the link) is measured.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use onshi::domain::{IndividualNumber, InsuredNumber, InsurerNumber, LinkKey};

fn parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(1));

    group.bench_function("insurer_number", |b| {
        b.iter(|| InsurerNumber::parse(black_box("33120015")))
    });

    let full_width = "１２３４５６７８９０１２３４５６７８９";
    group.bench_function("insured_number_full_width", |b| {
        b.iter(|| InsuredNumber::parse(black_box(full_width)))
    });

    let key = LinkKey::from_bytes(vec![0x5a; 32]).expect("32 bytes is a valid key length");
    group.bench_function("individual_number_and_link", |b| {
        b.iter(|| {
            let n = IndividualNumber::parse(black_box("983205673214"))
                .expect("the benchmark input is checksum-valid");
            n.link(&key).expect("an in-process key never fails")
        })
    });

    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
