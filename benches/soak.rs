//! The soak: a mixed load held for minutes at a fixed fraction of the capacity measured first,
//! to show that nothing drifts (errors, the p99, the server's memory). `ops/bench soak` runs it
//! against a release server on the benchmark database; it is never part of `ops/test`.
//!
//! 1. **Capacity**: `--workers` closed-loop workers send the mix for `--measure-seconds`; the
//!    requests a second they reach is the capacity.
//! 2. **Soak**: requests are started at `--fraction` of that rate (open loop: a slow answer does
//!    not slow the sender, up to `--max-in-flight` (256) open at once, as a bounded population
//!    of desks) for `--seconds`, with one enrolment upload a minute. Every answer but
//!    200 is an error (the limits are lifted for the load, so a 429 is one too).
//!
//! The mix, per request: single checks, batches of `--batch` queries (`--batch-share`), and card
//! checks (`--card-share`) when `--card-dir` names the synthetic card that
//! `soak prepare-card DIR` wrote: the trust store and CRLs the server is started with, and the
//! card's certificate and key. A card check is the desk's whole exchange: a challenge, the
//! signature over the bound challenge (made here with the card's key, as the card would), the
//! check. `ops/bench soak` links that certificate to one enrolled person in the database
//! directly (the link flow itself is what `ops/test` checks).
//! Prints one report: counts, errors by status, p50/p99 per kind, and the server's resident
//! memory (from `/proc/<--pid>/status`) at the start and the end of the soak, sampled every
//! `--rss-seconds` (30) as well: a table of the samples, the maximum, and the slope over the
//! second half of the soak (least squares, MiB a minute), which tells a plateau (allocator
//! arenas and caches warming up, then flat) from a leak (growth that goes on); and once more 30 s
//! after the load, its connections closed (what falls then was held per connection).
//!
//! With `--seconds 0` only the capacity is measured, and printed with each kind's p50/p99: with
//! `--card-share 1` that is the whole card check over HTTP (`ops/bench` (e)). Two more
//! subcommands measure, in the same run, the raw ceilings those figures are read against:
//! `soak token-sign SECONDS` signs proofs of check with the server's proof key (the token's pair
//! when `ONSHI_PKCS11_MODULE` etc. are set), one thread per token session as the server does,
//! and prints the signatures a second: a check by number cannot be answered faster than its
//! proof is signed. `soak rsa-verify DIR SECONDS` verifies the card's RSA-2048 signature
//! (PKCS#1 v1.5, SHA-256) with the public key of the card `prepare-card` wrote into DIR, on one
//! thread, and prints the verifications a second.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

#[path = "support/claims.rs"]
mod support;

struct Args {
    server: String,
    token: String,
    /// Only needed with `--updates`.
    insurer_token: Option<String>,
    keys: Vec<Value>,
    updates: Option<PathBuf>,
    workers: usize,
    measure: Duration,
    soak: Duration,
    fraction: f64,
    batch: usize,
    batch_share: f64,
    card: Option<Card>,
    card_share: f64,
    pid: Option<u32>,
    rss_every: Duration,
    /// The most requests (and so connections) open at once, as a bounded population of desks.
    max_in_flight: usize,
}

/// The synthetic card of the soak's card checks.
struct Card {
    certificate: Vec<u8>,
    /// ring's RSA, many times faster at signing than `rsa`'s, so that the load tool's share of
    /// the cores stays small; the signature is the same (PKCS#1 v1.5 is deterministic).
    key: ring::signature::RsaKeyPair,
    facility_token: String,
}

/// `soak prepare-card DIR`: writes a synthetic JPKI (trust store, both CRLs) and one card's
/// certificate and key into DIR, and prints the card's issuer and serial (hex) for its link.
fn prepare_card(dir: &std::path::Path) {
    use der::{Decode, Encode};
    use rsa::pkcs8::EncodePrivateKey;
    let pki = card_reader::virtual_card::TestPki::generate().expect("the synthetic PKI");
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("root.der"), &pki.root.cert_der).unwrap();
    std::fs::write(dir.join("user-auth-ca.der"), &pki.user_ca.cert_der).unwrap();
    std::fs::write(dir.join("user-auth-ca.crl"), &pki.crl_der).unwrap();
    std::fs::write(dir.join("root-ca.crl"), &pki.root_crl_der).unwrap();
    let person = &pki.person_valid;
    std::fs::write(dir.join("card.cert"), &person.cert_der).unwrap();
    std::fs::write(
        dir.join("card.key"),
        person.key.to_pkcs8_der().unwrap().as_bytes(),
    )
    .unwrap();
    let cert = x509_cert::Certificate::from_der(&person.cert_der).unwrap();
    println!(
        "{} {}",
        hex::encode(cert.tbs_certificate.issuer.to_der().unwrap()),
        hex::encode(cert.tbs_certificate.serial_number.as_bytes())
    );
}

