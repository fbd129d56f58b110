//! The link between a [`VirtualCard`] and vsmartcard's vpcd: the card is a TCP client of
//! the virtual reader's port. Both ways a message is a 2-byte big-endian length and the
//! payload; a 1-byte message from the reader is a control (00 power off, 01 power on,
//! 02 reset, 04 "send your ATR"), anything longer is a command APDU answered by exactly
//! one framed response.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread::JoinHandle;

use socket2::SockRef;

use super::card::VirtualCard;

/// The contact ATR of the My Number card.
pub const ATR: [u8; 9] = [0x3B, 0xE0, 0x00, 0xFF, 0x81, 0x31, 0xFE, 0x45, 0x14];
/// vpcd's port for the reader "Virtual PCD 00 00"; "00 01" is the next one.
pub const DEFAULT_PORT: u16 = 35963;

/// Serves `card` on a connected vpcd stream until vpcd or [`RunningCard::stop`] closes
/// it. With `trace`, every command and response goes to stderr, PIN data redacted.
///
/// # Errors
/// Socket errors other than the peer closing.
pub fn serve(stream: &TcpStream, card: &mut VirtualCard, trace: bool) -> io::Result<()> {
    // Responses go out in one write, and without Nagle's delay.
    stream.set_nodelay(true)?;
    let mut reader = stream;
    let mut writer = stream;
    loop {
        let mut len = [0u8; 2];
        if !read_full(&mut reader, &mut len)? {
            return Ok(());
        }
        let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if !read_full(&mut reader, &mut msg)? {
            return Ok(());
        }
        let reply = match msg.as_slice() {
            [0x00] | [0x01] | [0x02] => {
                card.reset();
                None
            }
            [0x04] => Some(ATR.to_vec()),
            [_] | [] => None,
            apdu => {
                let resp = card.process(apdu);
                if trace {
                    eprintln!("virtual card: > {}", redacted_hex(apdu));
                    eprintln!("virtual card: < {}", hex(&resp));
                }
                Some(resp)
            }
        };
        if let Some(payload) = reply {
            let mut framed = Vec::with_capacity(payload.len() + 2);
            // Responses are at most 258 bytes, far below the 16-bit length limit.
            framed.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            framed.extend_from_slice(&payload);
            writer.write_all(&framed)?;
        }
    }
}

/// Fills `buf`; `false` if the peer closed (or we shut the socket down) first.
fn read_full(reader: &mut &TcpStream, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        // vpcd writes the length and the APDU separately; without QUICKACK (which the
        // kernel clears after each ACK) the delayed ACK costs ~40 ms per APDU.
        SockRef::from(*reader).set_tcp_quickack(true)?;
        match reader.read(&mut buf[filled..]) {
            Ok(0) => return Ok(false),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_closed(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02X}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Hex of a command APDU with a VERIFY's PIN bytes masked.
fn redacted_hex(apdu: &[u8]) -> String {
    match apdu {
        [_, 0x20, _, _, lc, ..] if apdu.len() > 5 => {
            format!("{} <{lc} PIN bytes>", hex(&apdu[..5]))
        }
        _ => hex(apdu),
    }
}

/// A virtual card served on its own thread; stopping it is taking the card off.
pub struct RunningCard {
    stream: TcpStream,
    thread: Option<JoinHandle<io::Result<()>>>,
}

impl RunningCard {
    /// Connects to vpcd at `addr` and serves `card` on a new thread.
    ///
    /// # Errors
    /// If vpcd is not listening (pcscd not running).
    pub fn spawn(mut card: VirtualCard, addr: SocketAddr) -> io::Result<RunningCard> {
        let stream = TcpStream::connect(addr)?;
        let theirs = stream.try_clone()?;
        let thread = std::thread::Builder::new()
            .name(format!("virtual-card-{}", addr.port()))
            .spawn(move || serve(&theirs, &mut card, false))?;
        Ok(RunningCard {
            stream,
            thread: Some(thread),
        })
    }

    /// Takes the card off the reader: closes the connection and waits for the thread.
    ///
    /// # Errors
    /// The error that ended the card's thread, if any.
    pub fn stop(mut self) -> io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        // Already closed by vpcd when this fails; the join below still reports why.
        let _ = self.stream.shutdown(Shutdown::Both);
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the virtual card thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for RunningCard {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_data_is_never_traced() {
        let shown = redacted_hex(&[0x00, 0x20, 0x00, 0x80, 0x04, b'1', b'2', b'3', b'4']);
        assert_eq!(shown, "00 20 00 80 04 <4 PIN bytes>");
        assert!(!shown.contains("31"));
        assert_eq!(redacted_hex(&[0x00, 0x20, 0x00, 0x80]), "00 20 00 80");
    }
}
