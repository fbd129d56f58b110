//! Just enough of a Rust reader for the OpenAPI test: tells code apart from comments and
//! string and char literals, so that a parenthesis or a pattern inside a message is not read as
//! code, and reads the calls the test looks for.

/// A Rust source with its code told apart from comments and literals, enough to find calls and
/// read their string arguments without being misled by parentheses or text inside messages.
pub(super) struct Rust<'a> {
    src: &'a str,
    /// Per byte: true for code, false inside a comment or a string or char literal.
    code: Vec<bool>,
}

impl<'a> Rust<'a> {
    pub(super) fn new(src: &'a str) -> Self {
        let b = src.as_bytes();
        let mut code = vec![true; b.len()];
        let mut i = 0;
        while i < b.len() {
            let start = i;
            if b[i..].starts_with(b"//") {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            } else if b[i..].starts_with(b"/*") {
                i = src[i + 2..]
                    .find("*/")
                    .map_or(b.len(), |end| i + 2 + end + 2);
            } else if b[i] == b'"' {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            } else if let Some(hashes) = raw_string_hashes(b, i) {
                let close = format!("\"{}", "#".repeat(hashes));
                let body = i + 2 + hashes;
                i = src[body..]
                    .find(&close)
                    .map_or(b.len(), |end| body + end + close.len());
            } else if b[i] == b'\'' && b.get(i + 1) == Some(&b'\\') {
                // An escaped char literal: '\n', '\'', '\u{3000}'.
                i = src
                    .get(i + 3..)
                    .and_then(|rest| rest.find('\''))
                    .map_or(b.len(), |end| i + 3 + end + 1);
            } else if b[i] == b'\'' {
                // A char literal ('x', 'ア') or a lifetime ('a): only the former closes.
                let width = src[i + 1..].chars().next().map_or(0, char::len_utf8);
                if b.get(i + 1 + width) == Some(&b'\'') {
                    i += width + 2;
                } else {
                    i += 1;
                    continue;
                }
            } else {
                i += 1;
                continue;
            }
            let end = i.min(b.len());
            code[start..end].iter_mut().for_each(|c| *c = false);
            i = end;
        }
        Rust { src, code }
    }

    /// Where `needle` starts in code (not in a comment or literal).
    pub(super) fn find_code(&self, needle: &str) -> Vec<usize> {
        self.src
            .match_indices(needle)
            .map(|(at, _)| at)
            .filter(|&at| self.code[at])
            .collect()
    }

    /// The first code byte `wanted` at or after `from`, at the same parenthesis depth.
    pub(super) fn next_code_byte(&self, from: usize, wanted: u8) -> Option<usize> {
        let mut depth = 0i32;
        for (i, &c) in self.src.as_bytes().iter().enumerate().skip(from) {
            if !self.code[i] {
                continue;
            }
            match c {
                _ if c == wanted && depth == 0 => return Some(i),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth -= 1,
                _ => {}
            }
            if depth < 0 {
                return None;
            }
        }
        None
    }

    /// The string literal starting at `from` after whitespace, and where it ends.
    pub(super) fn string_at(&self, from: usize) -> Option<(String, usize)> {
        let rest = &self.src[from..];
        let start = from + (rest.len() - rest.trim_start().len());
        let body = self.src[start..].strip_prefix('"')?;
        let end = body.find('"')?;
        let value = &body[..end];
        (!value.contains('\\')).then(|| (value.to_owned(), start + 1 + end + 1))
    }
}

/// The number of `#` when a raw string literal (`r"`, `r#"`, ...) starts at `i`.
fn raw_string_hashes(b: &[u8], i: usize) -> Option<usize> {
    let after_ident = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
    if b[i] != b'r' || after_ident {
        return None;
    }
    let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
    (b.get(i + 1 + hashes) == Some(&b'"')).then_some(hashes)
}