fn args() -> Args {
    let mut map = BTreeMap::new();
    let mut raw = std::env::args().skip(1).filter(|a| a != "--bench");
    while let Some(name) = raw.next() {
        let value = raw.next().unwrap_or_else(|| panic!("{name} needs a value"));
        map.insert(name.trim_start_matches("--").to_owned(), value);
    }
    let get = |name: &str| map.get(name).cloned();
    let need = |name: &str| get(name).unwrap_or_else(|| panic!("--{name} is required"));
    let read = |name: &str| std::fs::read_to_string(need(name)).expect("a readable file");
    let number = |name: &str, default: f64| get(name).map_or(default, |v| v.parse().unwrap());
    Args {
        server: need("server"),
        token: read("token-file").trim().to_owned(),
        insurer_token: get("insurer-token-file").map(|f| {
            std::fs::read_to_string(f)
                .expect("a readable file")
                .trim()
                .to_owned()
        }),
        keys: read("keys")
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON query a line"))
            .collect(),
        updates: get("updates").map(PathBuf::from),
        workers: number("workers", 32.0) as usize,
        measure: Duration::from_secs_f64(number("measure-seconds", 20.0)),
        soak: Duration::from_secs_f64(number("seconds", 600.0)),
        fraction: number("fraction", 0.8),
        batch: number("batch", 100.0) as usize,
        batch_share: number("batch-share", 0.05),
        card: get("card-dir").map(|dir| {
            let dir = PathBuf::from(dir);
            Card {
                certificate: std::fs::read(dir.join("card.cert")).expect("the card's certificate"),
                key: ring::signature::RsaKeyPair::from_pkcs8(
                    &std::fs::read(dir.join("card.key")).expect("the card's key"),
                )
                .expect("a PKCS#8 RSA key"),
                facility_token: read("facility-token-file").trim().to_owned(),
            }
        }),
        card_share: number("card-share", 0.05),
        pid: get("pid").map(|p| p.parse().unwrap()),
        rss_every: Duration::from_secs_f64(number("rss-seconds", 30.0).max(1.0)),
        max_in_flight: (number("max-in-flight", 256.0) as usize).max(1),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Single,
    Batch,
    Card,
    Upload,
}

#[derive(Default)]
struct Tally {
    latencies: BTreeMap<Kind, Vec<Duration>>,
    errors: BTreeMap<(Kind, String), u64>,
}

impl Tally {
    fn note(&mut self, kind: Kind, took: Duration, outcome: Result<u16, String>) {
        match outcome {
            Ok(200) => self.latencies.entry(kind).or_default().push(took),
            Ok(status) => *self.errors.entry((kind, status.to_string())).or_default() += 1,
            Err(error) => *self.errors.entry((kind, error)).or_default() += 1,
        }
    }
}

struct Load {
    http: reqwest::Client,
    args: Args,
}

impl Load {
    fn pick(&self, n: u64) -> Kind {
        // A fixed, even interleaving (no randomness needed for a mix).
        let every = |share: f64| (1.0 / share.max(1e-9)).round().max(2.0) as u64;
        let (batch, card) = (every(self.args.batch_share), every(self.args.card_share));
        // A share of 1 is the whole load: every request of that kind.
        if self.args.card.is_some() && self.args.card_share >= 1.0 {
            Kind::Card
        } else if self.args.batch_share >= 1.0
            || (self.args.batch_share > 0.0 && n % batch == batch - 1)
        {
            Kind::Batch
        } else if self.args.card.is_some() && self.args.card_share > 0.0 && n % card == card / 2 {
            Kind::Card
        } else {
            Kind::Single
        }
    }

    /// A desk's card check: challenge, the card's signature over it, the check.
    async fn card_check(&self) -> Result<reqwest::Response, reqwest::Error> {
        use base64::Engine;
        let card = self.args.card.as_ref().expect("a card");
        let b64 = base64::engine::general_purpose::STANDARD;
        let challenge: Value = self
            .http
            .post(format!("{}/v1/challenges", self.args.server))
            .bearer_auth(&card.facility_token)
            .send()
            .await?
            .json()
            .await?;
        let nonce = b64
            .decode(challenge["nonce"].as_str().unwrap_or_default())
            .unwrap_or_default();
        let origin = onshi::card::binding::Origin::parse(&self.args.server).expect("an origin");
        // The card signs the SHA-256 of the bound message; ring hashes the message itself.
        let message = onshi::card::binding::message(
            onshi::card::binding::Purpose::Check,
            &origin,
            &nonce,
            Some(Default::default()),
        );
        let mut signature = vec![0; card.key.public().modulus_len()];
        card.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                &message,
                &mut signature,
            )
            .expect("signing");
        self.http
            .post(format!("{}/v1/eligibility/card", self.args.server))
            .bearer_auth(&card.facility_token)
            .json(&json!({
                "certificate": b64.encode(&card.certificate),
                "challenge_id": challenge["challenge_id"],
                "signature": b64.encode(signature),
            }))
            .send()
            .await
    }

    async fn send(&self, kind: Kind, n: u64) -> (Duration, Result<u16, String>) {
        let keys = &self.args.keys;
        if kind == Kind::Card {
            let started = Instant::now();
            let outcome = match self.card_check().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    match response.bytes().await {
                        Ok(_) => Ok(status),
                        Err(error) => Err(format!("body: {error}")),
                    }
                }
                Err(error) if error.is_timeout() => Err("timeout".into()),
                Err(error) => Err(format!("transport: {error}")),
            };
            return (started.elapsed(), outcome);
        }
        let request = match kind {
            Kind::Card => unreachable!("answered above"),
            Kind::Single => self
                .http
                .post(format!("{}/v1/eligibility", self.args.server))
                .bearer_auth(&self.args.token)
                .json(&keys[n as usize % keys.len()]),
            Kind::Batch => {
                let start = n as usize % keys.len();
                let queries: Vec<&Value> = keys
                    .iter()
                    .cycle()
                    .skip(start)
                    .take(self.args.batch)
                    .collect();
                self.http
                    .post(format!("{}/v1/eligibility/batch", self.args.server))
                    .bearer_auth(&self.args.token)
                    .json(&json!({ "queries": queries }))
            }
            Kind::Upload => {
                let path = self.args.updates.as_ref().expect("an update file");
                let body = std::fs::read(path).expect("the update file");
                self.http
                    .post(format!("{}/v1/enrollments", self.args.server))
                    .bearer_auth(
                        self.args
                            .insurer_token
                            .as_deref()
                            .expect("--insurer-token-file with --updates"),
                    )
                    .header("Content-Type", "text/csv")
                    .header(
                        "Idempotency-Key",
                        format!("soak-{}-{n}", std::process::id()),
                    )
                    .body(body)
            }
        };
        let started = Instant::now();
        let outcome = match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                // The whole body, so that the latency includes it.
                match response.bytes().await {
                    Ok(_) => Ok(status),
                    Err(error) => Err(format!("body: {error}")),
                }
            }
            Err(error) if error.is_timeout() => Err("timeout".into()),
            Err(error) => Err(format!("transport: {error}")),
        };
        (started.elapsed(), outcome)
    }
}

