//! Ship-to addresses as values: parsed once at an edge from what a person typed, valid by
//! construction afterwards.
//!
//! Owns the rules of an address: the country is an ISO 3166-1 alpha-2 code and the
//! subdivision an ISO 3166-2 code of that country (both checked against `rust_iso3166`'s
//! tables, not a hand-typed list); the postal code fits its country's format where one is
//! known (US, CA, GB, DE, FR, AU, JP and a few more), else it is bounded free text; every
//! field is bounded [`FreeText`] (no control or bidirectional characters). Which countries the
//! shop ships to is the catalog's to say (`Catalog::refuse_destination`). No IO.

use std::fmt;

use serde::Serialize;

use crate::core::text::{FreeText, TextError};

/// The longest name on an address, in characters.
pub const NAME_MAX: usize = 100;
/// The longest street line, in characters.
pub const LINE_MAX: usize = 100;
/// The longest city, in characters.
pub const CITY_MAX: usize = 80;
/// The longest postal code of a country without a known format, in characters.
pub const POSTAL_MAX: usize = 12;

/// An ISO 3166-1 alpha-2 country code, upper-case (`US`, `DE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Country(&'static str);

impl Country {
    /// `DE`, `de` or ` De `; anything that is not an assigned alpha-2 code is refused.
    pub fn parse(input: &str) -> Result<Country, String> {
        let code = input.trim().to_ascii_uppercase();
        rust_iso3166::from_alpha2(&code)
            .map(|c| Country(c.alpha2))
            .ok_or_else(|| {
                format!(
                    " \"{}\": not an ISO 3166-1 alpha-2 country code (like US, DE or FR)",
                    crate::core::text::printable(input.trim())
                )
            })
    }

    pub fn code(self) -> &'static str {
        self.0
    }

    /// The country's English name, for messages and emails.
    pub fn name(self) -> &'static str {
        rust_iso3166::from_alpha2(self.0).map_or(self.0, |c| c.name)
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for Country {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

/// An ISO 3166-2 subdivision code with its country prefix (`US-CA`, `DE-BY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subdivision(&'static str);

impl Subdivision {
    /// A subdivision of `country`, given as `US-CA` or as `CA` alone.
    pub fn parse(input: &str, country: Country) -> Result<Subdivision, String> {
        let given = input.trim().to_ascii_uppercase();
        let full = if given.contains('-') {
            given.clone()
        } else {
            format!("{country}-{given}")
        };
        match rust_iso3166::iso3166_2::from_code(&full) {
            Some(s) if s.country_code == country.code() => Ok(Subdivision(s.code)),
            Some(s) => Err(format!(
                " \"{}\": a subdivision of {}, not of {country}",
                s.code, s.country_code
            )),
            None => Err(format!(
                " \"{}\": not an ISO 3166-2 subdivision of {country} (like {})",
                crate::core::text::printable(input.trim()),
                example_subdivision(country)
            )),
        }
    }

    /// Any assigned ISO 3166-2 code (`US-CA`), whatever its country.
    pub fn parse_code(input: &str) -> Option<Subdivision> {
        rust_iso3166::iso3166_2::from_code(&input.trim().to_ascii_uppercase())
            .map(|s| Subdivision(s.code))
    }

    pub fn code(self) -> &'static str {
        self.0
    }

    /// The subdivision's English name (`California`).
    pub fn name(self) -> &'static str {
        rust_iso3166::iso3166_2::from_code(self.0).map_or(self.0, |s| s.name)
    }
}

impl fmt::Display for Subdivision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl Serialize for Subdivision {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

/// The subdivisions an address in `country` must name (US, CA and AU), as (code, English
/// name) by name: a form's choices. Empty for a country where the subdivision is optional.
pub fn required_subdivisions(country: Country) -> Vec<(&'static str, &'static str)> {
    if !SUBDIVISION_REQUIRED.contains(&country.code()) {
        return Vec::new();
    }
    let mut list: Vec<(&'static str, &'static str)> =
        rust_iso3166::iso3166_2::SUBDIVISION_COUNTRY_MAP
            .get(country.code())
            .map(|list| list.iter().map(|s| (s.code, s.name)).collect())
            .unwrap_or_default();
    list.sort_by(|a, b| a.1.cmp(b.1));
    list
}

fn example_subdivision(country: Country) -> &'static str {
    rust_iso3166::iso3166_2::SUBDIVISION_COUNTRY_MAP
        .get(country.code())
        .and_then(|list| list.iter().map(|s| s.code).min())
        .unwrap_or("US-CA")
}

