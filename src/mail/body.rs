//! A text or HTML part's body, encoded for the wire exactly as lettre's `Body::new` encodes a
//! `String`, in linear time: lettre converts line endings by inserting a `\r` before each bare
//! `\n` in place (moving the rest of the text each time) and quoted-printable-encodes a byte
//! at a time; a 5 KB email spent about a fifth of its composing there (perf).
//!
//! The transfer encoding is chosen on the text before its line endings are converted, by
//! lettre's own chooser (`email_encoding`), as lettre does; a choice of base64 (never made for
//! our templates' text) is left to lettre itself. Owns nothing else: headers, boundaries and
//! the message are lettre's. The tests hold every output to lettre's, byte for byte.

use email_encoding::body::Encoding;
use lettre::message::Body;
use lettre::message::header::ContentTransferEncoding;

/// The longest encoded line, before its CRLF (RFC 2045's 76, as lettre's encoder has it).
const LINE: usize = 76;

/// The body lettre's `Body::new(text)` makes, byte for byte.
pub fn encode(text: String) -> Body {
    match Encoding::choose(text.as_str(), false) {
        Encoding::SevenBit => {
            Body::dangerous_pre_encoded(crlf(&text), ContentTransferEncoding::SevenBit)
        }
        Encoding::EightBit => {
            Body::dangerous_pre_encoded(crlf(&text), ContentTransferEncoding::EightBit)
        }
        Encoding::QuotedPrintable => Body::dangerous_pre_encoded(
            quoted_printable(&crlf(&text)),
            ContentTransferEncoding::QuotedPrintable,
        ),
        Encoding::Base64 => Body::new(text),
    }
}

/// `text` with every `\n` that does not follow a `\r` preceded by one.
fn crlf(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32);
    let mut from = 0;
    for at in memchr::memchr_iter(b'\n', bytes) {
        out.extend_from_slice(&bytes[from..at]);
        if at == 0 || bytes[at - 1] != b'\r' {
            out.push(b'\r');
        }
        from = at;
    }
    out.extend_from_slice(&bytes[from..]);
    out
}

/// Quoted-printable as the `quoted_printable` crate's `encode` writes text (which lettre
/// calls): CRLF kept as the line break, a bare CR encoded, a space or tab before a line break
/// encoded, lines broken softly at 76, and where a line is already full the soft break goes
/// before the last thing written.
fn quoted_printable(input: &[u8]) -> Vec<u8> {
    let mut line = Line {
        out: Vec::with_capacity(input.len() + input.len() / 16),
        length: 0,
        last: 0,
    };
    let mut after_cr = false;
    let mut at = 0;
    while at < input.len() {
        let byte = input[at];
        at += 1;
        if after_cr {
            if byte == b'\n' {
                line.encode_trailing_blank();
                line.out.extend_from_slice(b"\r\n");
                line.length = 0;
                after_cr = false;
                continue;
            }
            line.append(b"=0D");
        }
        after_cr = byte == b'\r';
        if after_cr {
            continue;
        }
        if LINE - line.length >= 3 && !needs_encoding(byte) {
            // A run of bytes that need no encoding, up to two short of the line's end.
            let start = at - 1;
            let stop = input.len().min(start + (LINE - line.length - 2));
            while at < stop && !needs_encoding(input[at]) {
                at += 1;
            }
            line.out.extend_from_slice(&input[start..at]);
            line.length += at - start;
            line.last = line.out.len();
            continue;
        }
        match byte {
            b'=' => line.append(b"=3D"),
            b'\t' | b' '..=b'~' => line.append(&[byte]),
            _ => line.append(&hex(byte)),
        }
    }
    if after_cr {
        line.append(b"=0D");
    } else {
        line.encode_trailing_blank();
    }
    line.out
}

fn needs_encoding(byte: u8) -> bool {
    !matches!(byte, b'\t' | b' '..=b'<' | b'>'..=b'~')
}

fn hex(byte: u8) -> [u8; 3] {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    [
        b'=',
        DIGITS[usize::from(byte >> 4)],
        DIGITS[usize::from(byte & 0x0f)],
    ]
}

/// The encoder's output and where it stands on its current line.
struct Line {
    out: Vec<u8>,
    /// Bytes on the current line.
    length: usize,
    /// Where the last thing appended starts (or the end of the last run).
    last: usize,
}

impl Line {
    fn append(&mut self, piece: &[u8]) {
        if self.length + piece.len() > LINE {
            if self.length == LINE {
                // No room for the soft break's `=`: it goes before the last thing written.
                self.length = self.out.len() - self.last;
                self.out.splice(self.last..self.last, *b"=\r\n");
            } else {
                self.out.extend_from_slice(b"=\r\n");
                self.length = 0;
            }
        }
        self.out.extend_from_slice(piece);
        self.length += piece.len();
        self.last = self.out.len() - piece.len();
    }

    /// A space or tab must not end an encoded line: the last one written is encoded.
    fn encode_trailing_blank(&mut self) {
        let encoded: &[u8] = match self.out.last() {
            Some(b' ') => b"=20",
            Some(b'\t') => b"=09",
            _ => return,
        };
        self.out.pop();
        self.length -= 1;
        self.append(encoded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lettres(text: &str) -> (ContentTransferEncoding, Vec<u8>) {
        let body = Body::new(text.to_owned());
        (body.encoding(), body.into_vec())
    }

    fn ours(text: &str) -> (ContentTransferEncoding, Vec<u8>) {
        let body = encode(text.to_owned());
        (body.encoding(), body.into_vec())
    }

    #[test]
    fn the_edges_of_lines_encode_as_lettre_encodes_them() {
        let cases = [
            String::new(),
            "plain ASCII\nin lines\n".to_owned(),
            "\nstarts with a line break, ends with a space \n".to_owned(),
            "a bare CR\r in the middle and one at the end\r".to_owned(),
            "CRLF already\r\nand LF\nmixed\r\r\n".to_owned(),
            format!("{}×\n", "x".repeat(75)),
            format!("{}= \n{}\t", "y".repeat(74), "é".repeat(40)),
            format!("{} \n", "z".repeat(75)),
            format!("{}€{}", "w".repeat(73), "v".repeat(200)),
            "trailing tab\t".to_owned(),
            "ends in a space ".to_owned(),
            "=".repeat(100),
            format!("{}\n", "long ascii line ".repeat(70)),
        ];
        for text in cases {
            assert_eq!(ours(&text), lettres(&text), "{text:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Text made of what makes quoted-printable hard: blanks, breaks, `=`, non-ASCII,
        /// and runs long enough to reach the line limit.
        #[test]
        fn any_text_encodes_as_lettre_encodes_it(
            pieces in proptest::collection::vec(
                prop_oneof![
                    Just(" ".to_owned()), Just("\t".to_owned()), Just("\n".to_owned()),
                    Just("\r".to_owned()), Just("\r\n".to_owned()), Just("=".to_owned()),
                    Just("×".to_owned()), Just("€".to_owned()), Just("ü".to_owned()),
                    "[a-z]{1,80}",
                    "[ -~]{1,120}",
                ],
                0..60,
            )
        ) {
            let text = pieces.concat();
            prop_assert_eq!(ours(&text), lettres(&text));
        }
    }
}
