//! Shared helpers of the card tests: one synthetic PKI per test binary, exclusive use of
//! a virtual reader across test threads *and* test processes, and virtual cards that
//! are put on and taken off the reader the way pcscd needs (wait for PRESENT after
//! inserting, for EMPTY after removing).
#![allow(dead_code)] // Each test binary uses a different part of the helpers.

use std::ffi::CString;
use std::fs::{File, OpenOptions, TryLockError};
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use card_reader::reader::Presence;
use card_reader::virtual_card::{CardProfile, RunningCard, TestPki, DEFAULT_PORT};
use card_reader::Readers;

/// The synthetic PIN of the test cards.
pub const PIN: [u8; 4] = *b"1234";
/// How long a virtual card may take to show up (pcscd polls about every 0.4 s).
const SETTLE: Duration = Duration::from_secs(10);

/// The test binary's PKI, generated once (eight RSA-2048 keys).
pub fn pki() -> &'static TestPki {
    static PKI: OnceLock<TestPki> = OnceLock::new();
    PKI.get_or_init(|| TestPki::generate().expect("generate the synthetic PKI"))
}

/// A card with the valid person's certificate and key, full tries.
pub fn profile() -> CardProfile {
    let pki = pki();
    pki.card_profile(&pki.person_valid, PIN)
}

/// Fails the test, with the fix, when pcscd and the virtual readers are not there.
pub fn require_stack() -> Readers {
    const FIX: &str = "the card tests need pcscd with vsmartcard-vpcd: run `sudo ops/card-stack`";
    let readers = Readers::establish().unwrap_or_else(|e| panic!("{e}: {FIX}"));
    let names = readers.list().unwrap_or_else(|e| panic!("{e}: {FIX}"));
    for want in ["Virtual PCD 00 00", "Virtual PCD 00 01"] {
        assert!(
            names.iter().any(|n| n == want),
            "no reader {want:?} (readers: {names:?}): {FIX}"
        );
    }
    readers
}

/// Exclusive use of one virtual reader, held until dropped.
pub struct Slot {
    // Held for its lock; released when the file is closed.
    _lock: File,
    pub port: u16,
    pub name: String,
    pub readers: Readers,
}

impl Slot {
    /// Takes whichever of the two virtual readers is free (waiting if both are busy),
    /// and makes sure it is empty.
    pub fn acquire() -> Slot {
        let readers = require_stack();
        let ports = [DEFAULT_PORT, DEFAULT_PORT + 1];
        let files: Vec<File> = ports
            .iter()
            .map(|p| {
                OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(format!("/tmp/onshi-card-reader-vpcd-{p}.lock"))
                    .expect("open the reader lock file")
            })
            .collect();
        let (lock, i) = 'found: loop {
            for (i, f) in files.iter().enumerate() {
                match f.try_lock() {
                    Ok(()) => break 'found (f.try_clone().expect("dup lock file"), i),
                    Err(TryLockError::WouldBlock) => {}
                    Err(TryLockError::Error(e)) => panic!("lock the reader: {e}"),
                }
            }
            // Both readers are in use by other tests; waiting on a lock, not on pcscd.
            std::thread::sleep(Duration::from_millis(20));
        };
        let name = format!("Virtual PCD 00 0{i}");
        let slot = Slot {
            _lock: lock,
            port: ports[i],
            name,
            readers,
        };
        slot.wait(Presence::Empty);
        slot
    }

    pub fn c_name(&self) -> CString {
        CString::new(self.name.clone()).expect("no NUL in reader name")
    }

    /// Waits until pcscd reports the reader in state `want`.
    pub fn wait(&self, want: Presence) {
        self.readers
            .wait_for(&[self.c_name()], want, SETTLE)
            .unwrap_or_else(|e| panic!("{} did not become {want:?}: {e}", self.name));
    }

    /// Puts a virtual card with `profile` on the reader and waits until it is PRESENT.
    pub fn insert(&self, profile: CardProfile) -> Inserted<'_> {
        let card = card_reader::virtual_card::VirtualCard::new(profile);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let running = RunningCard::spawn(card, addr).expect("connect the virtual card to vpcd");
        self.wait(Presence::Present);
        Inserted {
            slot: self,
            card: Some(running),
        }
    }
}

/// A virtual card on a reader; dropping it takes it off and waits for EMPTY.
pub struct Inserted<'a> {
    slot: &'a Slot,
    card: Option<RunningCard>,
}

impl Inserted<'_> {
    /// Takes the card off the reader.
    pub fn remove(mut self) {
        self.take_off();
    }

    fn take_off(&mut self) {
        if let Some(card) = self.card.take() {
            card.stop().expect("stop the virtual card");
            self.slot.wait(Presence::Empty);
        }
    }
}

impl Drop for Inserted<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Still take the card off so the next test finds an empty reader.
            if let Some(card) = self.card.take() {
                let _ = card.stop();
                let _ = self
                    .slot
                    .readers
                    .wait_for(&[self.slot.c_name()], Presence::Empty, SETTLE);
            }
        } else {
            self.take_off();
        }
    }
}
