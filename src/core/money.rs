//! Exact money: integer minor units tagged with an ISO 4217 currency, and basis-point percentages.
//!
//! This module owns every arithmetic step that touches an amount: parsing decimal strings
//! exactly ("49.99" or an error, never a float), adding and subtracting with overflow checks,
//! and taking a percentage with rounding half away from zero. It must not know about plans,
//! orders or storage, and it never uses floating point.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What went wrong with an amount, a currency or a percentage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error(
        "\"{0}\" is not a supported ISO 4217 currency code (expected one of {SUPPORTED_CURRENCIES})"
    )]
    UnknownCurrency(String),
    #[error(
        "\"{input}\" is not an exact amount in {currency}: expected digits with at most {decimals} decimal place(s), like \"{example}\""
    )]
    InvalidAmount {
        input: String,
        currency: Currency,
        decimals: u8,
        example: &'static str,
    },
    #[error(
        "\"{0}\" is not a percentage: expected a number with at most two decimal places and a %, like \"15%\" or \"7.25%\""
    )]
    InvalidPercent(String),
    #[error("\"{0}\" is out of range: a percentage here is from 0% to 100%")]
    PercentOutOfRange(String),
    #[error("amount overflow: the result does not fit in 64-bit minor units")]
    Overflow,
    #[error("cannot combine {0} and {1}: amounts in different currencies")]
    CurrencyMismatch(Currency, Currency),
}

const SUPPORTED_CURRENCIES: &str = "USD, EUR, GBP, CAD, AUD, NZD, CHF, SEK, NOK, DKK, PLN, JPY";

/// An ISO 4217 currency this build knows the minor unit of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Currency {
    Usd,
    Eur,
    Gbp,
    Cad,
    Aud,
    Nzd,
    Chf,
    Sek,
    Nok,
    Dkk,
    Pln,
    Jpy,
}

impl Currency {
    /// The ISO 4217 alphabetic code.
    pub fn code(self) -> &'static str {
        match self {
            Currency::Usd => "USD",
            Currency::Eur => "EUR",
            Currency::Gbp => "GBP",
            Currency::Cad => "CAD",
            Currency::Aud => "AUD",
            Currency::Nzd => "NZD",
            Currency::Chf => "CHF",
            Currency::Sek => "SEK",
            Currency::Nok => "NOK",
            Currency::Dkk => "DKK",
            Currency::Pln => "PLN",
            Currency::Jpy => "JPY",
        }
    }

    /// Number of decimal places of the minor unit (2 for cents, 0 for yen).
    pub fn decimals(self) -> u8 {
        match self {
            Currency::Jpy => 0,
            _ => 2,
        }
    }

    fn example(self) -> &'static str {
        if self.decimals() == 0 {
            "4999"
        } else {
            "49.99"
        }
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let all = [
            Currency::Usd,
            Currency::Eur,
            Currency::Gbp,
            Currency::Cad,
            Currency::Aud,
            Currency::Nzd,
            Currency::Chf,
            Currency::Sek,
            Currency::Nok,
            Currency::Dkk,
            Currency::Pln,
            Currency::Jpy,
        ];
        all.into_iter()
            .find(|c| c.code() == s)
            .ok_or_else(|| MoneyError::UnknownCurrency(s.to_owned()))
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An amount of money: integer minor units (cents) in one currency. May be negative
/// (a discount line); totals are checked non-negative where they are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Money {
    #[serde(rename = "amount_minor")]
    minor: i64,
    currency: Currency,
}

