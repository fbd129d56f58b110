//! Every way a card is refused at a check, each with its own code: the certificate's profile,
//! issuer, chain, validity (the three-month grace for eligibility only), revocation and the
//! signature.

use card_reader::virtual_card::pki::Issued;

use super::{card_check, challenge, pki, setup, sign_sent};

/// Flips one bit of the first occurrence of `pattern` in `der`, `offset` bytes after its start.
fn altered(der: &[u8], pattern: &[u8], offset: usize) -> Vec<u8> {
    let mut out = der.to_vec();
    let at = out
        .windows(pattern.len())
        .position(|w| w == pattern)
        .unwrap()
        + offset;
    out[at] ^= 0x01;
    out
}

#[tokio::test]
async fn each_bad_card_has_its_own_code() {
    let (app, facility) = setup().await;
    let p = &pki().pki;
    let with_cert = |base: &Issued, cert_der: Vec<u8>| {
        let mut changed = base.clone();
        changed.cert_der = cert_der;
        changed
    };
    // One character of the subject's common name (the issuer has none, so the first commonName
    // OID is the subject's): the CA's signature no longer matches.
    let tampered = with_cert(
        &p.person_valid,
        altered(&p.person_valid.cert_der, &[0x55, 0x04, 0x03], 5),
    );
    // sha256WithRSAEncryption's OID inside tbsCertificate turned into sha384's: the inner and
    // outer algorithms differ.
    let sha256_rsa = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B];
    let mixed = with_cert(&p.person_valid, {
        let mut der = p.person_valid.cert_der.clone();
        let at = der.windows(9).position(|w| w == sha256_rsa).unwrap() + 8;
        der[at] = 0x0C;
        der
    });
    let cases: [(&Issued, bool, &str); 9] = [
        // First: its chain verifies (and is remembered by its bytes), so the tampered copy of
        // it below shows that a remembered chain never vouches for other bytes.
        (&p.person_valid, false, "signature.invalid"),
        (&p.person_revoked, true, "certificate.revoked"),
        (&p.person_expired, true, "certificate.expired"),
        (&p.foreign_person, true, "certificate.unknown_issuer"),
        // Its "CA" has neither basicConstraints cA nor keyUsage keyCertSign: no issuer.
        (&p.person_of_not_a_ca, true, "certificate.unknown_issuer"),
        // A CA's own certificate is no user-authentication certificate.
        (&p.user_ca, true, "certificate.not_for_authentication"),
        (&tampered, true, "certificate.bad_chain_signature"),
        (&mixed, true, "certificate.malformed"),
        // Issued by the CA renewed under the same name: found by its key identifier, verified,
        // and only then found unlinked.
        (&p.person_renewed, true, "card.not_linked"),
    ];
    for (person, good_signature, code) in cases {
        let (id, nonce) = challenge(&app, &facility).await;
        let signature = if good_signature {
            sign_sent(&app, person, &nonce)
        } else {
            sign_sent(&app, person, b"another nonce")
        };
        let (status, body) = card_check(&app, &facility, person, &id, &signature).await;
        let want = if code == "card.not_linked" { 404 } else { 422 };
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (want, Some(code)),
            "{code}: {body:#}"
        );
    }
    assert_eq!(
        app.count("disclosures").await,
        0,
        "a refused card discloses nothing"
    );
}

#[test]
fn certificates_stay_usable_for_three_months_after_expiry_for_eligibility_only() {
    use onshi::card::verify::{verify_certificate, Grace, Rejection};
    let p = &pki().pki;
    let snapshot =
        onshi::card::trust::Snapshot::load(&pki().dir, Some(&pki().dir), i64::MAX / 4).unwrap();
    let cert = x509_not_after(&p.person_valid.cert_der);
    let verify = |days: i64, grace| {
        verify_certificate(
            &snapshot,
            &p.person_valid.cert_der,
            cert + chrono::Duration::days(days),
            grace,
        )
    };
    assert!(!verify(-1, Grace::Eligibility).unwrap().in_grace);
    assert!(verify(80, Grace::Eligibility).unwrap().in_grace);
    assert_eq!(
        verify(95, Grace::Eligibility).unwrap_err(),
        Rejection::Expired
    );
    // Linking, unlinking and the holder's own view take no grace.
    assert!(verify(-1, Grace::None).is_ok());
    assert_eq!(verify(1, Grace::None).unwrap_err(), Rejection::Expired);
}

fn x509_not_after(der: &[u8]) -> chrono::DateTime<chrono::Utc> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(der).unwrap();
    let secs = cert
        .tbs_certificate
        .validity
        .not_after
        .to_unix_duration()
        .as_secs();
    chrono::DateTime::from_timestamp(secs as i64, 0).unwrap()
}

#[test]
fn a_ca_outside_its_validity_issues_nothing() {
    use onshi::card::verify::{verify_certificate, Grace, Rejection};
    let p = &pki().pki;
    let snapshot = onshi::card::trust::Snapshot::load(&pki().dir, Some(&pki().dir), 0).unwrap();
    // Three years ago the expired person's certificate was valid, but its CA (issued a day ago)
    // was not yet.
    let then = chrono::Utc::now() - chrono::Duration::days(3 * 365);
    assert_eq!(
        verify_certificate(
            &snapshot,
            &p.person_expired.cert_der,
            then,
            Grace::Eligibility
        )
        .unwrap_err(),
        Rejection::IssuerNotValid
    );
}

#[test]
fn a_crl_signed_by_a_ca_without_crl_sign_is_refused() {
    use onshi::card::crl::{self, CrlState};
    use x509_cert::ext::pkix::{KeyUsage, KeyUsages};
    let p = &pki().pki;
    let mut snapshot = onshi::card::trust::Snapshot::load(&pki().dir, None, 0).unwrap();
    let now = chrono::Utc::now().timestamp();
    let user_ca = |s: &onshi::card::trust::Snapshot| {
        s.cas
            .iter()
            .position(|ca| ca.der == p.user_ca.cert_der)
            .unwrap()
    };
    let i = user_ca(&snapshot);
    snapshot.cas[i].capabilities.key_usage = Some(KeyUsage(KeyUsages::KeyCertSign.into()));
    assert!(crl::apply(&mut snapshot.cas, &p.crl_der).is_err());
    assert!(matches!(
        snapshot.cas[i].revocation.state(now, 0),
        CrlState::Refused(_)
    ));
    // With cRLSign the same list is applied.
    snapshot.cas[i].capabilities.key_usage =
        Some(KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign));
    assert_eq!(crl::apply(&mut snapshot.cas, &p.crl_der).unwrap(), 1);
    assert_eq!(snapshot.cas[i].revocation.state(now, 0), CrlState::Current);
}
