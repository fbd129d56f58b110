//! The two encodings of the real system's files, and finding which one a request uses.

/// The two encodings of the real system, as `CharacterCodeIdentifier` numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// 0.
    Utf8,
    /// 1.
    ShiftJis,
}

impl Encoding {
    /// The `CharacterCodeIdentifier` value.
    pub fn identifier(self) -> &'static str {
        match self {
            Encoding::Utf8 => "0",
            Encoding::ShiftJis => "1",
        }
    }

    /// The name in the XML declaration.
    pub fn label(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::ShiftJis => "Shift_JIS",
        }
    }

    /// `utf-8` / `utf8` or `shift_jis` / `shift-jis` / `sjis` / `cp932` (any case).
    pub fn from_name(name: &str) -> Option<Encoding> {
        match name.to_ascii_lowercase().as_str() {
            "utf-8" | "utf8" => Some(Encoding::Utf8),
            "shift_jis" | "shift-jis" | "sjis" | "cp932" | "windows-31j" => {
                Some(Encoding::ShiftJis)
            }
            _ => None,
        }
    }

    /// Encodes a document; a character Shift_JIS lacks becomes a numeric character reference,
    /// which any XML reader turns back into the character. So do the three the encoder would
    /// otherwise change into others (¥ into a backslash, ‾ into a tilde, − into －), as they
    /// are read back: the markup is ASCII, so they are only ever in text.
    pub fn encode(self, text: &str) -> Vec<u8> {
        match self {
            Encoding::Utf8 => text.as_bytes().to_vec(),
            Encoding::ShiftJis => {
                let kept = text
                    .replace('\u{a5}', "&#165;")
                    .replace('\u{203e}', "&#8254;")
                    .replace('\u{2212}', "&#8722;");
                encoding_rs::SHIFT_JIS.encode(&kept).0.into_owned()
            }
        }
    }

    /// Decodes a document strictly (a UTF-8 BOM is allowed); `None` when the bytes are not
    /// text in this encoding.
    pub fn decode(self, bytes: &[u8]) -> Option<String> {
        match self {
            Encoding::Utf8 => {
                let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
                std::str::from_utf8(bytes).ok().map(str::to_owned)
            }
            Encoding::ShiftJis => {
                let (text, had_errors) = encoding_rs::SHIFT_JIS.decode_without_bom_handling(bytes);
                (!had_errors).then(|| text.into_owned())
            }
        }
    }
}

/// The encoding a request is written in: `CharacterCodeIdentifier` 1, or a Shift_JIS XML
/// declaration, means Shift_JIS; anything else UTF-8. Both markers are ASCII, so they are found
/// before the bytes are decoded.
pub fn sniff(bytes: &[u8]) -> Encoding {
    let ascii = String::from_utf8_lossy(&bytes[..bytes.len().min(4096)]).to_ascii_lowercase();
    let compact: String = ascii.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.contains("<charactercodeidentifier>1</charactercodeidentifier>") {
        return Encoding::ShiftJis;
    }
    if compact.contains("<charactercodeidentifier>0</charactercodeidentifier>") {
        return Encoding::Utf8;
    }
    let declared = compact
        .split("?>")
        .next()
        .filter(|d| d.starts_with("<?xml"))
        .unwrap_or("");
    let shift_jis = ["shift_jis", "shift-jis", "sjis", "windows-31j", "cp932"]
        .iter()
        .any(|e| {
            declared.contains(&format!("encoding=\"{e}\""))
                || declared.contains(&format!("encoding='{e}'"))
        });
    if shift_jis {
        Encoding::ShiftJis
    } else {
        Encoding::Utf8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_jis_is_found_by_identifier_or_declaration() {
        let utf8 = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><XmlMsg/>";
        assert_eq!(sniff(utf8.as_bytes()), Encoding::Utf8);
        assert_eq!(
            sniff(utf8.replace("UTF-8", "Shift_JIS").as_bytes()),
            Encoding::ShiftJis
        );
        let identified = "<XmlMsg><MessageHeader><CharacterCodeIdentifier> 1 </CharacterCodeIdentifier></MessageHeader></XmlMsg>";
        assert_eq!(sniff(identified.as_bytes()), Encoding::ShiftJis);
        // The identifier wins over the declaration.
        let both = format!(
            "<?xml version=\"1.0\" encoding=\"Shift_JIS\"?>{}",
            identified.replace(" 1 ", "0")
        );
        assert_eq!(sniff(both.as_bytes()), Encoding::Utf8);
    }

    #[test]
    fn text_round_trips_and_bad_bytes_are_refused() {
        for encoding in [Encoding::Utf8, Encoding::ShiftJis] {
            let bytes = encoding.encode("記号１２ カクウ");
            assert_eq!(encoding.decode(&bytes).as_deref(), Some("記号１２ カクウ"));
        }
        assert_eq!(Encoding::Utf8.decode(b"\xff\xfe<"), None);
        assert_eq!(Encoding::ShiftJis.decode(b"\x82"), None);
        assert_eq!(Encoding::from_name("SJIS"), Some(Encoding::ShiftJis));
        assert_eq!(Encoding::from_name("utf-8"), Some(Encoding::Utf8));
        assert_eq!(Encoding::from_name("latin1"), None);
    }
}