/// The countries whose addresses name a subdivision (a state, a province): the tax and the
/// carrier depend on it.
const SUBDIVISION_REQUIRED: [&str; 3] = ["US", "CA", "AU"];

/// A country's postal code format, where one is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PostalFormat {
    /// Exactly this many digits.
    Digits(usize),
    /// `12345` or `12345-6789`.
    UsZip,
    /// `A1A 1A1` (the letters D, F, I, O, Q, U never appear; W and Z never first).
    Canada,
    /// `SW1A 1AA`: an outward code (A9, A99, AA9, AA99, A9A, AA9A), a space, then 9AA.
    Britain,
    /// `123-4567`.
    Japan,
    /// `1234 AB`.
    Netherlands,
}

fn postal_format(country: Country) -> Option<PostalFormat> {
    Some(match country.code() {
        "US" => PostalFormat::UsZip,
        "CA" => PostalFormat::Canada,
        "GB" => PostalFormat::Britain,
        "JP" => PostalFormat::Japan,
        "NL" => PostalFormat::Netherlands,
        "DE" | "FR" | "IT" | "ES" | "FI" => PostalFormat::Digits(5),
        "AU" | "AT" | "BE" | "CH" | "DK" | "NO" => PostalFormat::Digits(4),
        _ => return None,
    })
}

/// A postal code in its country's canonical form (`94103`, `K1A 0B1`, `SW1A 1AA`, `100-0001`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PostalCode(String);

