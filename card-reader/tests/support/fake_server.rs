//! A minimal stand-in for the onshi server's card check, on a local port: issues
//! challenges, verifies the card's signature against the certificate sent, and answers
//! with a synthetic eligibility answer (or the documented error body).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use der::Decode;
use rand::RngCore;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const TOKEN: &str = "synthetic-facility-token";

/// A running fake server; it serves until the test process ends.
pub struct FakeServer {
    pub url: String,
    /// The bodies of the card checks received.
    pub checks: Arc<Mutex<Vec<Value>>>,
}

pub fn start() -> FakeServer {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake server");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    let checks = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&checks);
    std::thread::spawn(move || {
        let mut nonces: HashMap<String, Vec<u8>> = HashMap::new();
        for stream in listener.incoming().flatten() {
            handle(stream, &mut nonces, &seen);
        }
    });
    FakeServer { url, checks }
}

fn handle(stream: TcpStream, nonces: &mut HashMap<String, Vec<u8>>, seen: &Mutex<Vec<Value>>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_owned();
    let (status, answer) =
        if headers.get("authorization").map(String::as_str) != Some(&format!("Bearer {TOKEN}")) {
            error(
                401,
                "unauthenticated",
                "the facility token is not valid",
                None,
            )
        } else if path == "/v1/challenges" {
            let mut nonce = vec![0u8; 32];
            rand::thread_rng().fill_bytes(&mut nonce);
            let id = format!("ch-{}", nonces.len() + 1);
            nonces.insert(id.clone(), nonce.clone());
            let answer = json!({
                "challenge_id": id,
                "nonce": B64.encode(&nonce),
                "expires_at": "2099-01-01T00:00:00Z",
            });
            (201, answer)
        } else if path == "/v1/eligibility/card" {
            let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            seen.lock().expect("not poisoned").push(req.clone());
            card_check(&req, nonces)
        } else {
            error(404, "not_found", "no such endpoint", None)
        };
    let text = answer.to_string();
    let reason = if status < 300 { "OK" } else { "Error" };
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let mut stream = stream;
    let _ = stream.write_all(response.as_bytes());
}

fn error(status: u16, code: &str, message: &str, field: Option<&str>) -> (u16, Value) {
    (
        status,
        json!({"error": {"code": code, "message": message, "field": field}}),
    )
}

fn card_check(req: &Value, nonces: &mut HashMap<String, Vec<u8>>) -> (u16, Value) {
    let text = |k: &str| req.get(k).and_then(Value::as_str).unwrap_or("");
    let Some(nonce) = nonces.remove(text("challenge_id")) else {
        return error(
            409,
            "challenge_unknown",
            "the challenge is unknown or used",
            Some("challenge_id"),
        );
    };
    let (Ok(cert), Ok(sig)) = (
        B64.decode(text("certificate")),
        B64.decode(text("signature")),
    ) else {
        return error(
            400,
            "malformed",
            "certificate and signature must be base64",
            None,
        );
    };
    let Ok(cert) = x509_cert::Certificate::from_der(&cert) else {
        return error(
            400,
            "certificate_invalid",
            "not an X.509 certificate",
            Some("certificate"),
        );
    };
    let spk = cert
        .tbs_certificate
        .subject_public_key_info
        .subject_public_key
        .raw_bytes();
    let Ok(key) = RsaPublicKey::from_pkcs1_der(spk) else {
        return error(
            400,
            "certificate_invalid",
            "not an RSA key",
            Some("certificate"),
        );
    };
    let hash = Sha256::digest(&nonce);
    if key
        .verify(Pkcs1v15Sign::new::<Sha256>(), &hash, &sig)
        .is_err()
    {
        return error(
            422,
            "signature_invalid",
            "the card signature does not verify",
            Some("signature"),
        );
    }
    let subject = cert.tbs_certificate.subject.to_string();
    (
        200,
        json!({
            "validity": 1,
            "coverage": {
                "insurer_number": "06139999", "insurer_name": "Synthetic Health Insurance Society",
                "symbol": "1234", "number": "5678", "branch": "01",
                "name": "Shiken Hanako", "name_kana": "シケン ハナコ", "birth_date": "1985-06-15",
                "sex": "2", "copay_ratio": "030", "acquired_on": "2020-04-01", "lost_on": null
            },
            "advisories": ["the card certificate expires within 3 months"],
            "check_id": format!("chk-for-{subject}"),
        }),
    )
}