/// Each kind's errors, and its answers with their p50, p99 and maximum.
fn print_tally(tally: &mut Tally) {
    for ((kind, status), count) in &tally.errors {
        println!("    error {kind:?} {status}: {count}");
    }
    for (kind, latencies) in tally.latencies.iter_mut() {
        latencies.sort();
        println!(
            "    {kind:?}: {} answered 200, p50 {:.1?}, p99 {:.1?}, max {:.1?}",
            latencies.len(),
            percentile(latencies, 0.50),
            percentile(latencies, 0.99),
            latencies.last().copied().unwrap_or_default()
        );
    }
}

fn seconds(arg: Option<String>) -> Duration {
    Duration::from_secs_f64(arg.map_or(10.0, |s| s.parse().expect("SECONDS is a number")))
}

/// `soak token-sign SECONDS`: the proofs a second the server's proof key signs, one thread per
/// signer it runs at once (the token's sessions), each signing a proof's claims as an answer
/// does (serializing them included).
fn token_sign(for_: Duration) {
    let settings = onshi::config::Settings::load().expect("the settings in the environment");
    let key = Arc::new(
        settings
            .proof
            .open(&settings.health_id)
            .expect("the proof key (eval \"$(ops/softhsm)\" for the token's)"),
    );
    let claims = support::claims();
    let signers = key.parallel_signers();
    let started = Instant::now();
    let threads: Vec<_> = (0..signers)
        .map(|_| {
            let (key, claims) = (key.clone(), claims.clone());
            std::thread::spawn(move || {
                let mut signed = 0u64;
                while started.elapsed() < for_ {
                    claims.sign(&key).expect("the key signs");
                    signed += 1;
                }
                signed
            })
        })
        .collect();
    let signed: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    println!(
        "{:.0} proof signatures/s ({} at once, {})",
        signed as f64 / started.elapsed().as_secs_f64(),
        signers,
        if key.in_token() {
            "in the token"
        } else {
            "in process"
        }
    );
}

