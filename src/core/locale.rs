//! Formatting for a customer's locale (a BCP 47 tag such as `en-US` or `de-DE`): the language
//! the emails are written in, amounts of money, percentages, dates and times. Pure: no IO, no
//! clock. English and German have templates; every locale gets its own number style (decimal
//! comma, digit grouping, currency after the amount where that is the custom).

use std::sync::LazyLock;

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, NaiveDate, TimeZone};

use crate::core::money::{BasisPoints, Currency, Money};

/// The languages the emails are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    English,
    German,
}

impl Language {
    /// The language of a locale tag; English for every language without templates.
    pub fn of(locale: &str) -> Language {
        if primary(locale).eq_ignore_ascii_case("de") {
            Language::German
        } else {
            Language::English
        }
    }

    /// The folder of this language's templates (`de/`), none for English (the default).
    pub fn template_prefix(self) -> Option<&'static str> {
        match self {
            Language::English => None,
            Language::German => Some("de"),
        }
    }
}

/// The primary language subtag: what comes before the first `-` or `_`.
fn primary(locale: &str) -> &str {
    let end = locale.find(['-', '_']).unwrap_or(locale.len());
    &locale[..end]
}

/// How a locale writes numbers: decimal sign, digit-group separator, and whether the currency
/// symbol follows the amount (with a no-break space).
struct NumberStyle {
    decimal: char,
    group: &'static str,
    symbol_after: bool,
}

fn number_style(locale: &str) -> NumberStyle {
    // Every language in these lists has a two-letter subtag: one comparison of two lower-cased
    // bytes picks the style.
    let subtag = primary(locale).as_bytes();
    let language = match subtag {
        [a, b] => [a.to_ascii_lowercase(), b.to_ascii_lowercase()],
        _ => [0, 0],
    };
    match &language {
        b"de" | b"es" | b"it" | b"nl" | b"pt" | b"da" | b"id" | b"tr" => NumberStyle {
            decimal: ',',
            group: ".",
            symbol_after: true,
        },
        // A narrow no-break space between thousands.
        b"fr" | b"sv" | b"fi" | b"nb" | b"no" | b"pl" | b"cs" | b"ru" | b"uk" => NumberStyle {
            decimal: ',',
            group: "\u{202f}",
            symbol_after: true,
        },
        _ => NumberStyle {
            decimal: '.',
            group: ",",
            symbol_after: false,
        },
    }
}

/// "$1,234.56" (en-US), "1.234,56 €" (de-DE), "1 234,56 €" (fr-FR). A currency without a
/// well-known symbol is shown by its code. Written into one string: an email formats a
/// dozen amounts.
pub fn format_money(money: Money, locale: &str) -> String {
    let style = number_style(locale);
    let currency = money.currency();
    // A code stands apart from the number; a symbol does not.
    let (symbol, spaced) = match currency {
        Currency::Usd => ("$", false),
        Currency::Eur => ("€", false),
        Currency::Gbp => ("£", false),
        Currency::Jpy => ("¥", false),
        Currency::Cad => ("CA$", false),
        Currency::Aud => ("A$", false),
        Currency::Nzd => ("NZ$", false),
        other => (other.code(), true),
    };
    let mut out = String::with_capacity(32);
    if money.minor() < 0 {
        out.push('-');
    }
    if !style.symbol_after {
        out.push_str(symbol);
        if spaced {
            out.push(' ');
        }
    }
    let decimals = u32::from(currency.decimals());
    let scale = 10u64.pow(decimals);
    let magnitude = money.minor().unsigned_abs();
    push_grouped(&mut out, magnitude / scale, style.group);
    if decimals > 0 {
        out.push(style.decimal);
        let fraction = magnitude % scale;
        for place in (0..decimals).rev() {
            out.push(digit(fraction / 10u64.pow(place)));
        }
    }
    if style.symbol_after {
        out.push('\u{a0}');
        out.push_str(symbol);
    }
    out
}

/// `whole`'s digits with `separator` between groups of three.
fn push_grouped(out: &mut String, whole: u64, separator: &str) {
    let digits = whole.checked_ilog10().unwrap_or(0) + 1;
    for place in (0..digits).rev() {
        out.push(digit(whole / 10u64.pow(place)));
        if place > 0 && place % 3 == 0 {
            out.push_str(separator);
        }
    }
}

/// The last decimal digit of `value`.
fn digit(value: u64) -> char {
    char::from(b"0123456789"[(value % 10) as usize])
}

/// "7.25%" (en), "7,25 %" (de).
pub fn format_percent(rate: BasisPoints, locale: &str) -> String {
    let plain = rate.to_string();
    let number = plain.trim_end_matches('%');
    let style = number_style(locale);
    if style.decimal == ',' {
        format!("{}\u{a0}%", number.replace('.', ","))
    } else {
        plain
    }
}

/// "Wednesday, February 24, 2027" (English), "Mittwoch, 24. Februar 2027" (German).
pub fn format_date(date: NaiveDate, locale: &str) -> String {
    match Language::of(locale) {
        Language::English => date.format_with_items(ENGLISH_DATE.iter()).to_string(),
        Language::German => date
            .format_localized_with_items(GERMAN_DATE.iter(), chrono::Locale::de_DE)
            .to_string(),
    }
}

/// "9:00 AM EST" (English), "9:00 Uhr CET" (German): the zone's abbreviation, as the
/// customer's clock reads it.
pub fn format_time<Tz: TimeZone>(at: &DateTime<Tz>, locale: &str) -> String
where
    Tz::Offset: std::fmt::Display,
{
    match Language::of(locale) {
        Language::English => at.format_with_items(ENGLISH_TIME.iter()).to_string(),
        Language::German => at.format_with_items(GERMAN_TIME.iter()).to_string(),
    }
}

