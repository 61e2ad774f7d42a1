//! The template environment every renderer builds its own from: minijinja templates embedded
//! in the binary and overridden file by file from a folder (`mail.templates_dir`, and its
//! `web/` and `console/` folders for the pages), HTML escaping for `.html` files, and the
//! filters the templates share: money, percentages, dates and times in the customer's locale
//! and time zone (`money`, `percent`, `local_date`, `local_time`) and the catalog's plan names
//! by language (`plan_name`). The emails (`mail::templates`), the customer pages (`web`) and
//! the console each build their own environment here, so no door renders with a worker's.
//! Must not: know what a message, a page or a door is, or read state beyond what a template is
//! given.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::DateTime;
use chrono_tz::Tz;
use minijinja::{Environment, Error, ErrorKind, Value};

use crate::core::catalog::Catalog;
use crate::core::locale;
use crate::core::money::{BasisPoints, Currency, Money};

/// A template environment over `embedded` templates, overridden file by file from
/// `override_dir`, with HTML escaping for `.html` files and the `money`, `local_date` and
/// `local_time` filters. The emails and the customer pages each have one.
pub fn environment(
    override_dir: Option<PathBuf>,
    embedded: &'static [(&'static str, &'static str)],
) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_loader(move |name: &str| {
        if let Some(dir) = &override_dir {
            let path = dir.join(name);
            if path.is_file() {
                return std::fs::read_to_string(&path).map(Some).map_err(|e| {
                    Error::new(
                        ErrorKind::TemplateNotFound,
                        format!("{}: {e}", path.display()),
                    )
                });
            }
        }
        Ok(embedded
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| (*t).to_owned()))
    });
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    env.add_filter("money", money_filter);
    env.add_filter("local_date", local_date_filter);
    env.add_filter("local_time", local_time_filter);
    env.add_filter("percent", percent_filter);
    name_plans(&mut env, &PlanNames::default());
    env
}

/// The catalog's names of its plans for customers, by plan id and language
/// (`[plans.ID.names]`).
#[derive(Debug, Clone, Default)]
pub struct PlanNames(Arc<BTreeMap<String, BTreeMap<String, String>>>);

impl PlanNames {
    pub fn of(catalog: &Catalog) -> PlanNames {
        PlanNames(Arc::new(
            catalog
                .plans
                .iter()
                .map(|plan| (plan.id.as_str().to_owned(), plan.names.clone()))
                .collect(),
        ))
    }
}

/// Gives `env` the filter `plan_name(language)`: `{{ s.plan | plan_name("de") }}` is the
/// plan's name in German when the catalog has one, else its id.
pub fn name_plans(env: &mut Environment<'static>, names: &PlanNames) {
    let names = names.0.clone();
    env.add_filter("plan_name", move |plan: String, language: String| {
        names
            .get(&plan)
            .and_then(|by_language| by_language.get(&language))
            .cloned()
            .unwrap_or(plan)
    });
}

/// `{amount_minor, currency}` → "$1,234.56" (en-US); other currencies get their code.
fn money_filter(value: Value, locale: Option<String>) -> Result<String, Error> {
    let minor = value.get_attr("amount_minor")?.as_i64().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            "money needs {amount_minor, currency}",
        )
    })?;
    let currency: Currency = value
        .get_attr("currency")?
        .as_str()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "money needs a known currency"))?;
    Ok(locale::format_money(
        Money::from_minor(minor, currency),
        locale.as_deref().unwrap_or("en-US"),
    ))
}

/// A rate in basis points → "19%" (en), "19 %" (de).
fn percent_filter(value: Value, locale: Option<String>) -> Result<String, Error> {
    let rate = value
        .as_i64()
        .and_then(|bp| u32::try_from(bp).ok())
        .and_then(BasisPoints::new)
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "percent needs basis points"))?;
    Ok(locale::format_percent(
        rate,
        locale.as_deref().unwrap_or("en-US"),
    ))
}

fn instant_in(value: &Value, tz: &str) -> Result<DateTime<Tz>, Error> {
    let text = value.as_str().ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            "a date filter needs an RFC 3339 string",
        )
    })?;
    let zone: Tz = tz.parse().map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("unknown time zone {tz}"),
        )
    })?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&zone))
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, format!("{text}: {e}")))
}

/// "Wednesday, February 24, 2027" (or "Mittwoch, 24. Februar 2027"): an instant's date in
/// the customer's zone, or a plain `YYYY-MM-DD` date as it is.
fn local_date_filter(value: Value, tz: String, locale: Option<String>) -> Result<String, Error> {
    let locale = locale.as_deref().unwrap_or("en-US");
    // Most values are instants, so they are tried first; a plain date is the fallback, and
    // the instant's error is the one reported when the value is neither.
    let date = match instant_in(&value, &tz) {
        Ok(instant) => instant.date_naive(),
        Err(error) => value
            .as_str()
            .and_then(|text| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
            .ok_or(error)?,
    };
    Ok(locale::format_date(date, locale))
}

/// "9:00 AM EST" (or "9:00 Uhr EST") in the customer's zone.
fn local_time_filter(value: Value, tz: String, locale: Option<String>) -> Result<String, Error> {
    Ok(locale::format_time(
        &instant_in(&value, &tz)?,
        locale.as_deref().unwrap_or("en-US"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local_date(value: &str, tz: &str) -> Result<String, String> {
        local_date_filter(Value::from(value), tz.to_owned(), Some("en-US".to_owned()))
            .map_err(|e| e.to_string())
    }

    #[test]
    fn local_date_reads_an_instant_in_the_zone_or_a_plain_date_as_it_is() {
        // 01:30 UTC is still the evening before in New York.
        assert_eq!(
            local_date("2027-02-24T01:30:00Z", "America/New_York").unwrap(),
            "Tuesday, February 23, 2027"
        );
        assert_eq!(
            local_date("2027-02-24", "America/New_York").unwrap(),
            "Wednesday, February 24, 2027"
        );
        // A plain date needs no zone, so an unknown one does not matter to it.
        assert_eq!(
            local_date("2027-02-24", "Mars/Olympus").unwrap(),
            "Wednesday, February 24, 2027"
        );
        let unknown_zone = local_date("2027-02-24T01:30:00Z", "Mars/Olympus").unwrap_err();
        assert!(
            unknown_zone.contains("unknown time zone Mars/Olympus"),
            "{unknown_zone}"
        );
        let neither = local_date("next Tuesday", "UTC").unwrap_err();
        assert!(neither.contains("next Tuesday"), "{neither}");
    }
}
