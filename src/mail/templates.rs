//! Email rendering: a subject, a text part and an HTML part per message kind, from minijinja
//! templates that ship in the binary (`templates/`) and can be overridden file by file from a
//! `templates_dir`. Money and dates are formatted for the customer's locale and time zone by
//! the `money`, `local_date` and `local_time` filters of the shared template environment
//! ([`crate::render`]). Rendering reads only the message's JSON snapshot.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use minijinja::{Environment, Error, Value, context};

use crate::core::links::Links;
use crate::core::locale::Language;
use crate::core::model::{MessageKind, Payload};
use crate::render::{PlanNames, environment, name_plans};

/// The templates that ship in the binary, by file name.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "annual_notice.html",
        include_str!("../../templates/annual_notice.html"),
    ),
    (
        "annual_notice.subject.txt",
        include_str!("../../templates/annual_notice.subject.txt"),
    ),
    (
        "annual_notice.txt",
        include_str!("../../templates/annual_notice.txt"),
    ),
    ("base.html", include_str!("../../templates/base.html")),
    (
        "lifecycle.html",
        include_str!("../../templates/lifecycle.html"),
    ),
    (
        "lifecycle.subject.txt",
        include_str!("../../templates/lifecycle.subject.txt"),
    ),
    (
        "lifecycle.txt",
        include_str!("../../templates/lifecycle.txt"),
    ),
    ("lines.html", include_str!("../../templates/lines.html")),
    ("lines.txt", include_str!("../../templates/lines.txt")),
    (
        "link_request.html",
        include_str!("../../templates/link_request.html"),
    ),
    (
        "link_request.subject.txt",
        include_str!("../../templates/link_request.subject.txt"),
    ),
    (
        "link_request.txt",
        include_str!("../../templates/link_request.txt"),
    ),
    ("links.txt", include_str!("../../templates/links.txt")),
    (
        "action_labels.txt",
        include_str!("../../templates/action_labels.txt"),
    ),
    (
        "order_confirmation.html",
        include_str!("../../templates/order_confirmation.html"),
    ),
    (
        "order_confirmation.subject.txt",
        include_str!("../../templates/order_confirmation.subject.txt"),
    ),
    (
        "order_confirmation.txt",
        include_str!("../../templates/order_confirmation.txt"),
    ),
    (
        "price_change.html",
        include_str!("../../templates/price_change.html"),
    ),
    (
        "price_change.subject.txt",
        include_str!("../../templates/price_change.subject.txt"),
    ),
    (
        "price_change.txt",
        include_str!("../../templates/price_change.txt"),
    ),
    ("payment.html", include_str!("../../templates/payment.html")),
    (
        "payment.subject.txt",
        include_str!("../../templates/payment.subject.txt"),
    ),
    ("payment.txt", include_str!("../../templates/payment.txt")),
    (
        "order_shipped.html",
        include_str!("../../templates/order_shipped.html"),
    ),
    (
        "order_shipped.subject.txt",
        include_str!("../../templates/order_shipped.subject.txt"),
    ),
    (
        "order_shipped.txt",
        include_str!("../../templates/order_shipped.txt"),
    ),
    (
        "de/order_shipped.html",
        include_str!("../../templates/de/order_shipped.html"),
    ),
    (
        "de/order_shipped.subject.txt",
        include_str!("../../templates/de/order_shipped.subject.txt"),
    ),
    (
        "de/order_shipped.txt",
        include_str!("../../templates/de/order_shipped.txt"),
    ),
    (
        "renewal_reminder.html",
        include_str!("../../templates/renewal_reminder.html"),
    ),
    (
        "renewal_reminder.subject.txt",
        include_str!("../../templates/renewal_reminder.subject.txt"),
    ),
    (
        "renewal_reminder.txt",
        include_str!("../../templates/renewal_reminder.txt"),
    ),
    (
        "de/annual_notice.html",
        include_str!("../../templates/de/annual_notice.html"),
    ),
    (
        "de/annual_notice.subject.txt",
        include_str!("../../templates/de/annual_notice.subject.txt"),
    ),
    (
        "de/annual_notice.txt",
        include_str!("../../templates/de/annual_notice.txt"),
    ),
    ("de/base.html", include_str!("../../templates/de/base.html")),
    (
        "de/lifecycle.html",
        include_str!("../../templates/de/lifecycle.html"),
    ),
    (
        "de/lifecycle.subject.txt",
        include_str!("../../templates/de/lifecycle.subject.txt"),
    ),
    (
        "de/lifecycle.txt",
        include_str!("../../templates/de/lifecycle.txt"),
    ),
    (
        "de/lifecycle_sentence.txt",
        include_str!("../../templates/de/lifecycle_sentence.txt"),
    ),
    (
        "de/lines.html",
        include_str!("../../templates/de/lines.html"),
    ),
    ("de/lines.txt", include_str!("../../templates/de/lines.txt")),
    (
        "de/link_request.html",
        include_str!("../../templates/de/link_request.html"),
    ),
    (
        "de/link_request.subject.txt",
        include_str!("../../templates/de/link_request.subject.txt"),
    ),
    (
        "de/link_request.txt",
        include_str!("../../templates/de/link_request.txt"),
    ),
    ("de/links.txt", include_str!("../../templates/de/links.txt")),
    (
        "de/action_labels.txt",
        include_str!("../../templates/de/action_labels.txt"),
    ),
    (
        "de/macros.txt",
        include_str!("../../templates/de/macros.txt"),
    ),
    (
        "de/order_confirmation.html",
        include_str!("../../templates/de/order_confirmation.html"),
    ),
    (
        "de/order_confirmation.subject.txt",
        include_str!("../../templates/de/order_confirmation.subject.txt"),
    ),
    (
        "de/order_confirmation.txt",
        include_str!("../../templates/de/order_confirmation.txt"),
    ),
    (
        "de/payment.html",
        include_str!("../../templates/de/payment.html"),
    ),
    (
        "de/payment.subject.txt",
        include_str!("../../templates/de/payment.subject.txt"),
    ),
    (
        "de/payment.txt",
        include_str!("../../templates/de/payment.txt"),
    ),
    (
        "de/price_change.html",
        include_str!("../../templates/de/price_change.html"),
    ),
    (
        "de/price_change.subject.txt",
        include_str!("../../templates/de/price_change.subject.txt"),
    ),
    (
        "de/price_change.txt",
        include_str!("../../templates/de/price_change.txt"),
    ),
    (
        "de/renewal_reminder.html",
        include_str!("../../templates/de/renewal_reminder.html"),
    ),
    (
        "de/renewal_reminder.subject.txt",
        include_str!("../../templates/de/renewal_reminder.subject.txt"),
    ),
    (
        "de/renewal_reminder.txt",
        include_str!("../../templates/de/renewal_reminder.txt"),
    ),
];

