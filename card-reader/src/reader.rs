//! The PC/SC side: one context with pcscd, the list of readers, waiting for a card to be
//! put on (or taken off) a reader, and connecting to it.

use std::ffi::{CStr, CString};
use std::time::{Duration, Instant};

use pcsc::{Context, Protocols, ReaderState, Scope, ShareMode, State};

use crate::error::{Error, Result};

/// A connection to the PC/SC service and the readers it knows.
pub struct Readers {
    ctx: Context,
}

/// What [`Readers::wait_for`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// A card is on the reader and answered its ATR.
    Present,
    /// No card is on the reader.
    Empty,
}

impl Readers {
    /// Connects to pcscd.
    ///
    /// # Errors
    /// [`Error::ServiceUnavailable`] when pcscd is not running.
    pub fn establish() -> Result<Readers> {
        let ctx = Context::establish(Scope::User).map_err(|e| Error::from_pcsc("establish", e))?;
        Ok(Readers { ctx })
    }

    /// The names of all readers, in pcscd's order; empty when there are none.
    ///
    /// # Errors
    /// PC/SC failures other than "no readers".
    pub fn list(&self) -> Result<Vec<String>> {
        Ok(self
            .list_c()?
            .into_iter()
            .map(|n| n.to_string_lossy().into_owned())
            .collect())
    }

    fn list_c(&self) -> Result<Vec<CString>> {
        match self.ctx.list_readers_owned() {
            Ok(names) => Ok(names),
            Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
            Err(e) => Err(Error::from_pcsc("list readers", e)),
        }
    }

    /// The readers to watch: the one named `wanted` (exact name, or the only reader whose
    /// name contains it), or all of them.
    ///
    /// # Errors
    /// [`Error::NoReader`] when there is no reader, or none (or several) match `wanted`.
    pub fn resolve(&self, wanted: Option<&str>) -> Result<Vec<CString>> {
        let all = self.list_c()?;
        let no_reader = || Error::NoReader {
            wanted: wanted.map(str::to_owned),
        };
        let Some(wanted) = wanted else {
            return if all.is_empty() {
                Err(no_reader())
            } else {
                Ok(all)
            };
        };
        if let Some(exact) = all.iter().find(|n| n.to_bytes() == wanted.as_bytes()) {
            return Ok(vec![exact.clone()]);
        }
        let mut matching = all
            .into_iter()
            .filter(|n| n.to_string_lossy().contains(wanted));
        match (matching.next(), matching.next()) {
            (Some(one), None) => Ok(vec![one]),
            _ => Err(no_reader()),
        }
    }

    /// Waits until a card is PRESENT on one of the readers `wanted` resolves to, and
    /// returns that reader's name. Uses pcscd's change notifications, not polling.
    ///
    /// # Errors
    /// [`Error::NoReader`], or [`Error::NoCard`] after `timeout`.
    pub fn wait_for_card(&self, wanted: Option<&str>, timeout: Duration) -> Result<CString> {
        let names = self.resolve(wanted)?;
        self.wait_for(&names, Presence::Present, timeout)
    }

    /// Waits until one of `names` reaches `want` and returns its name.
    ///
    /// # Errors
    /// [`Error::NoCard`] when `timeout` passes first (for [`Presence::Empty`] too: the
    /// caller knows what it waited for).
    pub fn wait_for(
        &self,
        names: &[CString],
        want: Presence,
        timeout: Duration,
    ) -> Result<CString> {
        let deadline = Instant::now() + timeout;
        let mut states: Vec<ReaderState> = names
            .iter()
            .map(|n| ReaderState::new(n.clone(), State::UNAWARE))
            .collect();
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match self.ctx.get_status_change(remaining, &mut states) {
                Ok(()) => {}
                Err(pcsc::Error::Timeout) => return Err(Error::NoCard { waited: timeout }),
                Err(e) => return Err(Error::from_pcsc("wait for the card", e)),
            }
            for state in &mut states {
                let ev = state.event_state();
                let reached = match want {
                    // A MUTE card did not answer its ATR: not usable yet.
                    Presence::Present => ev.contains(State::PRESENT) && !ev.contains(State::MUTE),
                    Presence::Empty => ev.contains(State::EMPTY),
                };
                if reached {
                    return Ok(state.name().to_owned());
                }
                if ev.intersects(State::UNKNOWN | State::UNAVAILABLE) {
                    return Err(Error::NoReader {
                        wanted: Some(state.name().to_string_lossy().into_owned()),
                    });
                }
                state.sync_current_state();
            }
        }
    }

    /// Connects exclusively to the card on `reader`, so no other program can reset it or
    /// use its verified PIN while we hold it.
    ///
    /// # Errors
    /// [`Error::CardRemoved`] if the card went away; other PC/SC failures.
    pub fn connect(&self, reader: &CStr) -> Result<pcsc::Card> {
        self.ctx
            .connect(reader, ShareMode::Exclusive, Protocols::ANY)
            .map_err(|e| match e {
                pcsc::Error::SharingViolation => Error::Unexpected(
                    anyhow::Error::new(e).context("another program is using the card"),
                ),
                e => Error::from_pcsc("connect to the card", e),
            })
    }
}