// The formats, parsed once: chrono parses a format string again on every use, and an email
// shows several dates.
static ENGLISH_DATE: LazyLock<Vec<Item<'static>>> = LazyLock::new(|| parsed("%A, %B %-d, %Y"));
static GERMAN_DATE: LazyLock<Vec<Item<'static>>> = LazyLock::new(|| parsed("%A, %-d. %B %Y"));
static ENGLISH_TIME: LazyLock<Vec<Item<'static>>> = LazyLock::new(|| parsed("%-I:%M %p %Z"));
static GERMAN_TIME: LazyLock<Vec<Item<'static>>> = LazyLock::new(|| parsed("%-H:%M Uhr %Z"));

fn parsed(format: &'static str) -> Vec<Item<'static>> {
    StrftimeItems::new(format)
        .parse()
        .expect("the formats above are valid strftime (the tests format with each)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_follows_the_locale() {
        let eur = Money::from_minor(123_456, Currency::Eur);
        let usd = Money::from_minor(-1_999, Currency::Usd);
        let cases = [
            (eur, "en-US", "€1,234.56"),
            (eur, "de-DE", "1.234,56\u{a0}€"),
            (eur, "de-AT", "1.234,56\u{a0}€"),
            (eur, "fr-FR", "1\u{202f}234,56\u{a0}€"),
            (eur, "SV_se", "1\u{202f}234,56\u{a0}€"),
            (eur, "DE", "1.234,56\u{a0}€"),
            (eur, "deu", "€1,234.56"),
            (usd, "en-US", "-$19.99"),
            (usd, "de-DE", "-19,99\u{a0}$"),
            (Money::from_minor(5, Currency::Usd), "en-GB", "$0.05"),
        ];
        for (money, locale, expected) in cases {
            assert_eq!(format_money(money, locale), expected, "{locale}");
        }
    }

    /// The amount as first formatted: its decimal string, grouped, then the symbol placed.
    /// The oracle for the one-pass [`format_money`].
    fn format_money_as_before(money: Money, locale: &str) -> String {
        let style = number_style(locale);
        let decimal = money.to_decimal_string();
        let (sign, digits) = match decimal.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", decimal.as_str()),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let mut number = String::new();
        for (i, c) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i).is_multiple_of(3) {
                number.push_str(style.group);
            }
            number.push(c);
        }
        if !frac.is_empty() {
            number.push(style.decimal);
            number.push_str(frac);
        }
        let symbol = match money.currency() {
            Currency::Usd => "$",
            Currency::Eur => "€",
            Currency::Gbp => "£",
            Currency::Jpy => "¥",
            Currency::Cad => "CA$",
            Currency::Aud => "A$",
            Currency::Nzd => "NZ$",
            other if style.symbol_after => return format!("{sign}{number}\u{a0}{}", other.code()),
            other => return format!("{sign}{} {number}", other.code()),
        };
        if style.symbol_after {
            format!("{sign}{number}\u{a0}{symbol}")
        } else {
            format!("{sign}{symbol}{number}")
        }
    }

    proptest::proptest! {
        #[test]
        fn money_formats_as_it_did_before(
            minor in proptest::prop_oneof![proptest::num::i64::ANY, -1_000_000i64..1_000_000],
            currency in proptest::sample::select(vec![
                Currency::Usd, Currency::Eur, Currency::Gbp, Currency::Cad, Currency::Aud,
                Currency::Nzd, Currency::Chf, Currency::Sek, Currency::Nok, Currency::Dkk,
                Currency::Pln, Currency::Jpy,
            ]),
            locale in proptest::sample::select(vec!["en-US", "de-DE", "DE-at", "fr-FR", "sv_SE", "ja-JP", "", "es"]),
        ) {
            let money = Money::from_minor(minor, currency);
            proptest::prop_assert_eq!(format_money(money, locale), format_money_as_before(money, locale));
        }
    }

    #[test]
    fn dates_times_and_rates_in_english_and_german() {
        let date = NaiveDate::from_ymd_opt(2027, 2, 24).unwrap();
        assert_eq!(format_date(date, "en-US"), "Wednesday, February 24, 2027");
        assert_eq!(format_date(date, "de-DE"), "Mittwoch, 24. Februar 2027");
        let at = chrono_tz::Europe::Berlin
            .with_ymd_and_hms(2027, 2, 24, 9, 5, 0)
            .unwrap();
        assert_eq!(format_time(&at, "en-US"), "9:05 AM CET");
        assert_eq!(format_time(&at, "de-DE"), "9:05 Uhr CET");
        let afternoon = chrono_tz::America::New_York
            .with_ymd_and_hms(2027, 7, 4, 15, 0, 0)
            .unwrap();
        assert_eq!(format_time(&afternoon, "en-US"), "3:00 PM EDT");
        assert_eq!(format_time(&afternoon, "DE"), "15:00 Uhr EDT");
        let rate = BasisPoints::new(1900).unwrap();
        assert_eq!(format_percent(rate, "en-US"), "19%");
        assert_eq!(
            format_percent(BasisPoints::new(725).unwrap(), "de-DE"),
            "7,25\u{a0}%"
        );
        assert_eq!(Language::of("de-CH"), Language::German);
        assert_eq!(Language::of("fr-FR"), Language::English);
    }
}