/// A rendered email, before addressing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot render the {kind} email: {source}")]
pub struct RenderError {
    pub kind: String,
    #[source]
    pub source: Error,
}

pub struct Renderer {
    env: Environment<'static>,
    links: Option<Links>,
}

/// The page actions an email offers, in order: one list that its text and HTML parts both show
/// (`links.txt`, `base.html`). A paused subscription is offered resume and cancel; a cancelled
/// one only its page.
fn email_actions(kind: MessageKind) -> &'static [&'static str] {
    match kind {
        MessageKind::Cancelled => &[],
        MessageKind::Paused => &["resume", "cancel"],
        _ => &["skip", "move", "change", "pause", "cancel"],
    }
}

impl Renderer {
    /// Templates from `override_dir` win over the embedded ones, file by file. With `links`,
    /// every email links to its subscription's pages.
    pub fn new(override_dir: Option<PathBuf>, links: Option<Links>) -> Renderer {
        Renderer {
            env: environment(override_dir, EMBEDDED),
            links,
        }
    }

    /// Every email links to its subscription's pages (see [`Renderer::new`]).
    pub fn set_links(&mut self, links: Links) {
        self.links = Some(links);
    }

    /// The emails name plans as the catalog names them for customers.
    pub fn name_plans(&mut self, names: &PlanNames) {
        name_plans(&mut self.env, names);
    }