/// `soak rsa-verify DIR SECONDS`: raw RSA-2048 PKCS#1 v1.5 SHA-256 verifications a second of a
/// signature by the card `prepare-card` wrote into DIR, on one thread.
fn rsa_verify(dir: &std::path::Path, for_: Duration) {
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::{Pkcs1v15Sign, RsaPublicKey};
    let key = rsa::RsaPrivateKey::from_pkcs8_der(
        &std::fs::read(dir.join("card.key")).expect("the card's key"),
    )
    .expect("a PKCS#8 key");
    let digest = [7u8; 32];
    let signature = key
        .sign(Pkcs1v15Sign::new::<sha2::Sha256>(), &digest)
        .expect("signing");
    let public = RsaPublicKey::from(&key);
    let started = Instant::now();
    let mut verified = 0u64;
    while started.elapsed() < for_ {
        public
            .verify(Pkcs1v15Sign::new::<sha2::Sha256>(), &digest, &signature)
            .expect("the signature verifies");
        verified += 1;
    }
    println!(
        "{:.0} RSA-2048 verifications/s (one thread)",
        verified as f64 / started.elapsed().as_secs_f64()
    );
}

fn rss_kib(pid: Option<u32>) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid?)).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// The least-squares slope of `(seconds, KiB)` samples, in MiB a minute (None: fewer than two).
fn slope_mib_per_minute(samples: &[(f64, u64)]) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let n = samples.len() as f64;
    let mean_t = samples.iter().map(|s| s.0).sum::<f64>() / n;
    let mean_m = samples.iter().map(|s| s.1 as f64).sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for &(t, m) in samples {
        num += (t - mean_t) * (m as f64 - mean_m);
        den += (t - mean_t) * (t - mean_t);
    }
    (den > 0.0).then(|| num / den * 60.0 / 1024.0)
}