impl Money {
    pub const fn from_minor(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    pub const fn zero(currency: Currency) -> Money {
        Money { minor: 0, currency }
    }

    pub fn minor(self) -> i64 {
        self.minor
    }

    pub fn currency(self) -> Currency {
        self.currency
    }

    pub fn is_zero(self) -> bool {
        self.minor == 0
    }

    /// Parses a decimal string in major units ("49.99", "-5", "0.5") exactly. More decimal
    /// places than the currency has, exponents, signs in odd places or any other character
    /// are rejected rather than rounded.
    pub fn parse(input: &str, currency: Currency) -> Result<Money, MoneyError> {
        let invalid = || MoneyError::InvalidAmount {
            input: input.to_owned(),
            currency,
            decimals: currency.decimals(),
            example: currency.example(),
        };
        let (negative, digits) = match input.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, input),
        };
        let (whole, frac) = match digits.split_once('.') {
            Some((w, f)) if !f.is_empty() => (w, f),
            Some(_) => return Err(invalid()),
            None => (digits, ""),
        };
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(frac) {
            return Err(invalid());
        }
        let decimals = usize::from(currency.decimals());
        if frac.len() > decimals {
            return Err(invalid());
        }
        let scale = 10i64.pow(u32::from(currency.decimals()));
        let whole: i64 = whole.parse().map_err(|_| MoneyError::Overflow)?;
        let frac_value: i64 = if frac.is_empty() {
            0
        } else {
            // Pad "5" to "50" for cents: the fraction is exact, never rounded.
            let padded = format!("{frac:0<decimals$}");
            padded.parse().map_err(|_| invalid())?
        };
        let magnitude = whole
            .checked_mul(scale)
            .and_then(|w| w.checked_add(frac_value))
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor(
            if negative { -magnitude } else { magnitude },
            currency,
        ))
    }

    fn same_currency(self, other: Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch(self.currency, other.currency))
        }
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_add(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor(minor, self.currency))
    }

    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        let minor = self
            .minor
            .checked_sub(other.minor)
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor(minor, self.currency))
    }

    pub fn checked_mul(self, factor: u32) -> Result<Money, MoneyError> {
        let minor = self
            .minor
            .checked_mul(i64::from(factor))
            .ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor(minor, self.currency))
    }

    pub fn negated(self) -> Result<Money, MoneyError> {
        let minor = self.minor.checked_neg().ok_or(MoneyError::Overflow)?;
        Ok(Money::from_minor(minor, self.currency))
    }

    /// `rate` of this amount, rounded half away from zero to the minor unit.
    pub fn percent(self, rate: BasisPoints) -> Money {
        let scaled = i128::from(self.minor) * i128::from(rate.get());
        Money::from_minor(div_round_half_away(scaled, 10_000), self.currency)
    }

    /// This amount split into `parts` equal shares, rounded half away from zero
    /// (a price per pack, say).
    pub fn divided_by(self, parts: u32) -> Money {
        Money::from_minor(
            div_round_half_away(i128::from(self.minor), i128::from(parts.max(1))),
            self.currency,
        )
    }

    /// The tax contained in a tax-inclusive amount at `rate`:
    /// `amount × rate / (10000 + rate)`, rounded half away from zero.
    pub fn contained_part(self, rate: BasisPoints) -> Money {
        let scaled = i128::from(self.minor) * i128::from(rate.get());
        let divisor = 10_000 + i128::from(rate.get());
        Money::from_minor(div_round_half_away(scaled, divisor), self.currency)
    }

    /// The share `part / whole` of this amount, rounded half away from zero (the tax part of
    /// a partial refund, say). `part` is held to `0..=whole`; a zero `whole` shares nothing.
    pub fn share(self, part: i64, whole: i64) -> Money {
        if whole <= 0 {
            return Money::zero(self.currency);
        }
        let scaled = i128::from(self.minor) * i128::from(part.clamp(0, whole));
        Money::from_minor(
            div_round_half_away(scaled, i128::from(whole)),
            self.currency,
        )
    }

    pub fn min(self, other: Money) -> Money {
        if other.minor < self.minor {
            other
        } else {
            self
        }
    }

    /// The amount in major units as an exact decimal string ("49.99", "-0.05").
    pub fn to_decimal_string(self) -> String {
        let decimals = u32::from(self.currency.decimals());
        let scale = 10u64.pow(decimals);
        let sign = if self.minor < 0 { "-" } else { "" };
        let magnitude = self.minor.unsigned_abs();
        if decimals == 0 {
            format!("{sign}{magnitude}")
        } else {
            let width = decimals as usize;
            format!("{sign}{}.{:0width$}", magnitude / scale, magnitude % scale)
        }
    }
}