impl PostalCode {
    /// The code as `country` writes it; a country without a known format takes 1 to 12
    /// letters, digits, spaces and hyphens.
    pub fn parse(input: &str, country: Country) -> Result<PostalCode, String> {
        let given = input.trim().to_ascii_uppercase();
        let compact: String = given.chars().filter(|c| *c != ' ').collect();
        let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        let wrong = |example: &str| {
            format!(
                " \"{}\": not a postal code of {country} (expected the form {example})",
                crate::core::text::printable(input.trim())
            )
        };
        let code = match postal_format(country) {
            Some(PostalFormat::Digits(n)) => {
                (given.len() == n && digits(&given)).then(|| given.clone())
            }
            Some(PostalFormat::UsZip) => {
                let ok = match given.split_once('-') {
                    None => given.len() == 5 && digits(&given),
                    Some((zip, plus4)) => {
                        zip.len() == 5 && digits(zip) && plus4.len() == 4 && digits(plus4)
                    }
                };
                ok.then(|| given.clone())
            }
            Some(PostalFormat::Canada) => canadian(&compact),
            Some(PostalFormat::Britain) => british(&compact),
            Some(PostalFormat::Japan) => {
                let bare: String = compact.chars().filter(|c| *c != '-').collect();
                let shaped = compact.len() == 7 || compact.find('-') == Some(3);
                (shaped && bare.len() == 7 && digits(&bare))
                    .then(|| format!("{}-{}", &bare[..3], &bare[3..]))
            }
            Some(PostalFormat::Netherlands) => {
                let ok = compact.len() == 6
                    && digits(&compact[..4])
                    && !compact.starts_with('0')
                    && compact[4..].chars().all(|c| c.is_ascii_uppercase());
                ok.then(|| format!("{} {}", &compact[..4], &compact[4..]))
            }
            None => {
                let ok = (1..=POSTAL_MAX).contains(&given.chars().count())
                    && given
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-');
                if ok {
                    Some(given.clone())
                } else {
                    return Err(format!(
                        " \"{}\": not a postal code of {country} (at most {POSTAL_MAX} letters, digits, spaces or hyphens)",
                        crate::core::text::printable(input.trim())
                    ));
                }
            }
        };
        code.map(PostalCode).ok_or_else(|| {
            wrong(match postal_format(country) {
                Some(PostalFormat::Digits(4)) => "1234",
                Some(PostalFormat::Digits(_)) => "12345",
                Some(PostalFormat::UsZip) => "12345 or 12345-6789",
                Some(PostalFormat::Canada) => "K1A 0B1",
                Some(PostalFormat::Britain) => "SW1A 1AA",
                Some(PostalFormat::Japan) => "100-0001",
                Some(PostalFormat::Netherlands) => "1234 AB",
                None => "",
            })
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn canadian(compact: &str) -> Option<String> {
    let c: Vec<char> = compact.chars().collect();
    let letter = |ch: char, first: bool| {
        ch.is_ascii_uppercase() && !"DFIOQU".contains(ch) && !(first && (ch == 'W' || ch == 'Z'))
    };
    let ok = c.len() == 6
        && letter(c[0], true)
        && c[1].is_ascii_digit()
        && letter(c[2], false)
        && c[3].is_ascii_digit()
        && letter(c[4], false)
        && c[5].is_ascii_digit();
    ok.then(|| format!("{} {}", &compact[..3], &compact[3..]))
}

fn british(compact: &str) -> Option<String> {
    if compact == "GIR0AA" {
        return Some("GIR 0AA".into());
    }
    if !(5..=7).contains(&compact.len()) || !compact.is_ascii() {
        return None;
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    let inward_ok = {
        let i: Vec<char> = inward.chars().collect();
        i[0].is_ascii_digit() && i[1].is_ascii_uppercase() && i[2].is_ascii_uppercase()
    };
    // A9, A99, AA9, AA99, A9A, AA9A: letters (L) and digits (D) in these shapes.
    let shape: String = outward
        .chars()
        .map(|c| match c {
            'A'..='Z' => 'L',
            '0'..='9' => 'D',
            _ => '?',
        })
        .collect();
    let outward_ok = matches!(
        shape.as_str(),
        "LD" | "LDD" | "LLD" | "LLDD" | "LDL" | "LLDL"
    );
    (inward_ok && outward_ok).then(|| format!("{outward} {inward}"))
}

/// A phone number as people write it: 4 to 32 characters of digits, spaces and `+ - ( ) .`,
/// with at least 4 digits.
fn parse_phone(input: &str) -> Result<String, String> {
    let text = input.trim();
    let ok = (4..=32).contains(&text.chars().count())
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        && text.chars().filter(char::is_ascii_digit).count() >= 4;
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            " \"{}\": not a phone number (4 to 32 digits, spaces and + - ( ) .)",
            crate::core::text::printable(text)
        ))
    }
}

/// An address as typed, field by field (a form, a JSON body, CLI flags, a stored row).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawAddress {
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub subdivision: Option<String>,
    pub postal_code: Option<String>,
    pub country: String,
    pub phone: Option<String>,
}

/// Why an address was refused: the field (`postal_code`) and the problem, which reads after
/// the field's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}{problem}")]
pub struct AddressError {
    pub field: &'static str,
    pub problem: String,
}

/// A valid ship-to address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Address {
    pub name: String,
    pub line1: String,
    pub line2: Option<String>,
    pub city: String,
    pub subdivision: Option<Subdivision>,
    pub postal_code: Option<PostalCode>,
    pub country: Country,
    pub phone: Option<String>,
}

