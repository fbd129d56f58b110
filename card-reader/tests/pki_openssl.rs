//! The synthetic PKI is what the server's tests say it is, checked with an independent X.509
//! implementation (the `openssl` command): the CRLs verify under their CAs, a revoked card is
//! revoked, the stale CRL is expired, the CA renewed under the same name is told apart by key
//! identifier, and the certificate without basicConstraints and keyUsage is no CA.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use support::pki;

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs (Debian openssl)")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The PKI as `onshi-virtual-card pki` writes it, plus PEM forms of the CRLs.
fn written() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("onshi-pki-openssl-{}", std::process::id()));
    pki().write_to(&dir).expect("write the PKI");
    std::fs::write(dir.join("stale.crl"), &pki().stale_crl_der).unwrap();
    for crl in ["user-auth-ca", "root-ca", "user-auth-ca-renewed", "stale"] {
        let (der, pem) = (format!("{crl}.crl"), format!("{crl}.crl.pem"));
        let out = openssl(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            &p(&dir, &der),
            "-out",
            &p(&dir, &pem),
        ]);
        assert!(out.status.success(), "{}", text(&out));
    }
    let both: Vec<u8> = ["user-auth-ca.pem", "user-auth-ca-renewed.pem"]
        .iter()
        .flat_map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    std::fs::write(dir.join("both-user-cas.pem"), both).unwrap();
    dir
}

fn p(dir: &Path, file: &str) -> String {
    dir.join(file).to_string_lossy().into_owned()
}

#[test]
fn openssl_agrees_with_the_shape_of_the_test_pki() {
    let dir = written();
    let d = |f: &str| p(&dir, f);
    for (crl, ca) in [
        ("user-auth-ca.crl", "user-auth-ca.pem"),
        ("root-ca.crl", "root-ca.pem"),
        ("user-auth-ca-renewed.crl", "user-auth-ca-renewed.pem"),
    ] {
        let out = openssl(&[
            "crl",
            "-inform",
            "DER",
            "-in",
            &d(crl),
            "-CAfile",
            &d(ca),
            "-noout",
        ]);
        assert!(text(&out).contains("verify OK"), "{crl}: {}", text(&out));
    }
    // Both user-authentication CAs share one name: openssl picks each card's by key identifier.
    for person in ["person-valid.pem", "person-renewed.pem"] {
        let out = openssl(&[
            "verify",
            "-CAfile",
            &d("root-ca.pem"),
            "-untrusted",
            &d("both-user-cas.pem"),
            &d(person),
        ]);
        assert!(out.status.success(), "{person}: {}", text(&out));
    }
    let all_crls: Vec<u8> = ["user-auth-ca.crl.pem", "root-ca.crl.pem"]
        .iter()
        .flat_map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    std::fs::write(dir.join("crls.pem"), all_crls).unwrap();
    let check = |person: &str, crls: &str| {
        openssl(&[
            "verify",
            "-crl_check_all",
            "-CAfile",
            &d("root-ca.pem"),
            "-untrusted",
            &d("user-auth-ca.pem"),
            "-CRLfile",
            &d(crls),
            &d(person),
        ])
    };
    assert!(check("person-valid.pem", "crls.pem").status.success());
    let revoked = check("person-revoked.pem", "crls.pem");
    assert!(
        !revoked.status.success() && text(&revoked).contains("revoked"),
        "{}",
        text(&revoked)
    );
    let stale: Vec<u8> = ["stale.crl.pem", "root-ca.crl.pem"]
        .iter()
        .flat_map(|f| std::fs::read(dir.join(f)).unwrap())
        .collect();
    std::fs::write(dir.join("stale-crls.pem"), stale).unwrap();
    let expired = check("person-valid.pem", "stale-crls.pem");
    assert!(
        text(&expired).contains("CRL has expired"),
        "{}",
        text(&expired)
    );
    // A certificate without basicConstraints and keyUsage issues nothing (RFC 5280; openssl
    // enforces it with -x509_strict, as it accepts such legacy anchors otherwise).
    let out = openssl(&[
        "verify",
        "-x509_strict",
        "-CAfile",
        &d("not-a-ca.pem"),
        &d("person-of-not-a-ca.pem"),
    ]);
    assert!(
        text(&out).contains("invalid CA certificate"),
        "{}",
        text(&out)
    );
    let _ = std::fs::remove_dir_all(dir);
}
