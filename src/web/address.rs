//! "Change the delivery address": the form (`GET /s/TOKEN/address`, its fields labelled for
//! the chosen country in the customer's language) and its post (`POST /s/TOKEN/address`, with
//! the CSRF token and the state the form showed). A new address that changes the price shows
//! the new price first, to be confirmed by a second post; then the subscription ships there
//! from its next renewal and the customer gets a confirmation email.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use serde::Serialize;

use super::Web;
use crate::app::AppError;
use crate::app::self_service::{self, AddressForm, AddressOutcome};
use crate::core::address::{Country, RawAddress, required_subdivisions};
use crate::core::locale::Language;

type Fields = HashMap<String, String>;

/// The fields of an address form, as their labels and hints read for one country and language.
#[derive(Debug, Clone, Serialize)]
pub struct Labels {
    pub country: String,
    pub subdivision: &'static str,
    /// Choices where the address must name its subdivision (US states, CA provinces, AU
    /// states); a free, optional field elsewhere.
    pub subdivisions: Vec<(&'static str, &'static str)>,
    pub postal_code: &'static str,
    /// An example of the country's postal code.
    pub postal_example: &'static str,
    pub postal_required: bool,
}

/// The labels of the subdivision and postal code fields of an address in `country`, in
/// `language`: "State" and "ZIP code" in the US, "Postcode" in Britain, "Postleitzahl" in
/// German, and so on.
pub fn labels(country: Country, language: Language) -> Labels {
    let german = language == Language::German;
    let pick = |en: &'static str, de: &'static str| if german { de } else { en };
    let (subdivision, postal_code, postal_example) = match country.code() {
        "US" => (
            pick("State", "Bundesstaat"),
            pick("ZIP code", "ZIP-Code"),
            "94105",
        ),
        "CA" => (
            pick("Province", "Provinz"),
            pick("Postal code", "Postleitzahl"),
            "K1A 0B1",
        ),
        "AU" => (
            pick("State or territory", "Bundesstaat oder Territorium"),
            pick("Postcode", "Postleitzahl"),
            "2000",
        ),
        "GB" => (
            pick("County (optional)", "Grafschaft (optional)"),
            pick("Postcode", "Postleitzahl"),
            "SW1A 1AA",
        ),
        "DE" | "AT" | "CH" => (
            pick("State (optional)", "Bundesland (optional)"),
            pick("Postal code", "Postleitzahl"),
            "10115",
        ),
        "JP" => (
            pick("Prefecture (optional)", "Präfektur (optional)"),
            pick("Postal code", "Postleitzahl"),
            "100-0001",
        ),
        "FR" => (
            pick("Region (optional)", "Region (optional)"),
            pick("Postal code", "Postleitzahl"),
            "75001",
        ),
        _ => (
            pick("Region (optional)", "Region (optional)"),
            pick("Postal code", "Postleitzahl"),
            "",
        ),
    };
    Labels {
        country: country.code().to_owned(),
        subdivision,
        subdivisions: required_subdivisions(country),
        postal_code,
        postal_example,
        postal_required: !postal_example.is_empty(),
    }
}

/// The country a form is for: the one asked for (`?country=`), else the address it ships to
/// now, else the first the shop ships to.
fn chosen_country(form: &AddressForm, asked: Option<&str>) -> Option<Country> {
    asked
        .and_then(|code| Country::parse(code).ok())
        .filter(|c| form.countries.iter().any(|(code, _)| code == c.code()))
        .or_else(|| {
            form.current
                .as_ref()
                .and_then(|a| Country::parse(&a.address.country).ok())
        })
        .or_else(|| {
            form.countries
                .first()
                .and_then(|(code, _)| Country::parse(code).ok())
        })
}

