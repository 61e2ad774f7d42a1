//! Formatting for a customer's locale (a BCP 47 tag such as `en-US` or `de-DE`): the language
//! the emails are written in, amounts of money, percentages, dates and times. Pure: no IO, no
//! clock. English and German have templates; every locale gets its own number style (decimal
//! comma, digit grouping, currency after the amount where that is the custom).

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
        match primary(locale).as_str() {
            "de" => Language::German,
            _ => Language::English,
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

fn primary(locale: &str) -> String {
    locale
        .split(['-', '_'])
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase()
}

/// How a locale writes numbers: decimal sign, digit-group separator, and whether the currency
/// symbol follows the amount (with a no-break space).
struct NumberStyle {
    decimal: char,
    group: &'static str,
    symbol_after: bool,
}

fn number_style(locale: &str) -> NumberStyle {
    match primary(locale).as_str() {
        "de" | "es" | "it" | "nl" | "pt" | "da" | "id" | "tr" => NumberStyle {
            decimal: ',',
            group: ".",
            symbol_after: true,
        },
        // A narrow no-break space between thousands.
        "fr" | "sv" | "fi" | "nb" | "no" | "pl" | "cs" | "ru" | "uk" => NumberStyle {
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
/// well-known symbol is shown by its code.
pub fn format_money(money: Money, locale: &str) -> String {
    let style = number_style(locale);
    let decimal = money.to_decimal_string();
    let (sign, digits) = match decimal.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", decimal.as_str()),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let mut number = group_digits(whole, style.group);
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
        other => {
            return if style.symbol_after {
                format!("{sign}{number}\u{a0}{}", other.code())
            } else {
                format!("{sign}{} {number}", other.code())
            };
        }
    };
    if style.symbol_after {
        format!("{sign}{number}\u{a0}{symbol}")
    } else {
        format!("{sign}{symbol}{number}")
    }
}

fn group_digits(whole: &str, separator: &str) -> String {
    let mut grouped = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i).is_multiple_of(3) {
            grouped.push_str(separator);
        }
        grouped.push(c);
    }
    grouped
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
        Language::English => date.format("%A, %B %-d, %Y").to_string(),
        Language::German => date
            .format_localized("%A, %-d. %B %Y", chrono::Locale::de_DE)
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
        Language::English => at.format("%-I:%M %p %Z").to_string(),
        Language::German => at.format("%-H:%M Uhr %Z").to_string(),
    }
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
            (usd, "en-US", "-$19.99"),
            (usd, "de-DE", "-19,99\u{a0}$"),
            (Money::from_minor(5, Currency::Usd), "en-GB", "$0.05"),
        ];
        for (money, locale, expected) in cases {
            assert_eq!(format_money(money, locale), expected, "{locale}");
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