impl Address {
    /// Parses every field; the first refused one is named in the error.
    pub fn parse(raw: &RawAddress) -> Result<Address, AddressError> {
        let error = |field: &'static str| move |problem: String| AddressError { field, problem };
        let text = |field: &'static str, value: &str, max: usize| {
            FreeText::parse(value, max)
                .map(FreeText::into_string)
                .map_err(|e: TextError| error(field)(e.to_string()))
        };
        // Empty optional fields are absent, whatever the door sent.
        let given = |value: &Option<String>| {
            value
                .as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let country = Country::parse(&raw.country).map_err(error("country"))?;
        let name = text("name", &raw.name, NAME_MAX)?;
        let line1 = text("line1", &raw.line1, LINE_MAX)?;
        let line2 = given(&raw.line2)
            .map(|l| text("line2", &l, LINE_MAX))
            .transpose()?;
        let city = text("city", &raw.city, CITY_MAX)?;
        let subdivision = match given(&raw.subdivision) {
            Some(s) => Some(Subdivision::parse(&s, country).map_err(error("subdivision"))?),
            None if SUBDIVISION_REQUIRED.contains(&country.code()) => {
                return Err(error("subdivision")(format!(
                    ": an address in {country} names its state or province (like {})",
                    example_subdivision(country)
                )));
            }
            None => None,
        };
        let postal_code = match given(&raw.postal_code) {
            Some(p) => {
                text("postal_code", &p, LINE_MAX)?;
                Some(PostalCode::parse(&p, country).map_err(error("postal_code"))?)
            }
            None if postal_format(country).is_some() => {
                return Err(error("postal_code")(format!(
                    ": an address in {country} has a postal code"
                )));
            }
            None => None,
        };
        let phone = given(&raw.phone)
            .map(|p| {
                text("phone", &p, 32)?;
                parse_phone(&p).map_err(error("phone"))
            })
            .transpose()?;
        Ok(Address {
            name,
            line1,
            line2,
            city,
            subdivision,
            postal_code,
            country,
            phone,
        })
    }