    /// Renders a message of `kind` from its payload snapshot (as [`template_values`] reads
    /// it), at `now` (its links work for the configured time from then).
    pub fn render(
        &self,
        kind: MessageKind,
        payload: &Value,
        now: DateTime<Utc>,
    ) -> Result<Rendered, RenderError> {
        let wrap = |source| RenderError {
            kind: kind.as_str().to_owned(),
            source,
        };
        let family = match kind {
            MessageKind::RenewalReminder
            | MessageKind::OrderConfirmation
            | MessageKind::LinkRequest
            | MessageKind::AnnualNotice
            | MessageKind::PriceChange
            | MessageKind::OrderShipped => kind.as_str(),
            MessageKind::PaymentFailed
            | MessageKind::PaymentActionRequired
            | MessageKind::PaymentReceived => "payment",
            _ => "lifecycle",
        };
        let message_kind = kind;
        let kind = kind.as_str();
        let customer = field(payload, "customer");
        let locale = field(&customer, "locale");
        let locale = locale.as_str().unwrap_or("en-US");
        let ctx = context! {
            kind => kind,
            actions => email_actions(message_kind),
            locale => locale,
            tz => field(&customer, "time_zone").as_str().unwrap_or("UTC"),
            links => self.links.as_ref().and_then(|links| {
                field(&field(payload, "subscription"), "id")
                    .as_i64()
                    .map(|id| Value::from_serialize(links.for_subscription(id, now)))
            }),
            // The welcome and the annual notice also open all of the customer's subscriptions:
            // one email suffices for a customer with several.
            all_subscriptions => self.links.as_ref().filter(|_| matches!(
                message_kind,
                MessageKind::SubscriptionCreated | MessageKind::AnnualNotice
            )).and_then(|links| {
                field(&customer, "id")
                    .as_i64()
                    .map(|id| Value::from_serialize(links.for_customer(id, now)))
            }),
            ..payload.clone()
        };
        // The customer's language's template wins (`de/skipped.txt`, then `de/lifecycle.txt`),
        // then the default language's; a kind-specific one wins over its family's.
        let language = Language::of(locale).template_prefix();
        let render = |part: &str| -> Result<String, RenderError> {
            let mut names = Vec::with_capacity(4);
            for prefix in [language, None] {
                let folder = prefix.map(|p| format!("{p}/")).unwrap_or_default();
                if kind != family {
                    names.push(format!("{folder}{kind}.{part}"));
                }
                names.push(format!("{folder}{family}.{part}"));
            }
            let name = names
                .iter()
                .find(|name| self.env.get_template(name).is_ok())
                .unwrap_or(&names[names.len() - 1]);
            self.env
                .get_template(name)
                .and_then(|t| t.render(&ctx))
                .map_err(wrap)
        };
        Ok(Rendered {
            subject: render("subject.txt")?.trim().to_owned(),
            text: render("txt")?,
            html: render("html")?,
        })
    }
}

/// A message's payload as the templates read it, parsed from its stored text straight into
/// template values: the same values `Value::from_serialize` makes of the JSON (the tests hold
/// the two equal), without a JSON tree between.
pub fn template_values(payload: &Payload) -> Result<Value, String> {
    serde_json::from_str(payload.text()).map_err(|e| format!("the payload is not JSON: {e}"))
}

