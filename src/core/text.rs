//! Free text that people type (names, reasons) and that ends up in emails, terminals and
//! logs: [`FreeText`] refuses what would let it forge a header, move a terminal's cursor or
//! reorder what a reader sees, and bounds its length. [`printable`] makes text that is
//! already stored safe to print. Pure: no IO.

use std::borrow::Cow;
use std::fmt;

/// Trimmed text of 1 to `max` characters with no control character (CR, LF, ESC, BEL, …) and
/// no bidirectional override or isolate (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreeText(String);

/// Why text was refused: the message reads after the field's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error(": must not be empty")]
    Empty,
    #[error(": at most {max} characters, not {given}")]
    TooLong { max: usize, given: usize },
    #[error(": contains the control character U+{0:04X}; use plain text on one line")]
    Control(u32),
    #[error(": contains the bidirectional formatting character U+{0:04X}, which can disguise text")]
    Bidi(u32),
}

fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

impl FreeText {
    pub fn parse(input: &str, max: usize) -> Result<FreeText, TextError> {
        let text = input.trim();
        if text.is_empty() {
            return Err(TextError::Empty);
        }
        if let Some(c) = text.chars().find(|c| c.is_control()) {
            return Err(TextError::Control(u32::from(c)));
        }
        if let Some(c) = text.chars().find(|c| is_bidi_control(*c)) {
            return Err(TextError::Bidi(u32::from(c)));
        }
        let given = text.chars().count();
        if given > max {
            return Err(TextError::TooLong { max, given });
        }
        Ok(FreeText(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for FreeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Text as it may be printed to a terminal: line ends kept (CRLF becomes LF), tabs kept,
/// every other control or bidirectional character shown as its escape (`\u{1b}`).
pub fn printable(text: &str) -> Cow<'_, str> {
    let unsafe_char = |c: char| (c.is_control() && c != '\n' && c != '\t') || is_bidi_control(c);
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    let text = text.replace("\r\n", "\n");
    let mut shown = String::with_capacity(text.len());
    for c in text.chars() {
        if unsafe_char(c) {
            shown.push_str(&c.escape_unicode().to_string());
        } else {
            shown.push(c);
        }
    }
    Cow::Owned(shown)
}

/// A BCP 47 language tag of the plain kind people use (`en`, `de-DE`, `pt-BR`, `zh-Hant-TW`,
/// `es-419`), normalized in case (`de-DE`). Templates exist per language; a language without
/// its own templates is written to in English.
pub fn parse_locale(input: &str) -> Result<String, String> {
    let invalid = || {
        format!(
            " \"{}\": not a language tag like en-US, de-DE or fr",
            printable(input)
        )
    };
    let mut parts = input.trim().split(['-', '_']);
    let language = parts
        .next()
        .filter(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_alphabetic()));
    let Some(language) = language else {
        return Err(invalid());
    };
    let mut tag = language.to_ascii_lowercase();
    let mut rest: Vec<&str> = parts.collect();
    if let Some(script) = rest
        .first()
        .filter(|s| s.len() == 4 && s.chars().all(|c| c.is_ascii_alphabetic()))
    {
        let mut chars = script.chars();
        let first = chars.next().map(|c| c.to_ascii_uppercase());
        tag.push('-');
        tag.extend(first);
        tag.push_str(&chars.as_str().to_ascii_lowercase());
        rest.remove(0);
    }
    match rest.as_slice() {
        [] => {}
        [region] if region.len() == 2 && region.chars().all(|c| c.is_ascii_alphabetic()) => {
            tag.push('-');
            tag.push_str(&region.to_ascii_uppercase());
        }
        [region] if region.len() == 3 && region.chars().all(|c| c.is_ascii_digit()) => {
            tag.push('-');
            tag.push_str(region);
        }
        _ => return Err(invalid()),
    }
    Ok(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_refuses_what_could_forge_or_disguise() {
        let cases: [(&str, Option<TextError>); 9] = [
            ("Ada Lovelace", None),
            ("  Zoë Ölund ", None),
            ("", Some(TextError::Empty)),
            ("   ", Some(TextError::Empty)),
            (
                "Ada\r\nBcc: all@example.com",
                Some(TextError::Control(0x0D)),
            ),
            ("Ada\nLovelace", Some(TextError::Control(0x0A))),
            ("Ada\u{1b}[31m", Some(TextError::Control(0x1B))),
            ("bell\u{7}", Some(TextError::Control(0x07))),
            ("abc\u{202E}gpj.exe", Some(TextError::Bidi(0x202E))),
        ];
        for (input, expected) in cases {
            assert_eq!(FreeText::parse(input, 100).err(), expected, "{input:?}");
        }
        assert_eq!(
            FreeText::parse(&"a".repeat(101), 100).err(),
            Some(TextError::TooLong {
                max: 100,
                given: 101
            })
        );
        assert_eq!(FreeText::parse(" Zoë ", 3).unwrap().as_str(), "Zoë");
    }

    #[test]
    fn printable_escapes_what_a_terminal_would_obey() {
        assert_eq!(printable("plain"), "plain");
        assert_eq!(printable("a\r\nb\tc"), "a\nb\tc");
        assert_eq!(printable("red\u{1b}[31m"), "red\\u{1b}[31m");
        assert_eq!(printable("x\u{202E}y"), "x\\u{202e}y");
    }

    #[test]
    fn locales_are_plain_bcp47_tags() {
        for (input, expected) in [
            ("en", "en"),
            ("en-US", "en-US"),
            ("de_de", "de-DE"),
            ("zh-hant-tw", "zh-Hant-TW"),
            ("es-419", "es-419"),
        ] {
            assert_eq!(parse_locale(input).as_deref(), Ok(expected), "{input}");
        }
        for bad in ["", "e", "english", "en-USA-x", "en-1", "en\u{1b}", "12-US"] {
            assert!(parse_locale(bad).is_err(), "{bad:?}");
        }
    }
}
