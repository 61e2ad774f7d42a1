//! A text or HTML part's body, encoded for the wire exactly as lettre's `Body::new` encodes a
//! `String`, in linear time: lettre converts line endings by inserting a `\r` before each bare
//! `\n` in place (moving the rest of the text each time) and quoted-printable-encodes a byte
//! at a time; a 5 KB email spent about a fifth of its composing there (perf).
//!
//! The transfer encoding is chosen on the text before its line endings are converted, by the
//! rule of lettre's chooser (`email_encoding`, for a server without SMTPUTF8), counted a chunk
//! at a time instead of a byte at a time (lettre's count was a twentieth of a message's
//! instructions); a choice of base64 (never made for our templates' text) is left to lettre
//! itself. Owns nothing else: headers, boundaries and the message are lettre's. The tests
//! hold every output to lettre's, byte for byte.

use lettre::message::Body;
use lettre::message::header::ContentTransferEncoding;

/// The longest encoded line, before its CRLF (RFC 2045's 76, as lettre's encoder has it).
const LINE: usize = 76;

/// The body lettre's `Body::new(text)` makes, byte for byte.
pub fn encode(text: String) -> Body {
    match choose(text.as_bytes()) {
        Transfer::SevenBit => {
            Body::dangerous_pre_encoded(crlf(&text), ContentTransferEncoding::SevenBit)
        }
        Transfer::QuotedPrintable => Body::dangerous_pre_encoded(
            quoted_printable(&crlf(&text)),
            ContentTransferEncoding::QuotedPrintable,
        ),
        Transfer::Base64 => Body::new(text),
    }
}

/// The transfer encodings lettre chooses from for a server without SMTPUTF8 (no 8bit).
#[derive(Debug, PartialEq, Eq)]
enum Transfer {
    SevenBit,
    QuotedPrintable,
    Base64,
}

/// lettre's choice (`Encoding::choose(text, false)`): 7bit for ASCII whose lines all fit,
/// otherwise quoted-printable when at most a third of the bytes need escaping, else base64.
fn choose(text: &[u8]) -> Transfer {
    if text.is_ascii() && !line_too_long(text) {
        Transfer::SevenBit
    } else if escapes(text) <= text.len() / 3 {
        Transfer::QuotedPrintable
    } else {
        Transfer::Base64
    }
}

/// Whether a line (counted as lettre counts it: from one `\n` to the next, the first `\n`
/// included in the second line) reaches 76 bytes.
fn line_too_long(text: &[u8]) -> bool {
    let mut last = 0;
    memchr::memchr_iter(b'\n', text).any(|at| {
        let length = at - last;
        last = at;
        length >= LINE
    }) || text.len() - last >= LINE
}

/// How many bytes are neither a tab nor printable ASCII. Counted 64 bytes at a time into a
/// byte-wide sum, which the compiler turns into vector instructions.
fn escapes(text: &[u8]) -> usize {
    text.chunks(64)
        .map(|chunk| {
            let escaped = chunk
                .iter()
                .map(|&byte| u8::from((byte != b'\t') & (byte.wrapping_sub(b' ') > b'~' - b' ')))
                .fold(0u8, u8::wrapping_add);
            usize::from(escaped)
        })
        .sum()
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
            at += plain_prefix(&input[at..stop]);
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

/// How many of `bytes`' first bytes need no encoding: eight at a time while they are all
/// printable ASCII other than `=`, then one at a time (a tab among them is not encoded either).
fn plain_prefix(bytes: &[u8]) -> usize {
    let words = bytes
        .chunks_exact(8)
        .take_while(|word| {
            <[u8; 8]>::try_from(*word).is_ok_and(|w| all_plain(u64::from_le_bytes(w)))
        })
        .count();
    let at = words * 8;
    at + bytes[at..]
        .iter()
        .take_while(|&&byte| !needs_encoding(byte))
        .count()
}

/// Whether each of the word's eight bytes is in ' '..='~' and none is '=' (the exact
/// "has less", "has more" and "has zero" bit tests, a byte per lane).
fn all_plain(word: u64) -> bool {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES * 0x80;
    let below_space = word.wrapping_sub(ONES * u64::from(b' ')) & !word;
    let above_tilde = word.wrapping_add(ONES * u64::from(127 - b'~')) | word;
    let equals = word ^ (ONES * u64::from(b'='));
    let is_equals = equals.wrapping_sub(ONES) & !equals;
    (below_space | above_tilde | is_equals) & HIGH == 0
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
            // Lines of exactly 75 and 76 bytes, the first counted without its `\n`.
            format!("{}\n{}", "a".repeat(75), "b".repeat(75)),
            format!("{}\n{}", "a".repeat(76), "b".repeat(10)),
            format!("{}\n{}\n", "a".repeat(10), "b".repeat(75)),
            // A third of the bytes escaped, then one more than a third.
            format!("{}{}", "ü".repeat(10), "a".repeat(40)),
            format!("{}{}", "ü".repeat(10), "a".repeat(39)),
            "\u{7f}\u{1}\tabc".to_owned(),
        ];
        for text in cases {
            assert_eq!(ours(&text), lettres(&text), "{text:?}");
        }
    }

    proptest! {
        /// The eight-byte test agrees with the byte-wise one on every word.
        #[test]
        fn a_word_is_plain_when_each_byte_is(word in any::<[u8; 8]>()) {
            let bytewise = word.iter().all(|&b| !needs_encoding(b) && b != b'\t');
            prop_assert_eq!(all_plain(u64::from_le_bytes(word)), bytewise);
        }

        /// Words near the edges: every byte drawn from the values around the limits.
        #[test]
        fn a_word_of_edge_bytes_is_plain_when_each_byte_is(
            word in proptest::array::uniform8(proptest::sample::select(
                vec![0u8, 0x09, 0x1f, 0x20, 0x21, 0x3c, 0x3d, 0x3e, 0x7e, 0x7f, 0x80, 0xff]))
        ) {
            let bytewise = word.iter().all(|&b| !needs_encoding(b) && b != b'\t');
            prop_assert_eq!(all_plain(u64::from_le_bytes(word)), bytewise);
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