/// Divides with rounding half away from zero. The quotient of an i64 amount by a divisor ≥ 1
/// that is at most the multiplier applied (a rate of at most 100 %) always fits back into i64.
pub(crate) fn div_round_half_away(numerator: i128, divisor: i128) -> i64 {
    let quotient = numerator / divisor;
    let remainder = numerator % divisor;
    let rounded = if 2 * remainder.abs() >= divisor {
        quotient + numerator.signum()
    } else {
        quotient
    };
    i64::try_from(rounded).expect("a percentage of at most 100% of an i64 fits in an i64")
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.to_decimal_string(), self.currency)
    }
}

/// A percentage in basis points, 0 ..= 10000 (0 % ..= 100 %).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct BasisPoints(u32);

impl BasisPoints {
    pub const ZERO: BasisPoints = BasisPoints(0);
    pub const MAX: BasisPoints = BasisPoints(10_000);

    /// A rate from basis points; `None` above 100 %.
    pub fn new(bp: u32) -> Option<BasisPoints> {
        (bp <= 10_000).then_some(BasisPoints(bp))
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// Parses "15%", "7.25%" or "0%" exactly (at most two decimals, at most 100 %).
    pub fn parse_percent(input: &str) -> Result<BasisPoints, MoneyError> {
        let invalid = || MoneyError::InvalidPercent(input.to_owned());
        let number = input.trim().strip_suffix('%').ok_or_else(invalid)?.trim();
        if number.starts_with('-') {
            return Err(MoneyError::PercentOutOfRange(input.to_owned()));
        }
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (number.contains('.') && !digits(frac)) || frac.len() > 2 {
            return Err(invalid());
        }
        let whole: u32 = whole.parse().map_err(|_| invalid())?;
        let frac: u32 = if frac.is_empty() {
            0
        } else {
            format!("{frac:0<2}").parse().map_err(|_| invalid())?
        };
        whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(frac))
            .and_then(BasisPoints::new)
            .ok_or_else(|| MoneyError::PercentOutOfRange(input.to_owned()))
    }

    pub fn saturating_add(self, other: BasisPoints) -> BasisPoints {
        BasisPoints((self.0 + other.0).min(10_000))
    }
}