impl Web {
    #[allow(clippy::too_many_arguments)]
    fn address_page(
        &self,
        status: StatusCode,
        token: &str,
        form: &AddressForm,
        entered: &Fields,
        country: Option<&str>,
        problem: Option<String>,
        confirm: Option<Value>,
    ) -> Response {
        let language = Language::of(&form.page.locale);
        let labels = chosen_country(form, country).map(|c| labels(c, language));
        let values = prefill(form, entered, labels.as_ref());
        self.render_in(
            &form.page.locale,
            status,
            "address.html",
            context! {
                token,
                form,
                page => &form.page,
                labels,
                values,
                problem,
                confirm,
                csrf => self.links.signer().form_token(token),
            },
        )
    }
}

/// What the form's fields show: what the customer entered, else the address it ships to now
/// when the form is for its country, else nothing.
fn prefill(form: &AddressForm, entered: &Fields, labels: Option<&Labels>) -> Fields {
    const KEYS: [&str; 8] = [
        "name",
        "line1",
        "line2",
        "city",
        "subdivision",
        "postal_code",
        "country",
        "phone",
    ];
    if KEYS.iter().any(|k| entered.contains_key(*k)) {
        return KEYS
            .iter()
            .map(|k| (k.to_string(), entered.get(*k).cloned().unwrap_or_default()))
            .collect();
    }
    let mut values: Fields = KEYS
        .iter()
        .map(|k| (k.to_string(), String::new()))
        .collect();
    if let Some(current) = form
        .current
        .as_ref()
        .filter(|a| labels.is_some_and(|l| l.country == a.address.country))
    {
        let a = &current.address;
        for (key, value) in [
            ("name", Some(&a.name)),
            ("line1", Some(&a.line1)),
            ("line2", a.line2.as_ref()),
            ("city", Some(&a.city)),
            ("subdivision", a.subdivision.as_ref()),
            ("postal_code", a.postal_code.as_ref()),
            ("country", Some(&a.country)),
            ("phone", a.phone.as_ref()),
        ] {
            values.insert(key.to_owned(), value.cloned().unwrap_or_default());
        }
    }
    values
}

/// `GET /s/TOKEN/address`: the form, for the country asked for (`?country=US`).
pub async fn show(web: Arc<Web>, token: String, query: Fields) -> Response {
    let claim = match web.open(&token) {
        Ok(claim) => claim,
        Err(response) => return *response,
    };
    match self_service::address_form(&web.app, claim.subscription_id).await {
        Ok(form) if form.page.subscription.status == "cancelled" => web.subscription_page(
            StatusCode::OK,
            &token,
            Some(&form.page),
            Some("This subscription is cancelled: there is nothing more to change."),
        ),
        Ok(form) => web.address_page(
            StatusCode::OK,
            &token,
            &form,
            &Fields::new(),
            query.get("country").map(String::as_str),
            None,
            None,
        ),
        Err(error) => web.failed(error, &token, None),
    }
}

/// The address a posted form holds.
fn raw_address(fields: &Fields) -> RawAddress {
    let field = |name: &str| fields.get(name).cloned().unwrap_or_default();
    let optional = |name: &str| fields.get(name).filter(|v| !v.trim().is_empty()).cloned();
    RawAddress {
        name: field("name"),
        line1: field("line1"),
        line2: optional("line2"),
        city: field("city"),
        subdivision: optional("subdivision"),
        postal_code: optional("postal_code"),
        country: field("country"),
        phone: optional("phone"),
    }
}

/// A refused field in a German customer's words: the field as its form labels it, and what to
/// check (with the country's postal code example). The reasons are the core's, in English.
fn german_problem(field: Option<&str>, labels: Option<&Labels>) -> String {
    let optional = |label: &'static str| label.trim_end_matches(" (optional)");
    let label = match field {
        Some("name") => "Name auf dem Paket",
        Some("line1") => "Straße und Hausnummer",
        Some("line2") => "Adresszusatz",
        Some("city") => "Ort",
        Some("subdivision") => labels.map_or("Region", |l| optional(l.subdivision)),
        Some("postal_code") => labels.map_or("Postleitzahl", |l| l.postal_code),
        Some("phone") => "Telefon",
        Some("country") => "Land",
        _ => "Adresse",
    };
    let example = labels
        .filter(|l| field == Some("postal_code") && !l.postal_example.is_empty())
        .map(|l| format!(" (zum Beispiel {})", l.postal_example))
        .unwrap_or_default();
    format!("{label}: Bitte prüfen Sie diese Angabe{example}.")
}