/// How long after the load the server's memory is read once more.
const AFTER_LOAD: Duration = Duration::from_secs(30);

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() {
    let mut raw = std::env::args().skip(1).filter(|a| a != "--bench");
    match raw.next().as_deref() {
        Some("prepare-card") => {
            prepare_card(std::path::Path::new(&raw.next().expect("prepare-card DIR")));
            return;
        }
        Some("token-sign") => {
            token_sign(seconds(raw.next()));
            return;
        }
        Some("rsa-verify") => {
            let dir = PathBuf::from(raw.next().expect("rsa-verify DIR SECONDS"));
            rsa_verify(&dir, seconds(raw.next()));
            return;
        }
        // `cargo test --all-targets` runs every bench target once, without arguments: the soak
        // needs a server and minutes, so there it only says how it is run.
        None => {
            println!("the soak runs against a server: ops/bench soak");
            return;
        }
        Some(_) => {}
    }
    let load = Arc::new(Load {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1024)
            .build()
            .unwrap(),
        args: args(),
    });

    // 1. Capacity, closed loop.
    let counter = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let measured = Arc::new(Mutex::new(Tally::default()));
    let until = Instant::now() + load.args.measure;
    let workers: Vec<_> = (0..load.args.workers)
        .map(|_| {
            let (load, counter, measured) = (load.clone(), counter.clone(), measured.clone());
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < until {
                    let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let kind = load.pick(n);
                    let (took, outcome) = load.send(kind, n).await;
                    if outcome == Ok(200) {
                        done += 1;
                    }
                    measured.lock().unwrap().note(kind, took, outcome);
                }
                done
            })
        })
        .collect();
    let mut answered = 0;
    for worker in workers {
        answered += worker.await.unwrap();
    }
    let capacity = answered as f64 / load.args.measure.as_secs_f64();
    let rate = capacity * load.args.fraction;
    if load.args.soak.is_zero() {
        println!(
            "capacity (closed loop, {} workers, {:?}): {capacity:.0} req/s",
            load.args.workers, load.args.measure
        );
        print_tally(&mut measured.lock().unwrap());
        return;
    }
    println!(
        "capacity (closed loop, {} workers, {:?}): {capacity:.0} req/s; soak at {:.0} % = {rate:.0} req/s for {:?}",
        load.args.workers,
        load.args.measure,
        load.args.fraction * 100.0,
        load.args.soak
    );

    // 2. The soak, open loop.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_start = rss_kib(load.args.pid);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started = Instant::now();
    // The server's memory every --rss-seconds, from the start (0 s) to the end of the soak.
    let rss_samples = Arc::new(Mutex::new(Vec::<(f64, u64)>::new()));
    let sampler = {
        let (samples, pid, every) = (rss_samples.clone(), load.args.pid, load.args.rss_every);
        tokio::spawn(async move {
            let mut ticks =
                tokio::time::interval_at(tokio::time::Instant::from_std(started), every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                if let Some(kib) = rss_kib(pid) {
                    let at = started.elapsed().as_secs_f64();
                    samples.lock().unwrap().push((at, kib));
                }
            }
        })
    };
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(1.0)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    // Open loop, but with at most `--max-in-flight` requests open at once: the desks of a region
    // are many but not unbounded, and an unbounded sender would measure how many connections
    // the server can hold rather than how it holds up. A tick that finds every slot taken waits
    // for one and counts as the sender falling behind.
    let slots = Arc::new(tokio::sync::Semaphore::new(load.args.max_in_flight));
    let mut in_flight = Vec::new();
    let mut n = 0u64;
    let mut next_upload = started + Duration::from_secs(30);
    let mut late = 0u64;
    while started.elapsed() < load.args.soak {
        ticker.tick().await;
        let mut kind = load.pick(n);
        if load.args.updates.is_some() && Instant::now() >= next_upload {
            kind = Kind::Upload;
            next_upload += Duration::from_secs(60);
        }
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                late += 1;
                slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore stays open")
            }
        };
        let (l, t) = (load.clone(), tally.clone());
        in_flight.push(tokio::spawn(async move {
            let (took, outcome) = l.send(kind, n).await;
            t.lock().unwrap().note(kind, took, outcome);
            drop(slot);
        }));
        n += 1;
        if in_flight.len() >= 4096 {
            in_flight.retain(|h| !h.is_finished());
        }
    }
    for handle in in_flight {
        handle.await.unwrap();
    }
    let elapsed = started.elapsed();
    let rss_end = rss_kib(load.args.pid);
    sampler.abort();
    let mut rss_samples = rss_samples.lock().unwrap().clone();
    if let Some(end) = rss_end {
        rss_samples.push((elapsed.as_secs_f64(), end));
    }
    // Once the load's connections are closed (the client dropped), what the server still holds
    // is its own: memory that falls back then was per-connection, not a leak.
    let (pid, rss_every) = (load.args.pid, load.args.rss_every);
    drop(load);
    tokio::time::sleep(AFTER_LOAD).await;
    let rss_after = rss_kib(pid);

    let mut tally = tally.lock().unwrap();
    let errors: u64 = tally.errors.values().sum();
    println!(
        "soak: {n} requests in {elapsed:.1?} ({:.0} req/s), {errors} errors{}",
        n as f64 / elapsed.as_secs_f64(),
        if late > 0 {
            format!(", the sender fell behind {late} times")
        } else {
            String::new()
        }
    );
    print_tally(&mut tally);
    match (rss_start, rss_end) {
        (Some(a), Some(b)) => println!(
            "    server memory (RSS): {} MiB at the start, {} MiB at the end",
            a / 1024,
            b / 1024
        ),
        _ => println!("    server memory: not measured (no --pid)"),
    }
    if !rss_samples.is_empty() {
        let max = rss_samples.iter().map(|s| s.1).max().unwrap_or_default();
        let half = elapsed.as_secs_f64() / 2.0;
        let second_half: Vec<_> = rss_samples
            .iter()
            .copied()
            .filter(|s| s.0 >= half)
            .collect();
        println!(
            "    server memory samples (every {:?}): max {:.1} MiB; slope over the whole soak {}, over the second half {}",
            rss_every,
            mib(max),
            slope_mib_per_minute(&rss_samples)
                .map_or("n/a".to_owned(), |s| format!("{s:+.2} MiB/min")),
            slope_mib_per_minute(&second_half)
                .map_or("n/a".to_owned(), |s| format!("{s:+.2} MiB/min")),
        );
        println!("      elapsed s   RSS MiB");
        for (at, kib) in &rss_samples {
            println!("      {at:>9.0}   {:>7.1}", mib(*kib));
        }
        if let Some(after) = rss_after {
            println!(
                "    server memory {AFTER_LOAD:?} after the load, its connections closed: {:.1} MiB",
                mib(after)
            );
        }
    }
}