impl fmt::Display for BasisPoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, frac) = (self.0 / 100, self.0 % 100);
        if frac == 0 {
            write!(f, "{whole}%")
        } else if frac % 10 == 0 {
            write!(f, "{whole}.{}%", frac / 10)
        } else {
            write!(f, "{whole}.{frac:02}%")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd(minor: i64) -> Money {
        Money::from_minor(minor, Currency::Usd)
    }

    #[test]
    fn parses_exact_decimal_strings() {
        let cases = [
            ("49.99", 4999),
            ("0.5", 50),
            ("0.05", 5),
            ("100", 10000),
            ("-5.25", -525),
            ("0", 0),
        ];
        for (input, minor) in cases {
            assert_eq!(
                Money::parse(input, Currency::Usd),
                Ok(usd(minor)),
                "{input}"
            );
        }
        assert_eq!(
            Money::parse("4999", Currency::Jpy).map(Money::minor),
            Ok(4999)
        );
    }

    #[test]
    fn rejects_what_is_not_exact() {
        for input in [
            "4.999",
            "49.",
            ".99",
            "1e3",
            "49,99",
            " 49.99",
            "+1",
            "--1",
            "",
            "NaN",
            "1.0.0",
            "99999999999999999999",
        ] {
            assert!(
                Money::parse(input, Currency::Usd).is_err(),
                "{input:?} parsed"
            );
        }
        assert!(Money::parse("49.9", Currency::Jpy).is_err());
    }

    #[test]
    fn error_says_what_is_expected() {
        let err = Money::parse("4.999", Currency::Usd)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"4.999\""), "{err}");
        assert!(err.contains("at most 2 decimal place"), "{err}");
    }

    #[test]
    fn rounds_half_away_from_zero() {
        let bp = |n| BasisPoints::new(n).unwrap();
        let cases = [
            (13499, 1500, 2025), // 2024.85 -> 2025
            (1, 5000, 1),        // 0.5 -> 1
            (-1, 5000, -1),      // -0.5 -> -1
            (3, 5000, 2),        // 1.5 -> 2
            (-3, 5000, -2),      // -1.5 -> -2
            (14, 2500, 4),       // 3.5 -> 4
            (13, 2500, 3),       // 3.25 -> 3
            (10000, 725, 725),   // exact
            (4999, 10000, 4999), // 100 %
            (4999, 0, 0),        // 0 %
        ];
        for (minor, rate, expected) in cases {
            assert_eq!(
                usd(minor).percent(bp(rate)).minor(),
                expected,
                "{minor} × {rate}bp"
            );
        }
    }

    #[test]
    fn contained_tax_part() {
        // 119.00 gross at 19 % contains 19.00 of tax.
        let rate = BasisPoints::new(1900).unwrap();
        assert_eq!(usd(11900).contained_part(rate).minor(), 1900);
        // 10.00 at 19 %: 1.5966.. -> 1.60
        assert_eq!(usd(1000).contained_part(rate).minor(), 160);
    }

    #[test]
    fn divides_half_away_from_zero() {
        assert_eq!(usd(11474).divided_by(3).minor(), 3825); // 3824.67
        assert_eq!(usd(5).divided_by(2).minor(), 3); // 2.5
        assert_eq!(usd(-5).divided_by(2).minor(), -3);
        assert_eq!(usd(7).divided_by(1).minor(), 7);
    }

    #[test]
    fn overflow_is_an_error_not_a_wrap() {
        assert_eq!(usd(i64::MAX).checked_add(usd(1)), Err(MoneyError::Overflow));
        assert_eq!(usd(i64::MIN).checked_sub(usd(1)), Err(MoneyError::Overflow));
        assert_eq!(usd(i64::MAX).checked_mul(2), Err(MoneyError::Overflow));
        assert_eq!(usd(i64::MIN).negated(), Err(MoneyError::Overflow));
        assert!(Money::parse("92233720368547758.08", Currency::Usd).is_err());
    }

    #[test]
    fn currencies_do_not_mix() {
        let eur = Money::from_minor(1, Currency::Eur);
        assert!(matches!(
            usd(1).checked_add(eur),
            Err(MoneyError::CurrencyMismatch(..))
        ));
    }

    #[test]
    fn percent_strings() {
        let cases = [
            ("15%", 1500),
            ("7.25%", 725),
            ("0%", 0),
            ("100%", 10000),
            ("2.5%", 250),
        ];
        for (input, bp) in cases {
            assert_eq!(
                BasisPoints::parse_percent(input).map(BasisPoints::get),
                Ok(bp)
            );
        }
        for input in ["15", "8.875%", "%", ".5%", "1.%"] {
            assert!(
                matches!(
                    BasisPoints::parse_percent(input),
                    Err(MoneyError::InvalidPercent(_))
                ),
                "{input}"
            );
        }
        // Out of range says so, not "at most two decimal places".
        for input in ["101%", "-1%", "-0.5%", "250%"] {
            let error = BasisPoints::parse_percent(input).unwrap_err();
            assert!(
                matches!(error, MoneyError::PercentOutOfRange(_)),
                "{input}: {error}"
            );
            assert!(error.to_string().contains("0% to 100%"), "{error}");
        }
        assert_eq!(BasisPoints::new(725).unwrap().to_string(), "7.25%");
        assert_eq!(BasisPoints::new(250).unwrap().to_string(), "2.5%");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn decimal_string_round_trips(minor in -1_000_000_000_000i64..1_000_000_000_000) {
            let money = usd(minor);
            prop_assert_eq!(Money::parse(&money.to_decimal_string(), Currency::Usd), Ok(money));
        }

        #[test]
        fn percent_is_within_half_a_cent_of_exact(minor in -10_000_000_000i64..10_000_000_000, bp in 0u32..=10_000) {
            let got = i128::from(usd(minor).percent(BasisPoints::new(bp).unwrap()).minor());
            let exact_times_10000 = i128::from(minor) * i128::from(bp);
            // |got - exact| <= 0.5 in minor units  <=>  |got*10000 - exact*10000| <= 5000
            prop_assert!((got * 10_000 - exact_times_10000).abs() <= 5_000);
        }

        #[test]
        fn percent_is_symmetric_under_negation(minor in -10_000_000_000i64..10_000_000_000, bp in 0u32..=10_000) {
            let rate = BasisPoints::new(bp).unwrap();
            prop_assert_eq!(usd(-minor).percent(rate).minor(), -usd(minor).percent(rate).minor());
        }
    }
}
