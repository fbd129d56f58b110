//! The proof of check in every eligibility answer, checked as an insurer would: with an
//! independent JOSE library (`jsonwebtoken`) and the public keys of `/.well-known/jwks.json`,
//! never with onshi's own verification; and with `onshi proof verify`, offline, by its exit code.

use base64::engine::general_purpose::{STANDARD as B64, URL_SAFE_NO_PAD as B64URL};
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use onshi::parties::Role;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::card::{challenge, linked_before, pki, sign_check, spawn_card_app_with};
use crate::helpers::{spawn_app, Csv, TestApp, FACILITY_CODE, INSURER};

/// What a claims system knows from the card, hashed as the proof's `coverage_digest` is.
fn digest(text: &str) -> String {
    B64URL.encode(Sha256::digest(text.as_bytes()))
}

/// The key set a server publishes, its answer held to the API description.
async fn jwks(address: &str) -> Value {
    let response = reqwest::get(format!("{address}/.well-known/jwks.json"))
        .await
        .unwrap();
    let response = crate::contract::checked("GET", response).await;
    assert_eq!(response.status(), 200, "the key set needs no token");
    response.json().await.unwrap()
}

/// The payload, when `proof` verifies under a key of `jwks` by the independent library.
fn verify_independently(proof: &str, jwks: &Value) -> Result<Value, String> {
    let set: JwkSet = serde_json::from_value(jwks.clone()).map_err(|e| e.to_string())?;
    let header = jsonwebtoken::decode_header(proof).map_err(|e| e.to_string())?;
    if header.alg != Algorithm::EdDSA {
        return Err(format!("alg {:?}", header.alg));
    }
    let kid = header.kid.ok_or("no kid")?;
    let jwk = set.find(&kid).ok_or(format!("no key {kid}"))?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    // A proof of check has no expiry: it is evidence for the claim, months later.
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(proof, &key, &validation)
        .map(|data| data.claims)
        .map_err(|e| e.to_string())
}

/// The header's JSON, read without verifying.
fn header(proof: &str) -> Value {
    let part = proof.split('.').next().unwrap();
    serde_json::from_slice(&B64URL.decode(part).unwrap()).unwrap()
}