    /// The address as its fields were stored, to parse again.
    pub fn raw(&self) -> RawAddress {
        RawAddress {
            name: self.name.clone(),
            line1: self.line1.clone(),
            line2: self.line2.clone(),
            city: self.city.clone(),
            subdivision: self.subdivision.map(|s| s.code().to_owned()),
            postal_code: self.postal_code.as_ref().map(|p| p.as_str().to_owned()),
            country: self.country.code().to_owned(),
            phone: self.phone.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn country(code: &str) -> Country {
        Country::parse(code).unwrap()
    }

    #[test]
    fn postal_codes_fit_their_countrys_format() {
        let cases: [(&str, &str, Option<&str>); 40] = [
            ("US", "94103", Some("94103")),
            ("US", "94103-1234", Some("94103-1234")),
            ("US", " 10001 ", Some("10001")),
            ("US", "9410", None),
            ("US", "941031234", None),
            ("US", "94103-12", None),
            ("US", "ABCDE", None),
            ("CA", "K1A 0B1", Some("K1A 0B1")),
            ("CA", "k1a0b1", Some("K1A 0B1")),
            ("CA", "D1A 0B1", None),
            ("CA", "W1A 0B1", None),
            ("CA", "K1A 0B", None),
            ("GB", "SW1A 1AA", Some("SW1A 1AA")),
            ("GB", "sw1a1aa", Some("SW1A 1AA")),
            ("GB", "M1 1AE", Some("M1 1AE")),
            ("GB", "B33 8TH", Some("B33 8TH")),
            ("GB", "CR2 6XH", Some("CR2 6XH")),
            ("GB", "DN55 1PT", Some("DN55 1PT")),
            ("GB", "W1A 0AX", Some("W1A 0AX")),
            ("GB", "GIR 0AA", Some("GIR 0AA")),
            ("GB", "12345", None),
            ("GB", "SW1A 1A1", None),
            ("GB", "SWAA 1AA", None),
            ("DE", "10115", Some("10115")),
            ("DE", "1011", None),
            ("DE", "10115a", None),
            ("FR", "75001", Some("75001")),
            ("FR", "750 01", None),
            ("AU", "2000", Some("2000")),
            ("AU", "20000", None),
            ("JP", "100-0001", Some("100-0001")),
            ("JP", "1000001", Some("100-0001")),
            ("JP", "10-00001", None),
            ("JP", "100-000", None),
            ("NL", "1012 ab", Some("1012 AB")),
            ("NL", "0123 AB", None),
            ("BR", "01310-100", Some("01310-100")),
            ("BR", "0131;100", None),
            ("BR", "1234567890123", None),
            ("IE", "D02 X285", Some("D02 X285")),
        ];
        for (c, input, expected) in cases {
            let parsed = PostalCode::parse(input, country(c));
            assert_eq!(
                parsed.as_ref().ok().map(PostalCode::as_str),
                expected,
                "{c} {input:?}: {parsed:?}"
            );
            if let Err(message) = parsed {
                assert!(message.contains(c), "{message}");
            }
        }
    }

    #[test]
    fn countries_and_subdivisions_are_iso_3166() {
        assert_eq!(country(" de ").code(), "DE");
        assert_eq!(country("us").name(), "United States of America");
        for bad in ["", "XX", "USA", "D", "ZZ"] {
            assert!(Country::parse(bad).is_err(), "{bad:?}");
        }
        let us = country("US");
        assert_eq!(Subdivision::parse("ca", us).unwrap().code(), "US-CA");
        assert_eq!(Subdivision::parse("US-NY", us).unwrap().code(), "US-NY");
        assert_eq!(Subdivision::parse("CA", us).unwrap().name(), "California");
        assert!(
            Subdivision::parse("XX", us)
                .unwrap_err()
                .contains("not an ISO 3166-2")
        );
        assert!(
            Subdivision::parse("DE-BY", us)
                .unwrap_err()
                .contains("a subdivision of DE, not of US")
        );
        assert_eq!(
            Subdivision::parse("BY", country("DE")).unwrap().code(),
            "DE-BY"
        );
        assert_eq!(
            Subdivision::parse_code("us-tx").map(|s| s.code()),
            Some("US-TX")
        );
        assert_eq!(Subdivision::parse_code("US"), None);
    }

    fn raw() -> RawAddress {
        RawAddress {
            name: "Ada Lovelace".into(),
            line1: "1 Market St".into(),
            line2: Some("  ".into()),
            city: "San Francisco".into(),
            subdivision: Some("CA".into()),
            postal_code: Some("94105".into()),
            country: "us".into(),
            phone: Some("+1 (415) 555-0100".into()),
        }
    }

    #[test]
    fn an_address_parses_once_and_names_the_field_it_refuses() {
        let address = Address::parse(&raw()).unwrap();
        assert_eq!(address.country.code(), "US");
        assert_eq!(address.subdivision.map(Subdivision::code), Some("US-CA"));
        assert_eq!(address.line2, None);
        assert_eq!(Address::parse(&address.raw()), Ok(address));

        type Breakage = fn(&mut RawAddress);
        let cases: [(Breakage, &str, &str); 12] = [
            (|r| r.country = "XX".into(), "country", "not an ISO 3166-1"),
            (
                |r| r.subdivision = Some("ZZ".into()),
                "subdivision",
                "not an ISO 3166-2",
            ),
            (|r| r.subdivision = None, "subdivision", "names its state"),
            (
                |r| r.postal_code = Some("9410".into()),
                "postal_code",
                "not a postal code of US",
            ),
            (|r| r.postal_code = None, "postal_code", "has a postal code"),
            (
                |r| r.line1 = "x".repeat(10_000),
                "line1",
                "at most 100 characters",
            ),
            (
                |r| r.name = "Ada\r\nBcc: x@example.com".into(),
                "name",
                "control character",
            ),
            (|r| r.city = "Paris\u{202E}".into(), "city", "bidirectional"),
            (
                |r| r.line2 = Some("Apt\n4".into()),
                "line2",
                "control character",
            ),
            (|r| r.line1 = String::new(), "line1", "must not be empty"),
            (
                |r| r.phone = Some("call me".into()),
                "phone",
                "not a phone number",
            ),
            (
                |r| r.postal_code = Some("94105\u{1b}".into()),
                "postal_code",
                "control character",
            ),
        ];
        for (break_it, field, says) in cases {
            let mut r = raw();
            break_it(&mut r);
            let error = Address::parse(&r).unwrap_err();
            assert_eq!(error.field, field, "{error}");
            assert!(error.to_string().contains(says), "{error}");
        }
    }

    #[test]
    fn countries_without_subdivisions_or_postal_formats_are_bounded_text() {
        let mut r = raw();
        r.country = "IE".into();
        r.subdivision = None;
        r.postal_code = None;
        r.phone = None;
        let address = Address::parse(&r).unwrap();
        assert_eq!((address.subdivision, address.postal_code), (None, None));
    }
}