/// `POST /s/TOKEN/address`: changes the address if the form is this link's and the
/// subscription is as the form showed it; a new price is shown first, and changed when the
/// form's `confirm` carries that price back (a price that moved since is shown again).
pub async fn submit(web: Arc<Web>, token: String, fields: Fields) -> Response {
    let claim = match web.open_form(&token, &fields).await {
        Ok(claim) => claim,
        Err(response) => return *response,
    };
    let id = claim.subscription_id;
    let seen = fields.get("seen").map(String::as_str).unwrap_or_default();
    let confirmed = fields.get("confirm").map(String::as_str);
    let raw = raw_address(&fields);
    let outcome = self_service::change_address(&web.app, id, seen, &raw, confirmed).await;
    let form = match self_service::address_form(&web.app, id).await {
        Ok(form) => form,
        Err(error) => return web.failed(error, &token, None),
    };
    let country = fields.get("country").map(String::as_str);
    match outcome {
        Ok(AddressOutcome::Changed(_)) => {
            Redirect::to(&format!("/s/{token}?done=change")).into_response()
        }
        Ok(AddressOutcome::Confirm {
            quote_before,
            quote,
        }) => web.address_page(
            StatusCode::OK,
            &token,
            &form,
            &fields,
            country,
            None,
            Some(context! {
                total => self_service::confirmed_total(quote.as_ref()),
                quote_before,
                quote,
            }),
        ),
        Err(AppError::InvalidInput { field, message }) => {
            let language = Language::of(&form.page.locale);
            let problem = match language {
                Language::German => {
                    let labels = chosen_country(&form, country).map(|c| labels(c, language));
                    german_problem(field, labels.as_ref())
                }
                Language::English => format!("{}{message}", field.unwrap_or_default()),
            };
            web.address_page(
                StatusCode::UNPROCESSABLE_ENTITY,
                &token,
                &form,
                &fields,
                country,
                Some(problem),
                None,
            )
        }
        Err(error) => web.failed(error, &token, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_german_customer_reads_which_field_to_check() {
        let de = labels(Country::parse("DE").unwrap(), Language::German);
        assert_eq!(
            german_problem(Some("postal_code"), Some(&de)),
            "Postleitzahl: Bitte prüfen Sie diese Angabe (zum Beispiel 10115)."
        );
        assert_eq!(
            german_problem(Some("subdivision"), Some(&de)),
            "Bundesland: Bitte prüfen Sie diese Angabe."
        );
        assert_eq!(
            german_problem(Some("line1"), None),
            "Straße und Hausnummer: Bitte prüfen Sie diese Angabe."
        );
    }

    #[test]
    fn fields_are_labelled_for_the_country_and_language() {
        let us = Country::parse("US").unwrap();
        let de = Country::parse("DE").unwrap();
        let gb = Country::parse("GB").unwrap();
        let english = labels(us, Language::English);
        assert_eq!(
            (english.subdivision, english.postal_code),
            ("State", "ZIP code")
        );
        assert!(
            english
                .subdivisions
                .iter()
                .any(|(code, name)| *code == "US-CA" && *name == "California")
        );
        assert_eq!(labels(de, Language::German).postal_code, "Postleitzahl");
        assert_eq!(labels(de, Language::English).postal_code, "Postal code");
        assert!(labels(de, Language::German).subdivisions.is_empty());
        assert_eq!(labels(gb, Language::English).postal_code, "Postcode");
    }
}