/// `value.key`, or undefined where there is no such field.
pub fn field(value: &Value, key: &str) -> Value {
    value.get_attr(key).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::locale;
    use crate::core::money::{Currency, Money};
    use serde_json::json;

    #[test]
    fn money_for_en_us() {
        let usd = |m| locale::format_money(Money::from_minor(m, Currency::Usd), "en-US");
        assert_eq!(usd(123456), "$1,234.56");
        assert_eq!(usd(5), "$0.05");
        assert_eq!(usd(-2025), "-$20.25");
        assert_eq!(usd(100_000_000), "$1,000,000.00");
        assert_eq!(
            locale::format_money(Money::from_minor(1999, Currency::Eur), "en-US"),
            "€19.99"
        );
        assert_eq!(
            locale::format_money(Money::from_minor(1999, Currency::Sek), "en-US"),
            "SEK 19.99"
        );
    }

    impl Renderer {
        /// Renders from a JSON value, as a payload stored and read back.
        fn render_json(
            &self,
            kind: MessageKind,
            payload: &serde_json::Value,
            now: DateTime<Utc>,
        ) -> Result<Rendered, RenderError> {
            let values = template_values(&Payload::of(payload)).unwrap();
            self.render(kind, &values, now)
        }
    }

    proptest::proptest! {
        /// Parsing the stored text makes what the JSON value read from that text made
        /// through serde before: equal values, written the same (their debug form), keys in
        /// the same order. (Read from the text on both sides: serde_json's float parsing
        /// may miss a value's last bit, the same way on both.)
        #[test]
        fn a_stored_payload_becomes_the_values_serde_makes_of_it(json in json_value()) {
            let stored = Payload::of(&json);
            let parsed = template_values(&stored).unwrap();
            let serialized = Value::from_serialize(stored.json().unwrap());
            proptest::prop_assert_eq!(format!("{parsed:?}"), format!("{serialized:?}"));
            proptest::prop_assert_eq!(parsed, serialized);
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<u64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            "[a-zé€ _\"\\\\]{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::from),
                proptest::collection::vec(("[a-z_]{1,8}", inner), 0..6)
                    .prop_map(|entries| serde_json::Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    fn now() -> DateTime<Utc> {
        "2027-02-20T12:00:00Z".parse().unwrap()
    }

    fn reminder_payload() -> serde_json::Value {
        json!({
            "customer": { "name": "Zoë Ångström", "email": "zoe@example.com", "locale": "en-US", "time_zone": "America/New_York" },
            "subscription": { "id": 7, "plan": "3-pack", "quantity": 1, "interval": "90 days" },
            "renewal_at": "2027-02-24T14:00:00Z",
            "lead_days": 3,
            "product": "Black Bala Probiotics",
            "quote": {
                "plan": "3-pack", "packs": 3, "quantity": 1,
                "lines": [
                    { "kind": "subtotal", "label": "3-pack × 1 at 134.99", "amount": { "amount_minor": 13499, "currency": "USD" } },
                    { "kind": "subscribe_and_save", "label": "Subscribe & save 15%", "amount": { "amount_minor": -2025, "currency": "USD" } }
                ],
                "total": { "amount_minor": 11474, "currency": "USD" },
                "tax_included": null
            }
        })
    }

    #[test]
    fn a_reminder_names_date_plan_and_price() {
        let rendered = Renderer::new(None, None)
            .render_json(MessageKind::RenewalReminder, &reminder_payload(), now())
            .unwrap();
        assert_eq!(
            rendered.subject,
            "Your 3-pack renews on Wednesday, February 24, 2027"
        );
        assert!(rendered.text.contains("Hello Zoë Ångström"));
        assert!(
            rendered.text.contains("at 9:00 AM EST"),
            "{}",
            rendered.text
        );
        assert!(
            rendered.text.contains("Total: $114.74"),
            "{}",
            rendered.text
        );
        assert!(
            rendered.text.contains("reply to this email before"),
            "without links, the reminder says how to change the renewal"
        );
        assert!(
            rendered.html.contains("Subscribe &amp; save 15%"),
            "HTML is escaped"
        );
        assert!(!rendered.html.contains("<script"));
        let signer = crate::core::links::LinkSigner::new(
            crate::core::links::parse_keys(&format!("k1:{}", "s".repeat(32))).unwrap(),
        )
        .unwrap();
        let links = Links::new(
            "https://shop.example/",
            signer.clone(),
            chrono::TimeDelta::days(30),
        );
        let linked = Renderer::new(None, Some(links))
            .render_json(MessageKind::RenewalReminder, &reminder_payload(), now())
            .unwrap();
        let token = linked
            .text
            .split("https://shop.example/s/")
            .nth(1)
            .and_then(|rest| rest.split(['/', '\n']).next())
            .expect("a link to the subscription's page");
        let claim = signer.verify(token, now()).unwrap();
        assert_eq!(claim.subscription_id, 7);
        assert_eq!(claim.expires_at, now() + chrono::TimeDelta::days(30));
        assert!(!linked.text.contains("reply to this email before"));
        assert!(
            linked
                .html
                .contains(&format!("https://shop.example/s/{token}/cancel").replace('/', "&#x2f;")),
            "the HTML part links to the cancel page (its attribute escaped, as browsers read it)"
        );
    }

    /// A renderer whose emails carry links to https://shop.example, valid 30 days.
    fn linked_renderer() -> Renderer {
        let signer = crate::core::links::LinkSigner::new(
            crate::core::links::parse_keys(&format!("k1:{}", "s".repeat(32))).unwrap(),
        )
        .unwrap();
        let links = Links::new("https://shop.example", signer, chrono::TimeDelta::days(30));
        Renderer::new(None, Some(links))
    }

    /// The welcome and the annual notice carry the customer link (all of the customer's
    /// subscriptions on one page) in both parts and both languages; other emails do not.
    #[test]
    fn the_welcome_and_the_annual_notice_open_all_subscriptions() {
        let renderer = linked_renderer();
        for (locale, label) in [
            ("en-US", "All your subscriptions"),
            ("de-DE", "Alle Ihre Abos"),
        ] {
            let payload = json!({
                "customer": { "id": 5, "name": "Ada", "locale": locale, "time_zone": "UTC" },
                "subscription": { "id": 1, "plan": "1-pack", "quantity": 1, "interval": "30 days",
                    "next_renewal_at": "2027-01-01T08:00:00Z" },
                "since": "2026-01-01T08:00:00Z",
                "detail": { "skipped_date": "2026-12-01T09:00:00+00:00" },
            });
            for (kind, carries) in [
                (MessageKind::SubscriptionCreated, true),
                (MessageKind::AnnualNotice, true),
                (MessageKind::Skipped, false),
            ] {
                let email = renderer.render_json(kind, &payload, now()).unwrap();
                let html = email.html.replace("&#x2f;", "/");
                let text_link = email
                    .text
                    .split(&format!("{label}: https://shop.example/c/"))
                    .nth(1)
                    .and_then(|rest| rest.split('\n').next());
                assert_eq!(
                    text_link.is_some(),
                    carries,
                    "{kind:?} {locale}:\n{}",
                    email.text
                );
                assert_eq!(
                    html.contains("https://shop.example/c/"),
                    carries,
                    "{kind:?} {locale}:\n{html}"
                );
                if let Some(token) = text_link {
                    let signer = crate::core::links::LinkSigner::new(
                        crate::core::links::parse_keys(&format!("k1:{}", "s".repeat(32))).unwrap(),
                    )
                    .unwrap();
                    assert_eq!(signer.verify_customer(token, now()).unwrap().customer_id, 5);
                }
            }
        }
    }

    /// Both parts of an email offer the same actions, from one list: a paused subscription's
    /// email offers resume and cancel in its text part too, in English and German.
    #[test]
    fn both_parts_offer_the_same_actions() {
        let renderer = linked_renderer();
        for locale in ["en-US", "de-DE"] {
            let payload = json!({
                "customer": { "name": "Ada", "locale": locale, "time_zone": "UTC" },
                "subscription": { "id": 1, "plan": "1-pack", "quantity": 1, "interval": "30 days" },
                "detail": { "skipped_date": "2026-12-01T09:00:00+00:00" },
            });
            for (kind, offered) in [
                (MessageKind::Paused, &["resume", "cancel"][..]),
                (
                    MessageKind::Skipped,
                    &["skip", "move", "change", "pause", "cancel"][..],
                ),
                (MessageKind::Cancelled, &[][..]),
            ] {
                let email = renderer.render_json(kind, &payload, now()).unwrap();
                let html = email.html.replace("&#x2f;", "/");
                for action in ["skip", "move", "change", "pause", "resume", "cancel"] {
                    let path = format!("/{action}\"");
                    let in_text = email.text.contains(&format!("/{action}\n"));
                    let in_html = html.contains(&path);
                    let wanted = offered.contains(&action);
                    assert_eq!(
                        (in_text, in_html),
                        (wanted, wanted),
                        "{locale} {kind:?} {action}:\n{}\n{html}",
                        email.text
                    );
                }
            }
        }
    }

    #[test]
    fn lifecycle_kinds_have_their_own_subjects() {
        let payload = json!({
            "customer": { "name": "Ada", "locale": "en-US", "time_zone": "UTC" },
            "subscription": { "id": 1, "plan": "1-pack", "quantity": 1, "interval": "30 days", "next_renewal_at": "2027-01-01T09:00:00Z" },
            "detail": { "skipped_date": "2026-12-01T09:00:00+00:00", "reason": "moving" },
        });
        let renderer = Renderer::new(None, None);
        // The lifecycle kinds and the link request (the notices need more in their payload).
        let subjects: Vec<String> = MessageKind::ALL[2..9]
            .iter()
            .map(|k| renderer.render_json(*k, &payload, now()).unwrap().subject)
            .collect();
        assert_eq!(
            subjects
                .iter()
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            7,
            "{subjects:?}"
        );
        assert!(
            renderer
                .render_json(MessageKind::Skipped, &payload, now())
                .unwrap()
                .text
                .contains("Tuesday, December 1, 2026")
        );
    }

    /// A restart is the lifecycle email's `resumed` kind marked `restarted`: its own subject
    /// and sentence, in English and in German, with the price it bills now.
    #[test]
    fn a_restart_has_its_own_subject_and_sentence_in_each_language() {
        let renderer = Renderer::new(None, None);
        for (locale, subject, sentence, resumed) in [
            (
                "en-US",
                "Your subscription is restarted",
                "at today's price. We bill and ship the first delivery now.",
                "Your subscription is active again",
            ),
            (
                "de-DE",
                "Ihr Abo ist wieder gestartet",
                "zum heutigen Preis. Die erste Lieferung berechnen und versenden wir jetzt.",
                "Ihr Abo ist wieder aktiv",
            ),
        ] {
            let payload = |detail: serde_json::Value| {
                json!({
                    "customer": { "name": "Ada", "locale": locale, "time_zone": "Europe/Berlin" },
                    "subscription": { "id": 1, "plan": "1-pack", "quantity": 1, "interval": "30 days", "next_renewal_at": "2027-01-01T09:00:00Z" },
                    "detail": detail,
                })
            };
            let restarted = renderer
                .render_json(
                    MessageKind::Resumed,
                    &payload(json!({ "restarted": true })),
                    now(),
                )
                .unwrap();
            assert_eq!(restarted.subject, subject);
            assert!(restarted.text.contains(sentence), "{}", restarted.text);
            assert!(restarted.html.contains("1 × 1-pack"), "{}", restarted.html);
            let resumed_mail = renderer
                .render_json(MessageKind::Resumed, &payload(json!({})), now())
                .unwrap();
            assert_eq!(resumed_mail.subject, resumed);
        }
    }

    #[test]
    fn payment_emails_say_what_failed_when_the_next_try_is_and_what_happened() {
        let payload = |next: serde_json::Value, action: serde_json::Value| {
            json!({
                "customer": { "id": 1, "name": "Ada", "email": "ada@example.com", "locale": "en-US", "time_zone": "UTC" },
                "subscription": { "id": 1, "plan": "1-pack", "quantity": 1, "status": "active" },
                "payment": { "order_number": "BB-0000001-002", "amount_minor": 4599, "currency": "USD", "attempt": 1 },
                "update_payment_url": "https://shop.example/account/payment",
                "decline_message": "Your card was declined.",
                "next_attempt_at": next,
                "final_action": action,
            })
        };
        let renderer = Renderer::new(None, None);
        let retry = renderer
            .render_json(
                MessageKind::PaymentFailed,
                &payload(json!("2027-01-03T09:00:00Z"), json!(null)),
                now(),
            )
            .unwrap();
        assert_eq!(
            retry.subject,
            "We could not charge $45.99 for order BB-0000001-002"
        );
        assert!(
            retry
                .text
                .contains("We will try again on Sunday, January 3, 2027"),
            "{}",
            retry.text
        );
        assert!(retry.text.contains("https://shop.example/account/payment"));
        assert!(retry.html.contains("Your card was declined."));
        let paused = renderer
            .render_json(
                MessageKind::PaymentFailed,
                &payload(json!(null), json!("pause")),
                now(),
            )
            .unwrap();
        assert!(
            paused.subject.starts_with("Your subscription is paused"),
            "{}",
            paused.subject
        );
        assert!(
            paused
                .text
                .contains("nothing more will be shipped or charged until you resume it")
        );
        let cancelled = renderer
            .render_json(
                MessageKind::PaymentFailed,
                &payload(json!(null), json!("cancel")),
                now(),
            )
            .unwrap();
        assert!(cancelled.text.contains("your subscription is cancelled"));
        let action = renderer
            .render_json(
                MessageKind::PaymentActionRequired,
                &payload(json!(null), json!(null)),
                now(),
            )
            .unwrap();
        assert!(action.text.contains("Nothing has been charged yet"));
        let received = renderer
            .render_json(
                MessageKind::PaymentReceived,
                &payload(json!(null), json!(null)),
                now(),
            )
            .unwrap();
        assert_eq!(
            received.subject,
            "Payment received: $45.99 for order BB-0000001-002"
        );
        assert!(!received.text.contains("shop.example"));
        let mut german = payload(json!("2027-01-03T09:00:00Z"), json!(null));
        german["customer"]["locale"] = json!("de-DE");
        let retry = renderer
            .render_json(MessageKind::PaymentFailed, &german, now())
            .unwrap();
        assert_eq!(
            retry.subject,
            "45,99\u{a0}$ für Bestellung BB-0000001-002 konnten nicht abgebucht werden"
        );
        assert!(
            retry
                .text
                .contains("Wir versuchen es am Sonntag, 3. Januar 2027 erneut"),
            "{}",
            retry.text
        );
    }

    /// A German email names the plan as the catalog does in German; an English one, or one
    /// whose plan has no German name, by its id.
    #[test]
    fn german_emails_name_plans_in_german() {
        let catalog = crate::config::load_catalog_text(crate::config::DEFAULT_CATALOG)
            .expect("the default catalog");
        let mut renderer = Renderer::new(None, None);
        renderer.name_plans(&PlanNames::of(&catalog));
        let payload = |locale: &str, plan: &str| {
            json!({
                "customer": { "name": "Ada", "locale": locale, "time_zone": "UTC" },
                "subscription": { "id": 1, "plan": plan, "quantity": 2, "status": "active" },
                "payment": { "order_number": "BB-0000001-002", "amount_minor": 4599, "currency": "EUR", "attempt": 1 },
                "next_attempt_at": null,
            })
        };
        let render = |locale: &str, plan: &str| {
            renderer
                .render_json(MessageKind::PaymentFailed, &payload(locale, plan), now())
                .unwrap()
        };
        let german = render("de-DE", "1-pack");
        assert!(german.text.contains("2 × 1er-Packung"), "{}", german.text);
        assert!(german.html.contains("2 × 1er-Packung"), "{}", german.html);
        let english = render("en-US", "1-pack");
        assert!(english.text.contains("1-pack"), "{}", english.text);
        assert!(!english.text.contains("1er-Packung"));
        let unnamed = render("de-DE", "9-pack");
        assert!(unnamed.text.contains("2 × 9-pack"), "{}", unnamed.text);
    }

    /// With links, a declined payment's email links to the card page and a 3-D Secure one to
    /// the order's confirmation page, in both parts and both languages; the storefront's page
    /// is offered beside them.
    #[test]
    fn payment_emails_link_to_the_card_and_confirmation_pages() {
        let renderer = linked_renderer();
        for locale in ["en-US", "de-DE"] {
            let payload = json!({
                "customer": { "name": "Ada", "locale": locale, "time_zone": "UTC" },
                "subscription": { "id": 7, "plan": "1-pack", "quantity": 1 },
                "payment": { "order_number": "BB-0000007-002", "amount_minor": 4599, "currency": "USD", "attempt": 1 },
                "update_payment_url": "https://shop.example/account/payment",
                "next_attempt_at": "2027-01-03T09:00:00Z",
            });
            let failed = renderer
                .render_json(MessageKind::PaymentFailed, &payload, now())
                .unwrap();
            let action = renderer
                .render_json(MessageKind::PaymentActionRequired, &payload, now())
                .unwrap();
            for (mail, path) in [
                (&failed, "/payment-method"),
                (&action, "/orders/BB-0000007-002/pay"),
            ] {
                let link = mail
                    .text
                    .split_whitespace()
                    .find(|word| {
                        word.starts_with("https://shop.example/s/") && word.ends_with(path)
                    })
                    .unwrap_or_else(|| panic!("{locale}: no {path} link in:\n{}", mail.text));
                // (Attributes escape `/`, as browsers read them.)
                assert!(
                    mail.html
                        .replace("&#x2f;", "/")
                        .contains(&format!("href=\"{link}\"")),
                    "{locale}: {}",
                    mail.html
                );
            }
            assert!(failed.text.contains("https://shop.example/account/payment"));
        }
    }

    #[test]
    fn a_german_customer_gets_german_words_numbers_and_dates() {
        let mut payload = reminder_payload();
        payload["customer"]["locale"] = json!("de-DE");
        payload["customer"]["time_zone"] = json!("Europe/Berlin");
        payload["quote"]["lines"][1]["kind"] = json!("subscribe_and_save");
        payload["quote"]["tax_included"] = json!({ "amount_minor": 1832, "currency": "EUR" });
        payload["quote"]["tax_included_rate"] = json!(1900);
        payload["quote"]["total"] = json!({ "amount_minor": 11474, "currency": "EUR" });
        let rendered = Renderer::new(None, None)
            .render_json(MessageKind::RenewalReminder, &payload, now())
            .unwrap();
        assert_eq!(
            rendered.subject,
            "Ihr 3-pack verlängert sich am Mittwoch, 24. Februar 2027"
        );
        for expected in [
            "Hallo Zoë Ångström",
            "um 15:00 Uhr CET",
            "Abo-Rabatt: -20,25",
            "Gesamt: 114,74\u{a0}€",
            "inkl. 19\u{a0}% MwSt.: 18,32\u{a0}€",
            "1 × 3-pack: 134,99",
        ] {
            assert!(
                rendered.text.contains(expected),
                "{expected}:\n{}",
                rendered.text
            );
        }
        assert!(rendered.html.contains("<html lang=\"de\">"));
        let lifecycle = json!({
            "customer": { "name": "Jürgen", "locale": "de-DE", "time_zone": "Europe/Berlin" },
            "subscription": { "id": 1, "plan": "1-pack", "quantity": 2, "interval": "1 month", "next_renewal_at": "2027-01-01T08:00:00Z" },
            "detail": { "until": "2027-03-01T00:00:00+01:00" },
        });
        let paused = Renderer::new(None, None)
            .render_json(MessageKind::Paused, &lifecycle, now())
            .unwrap();
        assert_eq!(paused.subject, "Ihr Abo ist pausiert");
        assert!(
            paused.text.contains("pausiert bis Montag, 1. März 2027"),
            "{}",
            paused.text
        );
        let created = Renderer::new(None, None)
            .render_json(MessageKind::SubscriptionCreated, &lifecycle, now())
            .unwrap();
        assert!(
            created
                .text
                .contains("(2 × 1-pack jeden Monat) ist eingerichtet"),
            "{}",
            created.text
        );
    }

    #[test]
    fn templates_dir_overrides_one_file() {
        let dir = std::env::temp_dir().join(format!("subsave-templates-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("renewal_reminder.subject.txt"),
            "Heads up, {{ customer.name }}",
        )
        .unwrap();
        let rendered = Renderer::new(Some(dir.clone()), None)
            .render_json(MessageKind::RenewalReminder, &reminder_payload(), now())
            .unwrap();
        assert_eq!(rendered.subject, "Heads up, Zoë Ångström");
        assert!(
            rendered.text.contains("Total: $114.74"),
            "the other parts stay embedded"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