/// Runs `onshi proof verify --jwks FILE` with `proof` on standard input.
fn cli_verify(jwks: &Value, proof: &str) -> (Option<i32>, String, String) {
    use std::io::Write;
    let file = std::env::temp_dir().join(format!("onshi-jwks-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&file, jwks.to_string()).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_onshi"))
        .args(["proof", "verify", "--jwks"])
        .arg(&file)
        .env_remove("ONSHI_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{proof}\n").as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    std::fs::remove_file(&file).unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// An app with one coverage (symbol 12, number 3456, branch 01, born 1980-04-01).
async fn app_with_coverage() -> TestApp {
    let app = spawn_app().await;
    app.load(
        &Csv::new()
            .acquire(1, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    app
}

fn query(number: &str) -> Value {
    // Full-width digits, as a desk may type them: the digest is of the folded form.
    json!({"insurer_number": INSURER, "symbol": "１２", "number": number, "branch": "01",
           "birth_date": "1980-04-01", "date_of_care": "2026-11-24"})
}

#[tokio::test]
async fn a_number_check_carries_a_proof_an_independent_library_verifies() {
    let app = app_with_coverage().await;
    let facility = app.party(Role::Facility, &[]).await;
    let before = chrono::Utc::now().timestamp();
    let (status, answer) = app
        .call("/v1/eligibility", &facility, &query("３４５６"))
        .await;
    assert_eq!(status, 200, "{answer:#}");
    let proof = answer["proof"].as_str().unwrap();
    let keys = jwks(&app.address).await;
    let claims = verify_independently(proof, &keys).unwrap();
    assert_eq!(claims["check_id"], answer["check_id"]);
    let iat = claims["iat"].as_i64().unwrap();
    assert!(iat >= before - 1 && iat <= chrono::Utc::now().timestamp() + 1);
    assert_eq!(claims["facility_code"], FACILITY_CODE);
    assert!(claims.get("party_id").is_none(), "{claims}");
    assert_eq!(claims["validity"], 1);
    assert_eq!(claims["date_of_care"], "2026-11-24");
    assert_eq!(
        claims["coverage_digest"],
        digest(&format!("{INSURER}:12:3456:01:1980-04-01"))
    );
    let head = header(proof);
    assert_eq!(
        (head["alg"].as_str(), head["typ"].as_str()),
        (Some("EdDSA"), Some("onshi-proof+jwt"))
    );
    // The kid is the RFC 7638 thumbprint of the published key.
    let key = &keys["keys"][0];
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        key["x"].as_str().unwrap()
    );
    assert_eq!(head["kid"].as_str(), Some(digest(&canonical).as_str()));
    assert_eq!(key["kid"], head["kid"]);

    // Nothing found: the proof names the key that was asked about, so that the claims system
    // can show it checked this card on this day.
    let (_, missing) = app
        .call("/v1/eligibility", &facility, &query("９９９９"))
        .await;
    assert_eq!(missing["validity"], 4);
    let claims = verify_independently(missing["proof"].as_str().unwrap(), &keys).unwrap();
    assert_eq!(
        (&claims["validity"], &claims["coverage_digest"]),
        (
            &json!(4),
            &json!(digest(&format!("{INSURER}:12:9999:01:1980-04-01")))
        )
    );
    assert_eq!(claims["check_id"], missing["check_id"]);
}

#[tokio::test]
async fn every_batch_entry_carries_its_own_proof_naming_the_claims_system() {
    let app = app_with_coverage().await;
    let claims_system = app.party(Role::Claims, &[]).await;
    let party_id: i64 = app
        .db()
        .await
        .query_one("select id from parties where role = 'claims'", &[])
        .await
        .unwrap()
        .get(0);
    let mut bad = query("3456");
    bad["insurer_number"] = json!("33120016");
    let (status, body) = app
        .call(
            "/v1/eligibility/batch",
            &claims_system,
            &json!({"queries": [query("3456"), bad, query("9999")]}),
        )
        .await;
    assert_eq!(status, 200, "{body:#}");
    let results = body["results"].as_array().unwrap();
    assert!(
        results[1].get("proof").is_none(),
        "a refused query has no answer to prove"
    );
    let keys = jwks(&app.address).await;
    let mut seen = Vec::new();
    for (result, number, validity) in [(&results[0], "3456", 1), (&results[2], "9999", 4)] {
        let claims = verify_independently(result["proof"].as_str().unwrap(), &keys).unwrap();
        assert_eq!(claims["check_id"], result["check_id"]);
        assert_eq!(claims["party_id"], party_id);
        assert!(claims.get("facility_code").is_none());
        assert_eq!(claims["validity"], validity);
        assert_eq!(
            claims["coverage_digest"],
            digest(&format!("{INSURER}:12:{number}:01:1980-04-01"))
        );
        seen.push(claims["check_id"].clone());
    }
    assert_ne!(seen[0], seen[1]);
}

#[tokio::test]
async fn a_card_check_carries_a_proof_of_the_cards_coverage() {
    let app = spawn_card_app_with(&pki().dir, |_| {}).await;
    app.load(
        &Csv::new()
            .acquire(1, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    let facility = app.party(Role::Facility, &[]).await;
    let person = &pki().pki.person_valid;
    linked_before(&app, person, 1).await;
    let (id, nonce) = challenge(&app, &facility).await;
    let body = json!({
        "certificate": B64.encode(&person.cert_der),
        "challenge_id": id,
        "signature": B64.encode(sign_check(&app, person, &nonce)),
        "date_of_care": "2026-11-24",
    });
    let (status, answer) = app.call("/v1/eligibility/card", &facility, &body).await;
    assert_eq!(status, 200, "{answer:#}");
    let claims =
        verify_independently(answer["proof"].as_str().unwrap(), &jwks(&app.address).await).unwrap();
    assert_eq!(claims["check_id"], answer["check_id"]);
    assert_eq!(claims["facility_code"], FACILITY_CODE);
    assert_eq!(claims["validity"], 1);
    assert_eq!(claims["date_of_care"], "2026-11-24");
    assert_eq!(
        claims["coverage_digest"],
        digest(&format!("{INSURER}:12:3456:01:1980-04-01"))
    );
}

/// `proof` with one base64url character of part `part` replaced (still valid base64url).
fn altered(proof: &str, part: usize) -> String {
    let mut parts: Vec<String> = proof.split('.').map(str::to_owned).collect();
    let target = &mut parts[part];
    let middle = target.len() / 2;
    let old = target.as_bytes()[middle];
    let new = if old == b'A' { "B" } else { "A" };
    target.replace_range(middle..=middle, new);
    parts.join(".")
}

#[tokio::test]
async fn a_tampered_proof_is_refused_and_the_command_says_so() {
    let app = app_with_coverage().await;
    let facility = app.party(Role::Facility, &[]).await;
    let (_, answer) = app.call("/v1/eligibility", &facility, &query("3456")).await;
    let proof = answer["proof"].as_str().unwrap();
    let keys = jwks(&app.address).await;

    let (code, stdout, stderr) = cli_verify(&keys, proof);
    assert_eq!(code, Some(0), "{stderr}");
    let printed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(printed["check_id"], answer["check_id"]);
    assert_eq!(printed["validity"], 1);

    // A payload changed by one byte (validity 1 said to be 2), the signature changed, a key the
    // set does not hold: each refused by the library and by the command.
    let payload = proof.split('.').nth(1).unwrap();
    let text = String::from_utf8(B64URL.decode(payload).unwrap()).unwrap();
    let forged_text = text.replace("\"validity\":1", "\"validity\":2");
    assert_ne!(forged_text, text);
    let forged = proof.replace(payload, &B64URL.encode(forged_text));
    let mut other_kid = header(proof);
    other_kid["kid"] = json!("not-a-published-key");
    let unknown_kid = proof.replacen(
        proof.split('.').next().unwrap(),
        &B64URL.encode(other_kid.to_string()),
        1,
    );
    for (tampered, what, reason) in [
        (forged, "payload", "does not verify"),
        (altered(proof, 2), "signature", "does not verify"),
        (unknown_kid, "kid", "no key"),
    ] {
        assert!(
            verify_independently(&tampered, &keys).is_err(),
            "a changed {what} verified"
        );
        let (code, stdout, stderr) = cli_verify(&keys, &tampered);
        assert_eq!(code, Some(1), "a changed {what}: {stdout}");
        assert!(stdout.is_empty(), "{stdout}");
        assert!(
            stderr.contains("NOT verified") && stderr.contains(reason),
            "{what}: {stderr}"
        );
    }
    let (code, _, stderr) = cli_verify(&json!({"keys": []}), proof);
    assert_eq!(code, Some(1), "{stderr}");
}

#[tokio::test]
async fn proofs_signed_before_a_rotation_still_verify() {
    let app = app_with_coverage().await;
    let facility = app.party(Role::Facility, &[]).await;
    let (_, before) = app.call("/v1/eligibility", &facility, &query("3456")).await;
    let old = before["proof"].as_str().unwrap().to_owned();
    assert_eq!(
        jwks(&app.address).await["keys"].as_array().unwrap().len(),
        1
    );

    // The operator starts the service with a new key.
    let new_key = app.proof_key_file.with_extension("rotated");
    onshi::secret_file::write_new(&new_key, "e1".repeat(32).as_bytes()).unwrap();
    let rotated = app
        .another_server(|s| s.proof.key_file = Some(new_key.clone()))
        .await;
    std::fs::remove_file(&new_key).unwrap();
    let answer: Value = app
        .send(
            app.http
                .post(format!("{rotated}/v1/eligibility"))
                .bearer_auth(&facility)
                .json(&query("3456")),
        )
        .await
        .json()
        .await
        .unwrap();
    let new = answer["proof"].as_str().unwrap();
    assert_ne!(header(new)["kid"], header(&old)["kid"]);

    let keys = jwks(&rotated).await;
    let kids: Vec<&Value> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["kid"])
        .collect();
    assert_eq!(
        kids,
        [&header(new)["kid"], &header(&old)["kid"]],
        "newest first"
    );
    assert_eq!(
        verify_independently(&old, &keys).unwrap()["check_id"],
        before["check_id"]
    );
    assert!(verify_independently(new, &keys).is_ok());
    assert_eq!(cli_verify(&keys, &old).0, Some(0));
    // The restart with the new key published it for every server of the database.
    assert_eq!(jwks(&app.address).await, keys);
}

#[tokio::test]
async fn the_token_signs_proofs_with_its_own_pair() {
    let mut token = onshi::config::Settings::load_from(None, |name| std::env::var(name).ok())
        .expect("the settings in the environment are valid")
        .health_id;
    assert!(
        token.pkcs11_module.is_some() && std::env::var_os("SOFTHSM2_CONF").is_some(),
        "the PKCS#11 tests need a SoftHSM2 token: run eval \"$(ops/softhsm)\" (ops/test does)"
    );
    token.key_file = None;
    let in_token = token.clone();
    let app = spawn_app_with_token(in_token).await;
    let facility = app.party(Role::Facility, &[]).await;
    let (status, answer) = app.call("/v1/eligibility", &facility, &query("3456")).await;
    assert_eq!(status, 200, "{answer:#}");
    let proof = answer["proof"].as_str().unwrap();
    let keys = jwks(&app.address).await;
    assert_eq!(verify_independently(proof, &keys).unwrap()["validity"], 1);
    // The key is the token's pair, not one derived from a file.
    let pair = onshi::proof::ProofSettings::default().open(&token).unwrap();
    assert_eq!(
        format!("{pair:?}"),
        format!("ProofKey(<in token>, kid {})", pair.kid())
    );
    assert_eq!(header(proof)["kid"], pair.kid());
    assert_eq!(
        keys["keys"][0]["x"].as_str(),
        Some(B64URL.encode(pair.public_key()).as_str())
    );

    // A batch is signed in the token's sessions in parallel: every proof is its own answer's.
    let queries: Vec<Value> = (0..40)
        .map(|i| query(if i % 2 == 0 { "3456" } else { "999" }))
        .collect();
    let (status, batch) = app
        .call(
            "/v1/eligibility/batch",
            &facility,
            &json!({ "queries": queries }),
        )
        .await;
    assert_eq!(status, 200, "{batch:#}");
    let results = batch["results"].as_array().unwrap();
    assert_eq!(results.len(), 40);
    for (i, result) in results.iter().enumerate() {
        let claims = verify_independently(result["proof"].as_str().unwrap(), &keys).unwrap();
        assert_eq!(claims["check_id"], result["check_id"]);
        assert_eq!(claims["validity"], if i % 2 == 0 { 1 } else { 4 });
    }
}

async fn spawn_app_with_token(token: onshi::health_id::keys::KeySettings) -> TestApp {
    let app = crate::helpers::spawn_app_with(|s| {
        s.proof.key_file = None;
        s.proof.pkcs11_sessions = std::num::NonZeroUsize::new(3).unwrap();
        s.health_id = token;
    })
    .await;
    app.load(
        &Csv::new()
            .acquire(1, (INSURER, "12", "3456", "01"), "1980-04-01", "2020-04-01")
            .build(),
    )
    .await;
    app
}

/// Without a proof key (no file, no token) the server does not start: an answer without its
/// proof is never given.
#[tokio::test]
async fn serve_refuses_to_start_without_a_proof_key() {
    let dir = std::env::temp_dir().join(format!("onshi-no-proof-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(dir.join("witness")).unwrap();
    let (link_key, audit_key) = (dir.join("link.key"), dir.join("audit.key"));
    onshi::secret_file::write_new(&link_key, "5a".repeat(32).as_bytes()).unwrap();
    onshi::secret_file::write_new(&audit_key, crate::helpers::TEST_AUDIT_KEY.as_bytes()).unwrap();
    let mut settings = onshi::config::Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        link_key_file: Some(link_key),
        ..onshi::config::Settings::default()
    };
    settings.audit.key_file = Some(audit_key);
    settings.audit.witness_dir = Some(dir.join("witness"));
    let error = onshi::startup::Application::build(&settings)
        .await
        .err()
        .map(|e| format!("{e:#}"));
    std::fs::remove_dir_all(&dir).unwrap();
    let error = error.expect("the server started without a proof key");
    assert!(error.contains("no proof signing key"), "{error}");
}
