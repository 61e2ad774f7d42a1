//! The handlers behind the customer pages: each opens the link, calls one use case and renders
//! one template. Refusals become pages that say what happened and what to do, and never what
//! exists (an unknown subscription looks like a bad link).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use minijinja::{Value, context};

use super::{Web, too_many_requests, visitor_language};
use crate::app::AppError;
use crate::app::self_service::{self, CustomerAction, CustomerPage};
use crate::app::subscriptions::ChangeInput;
use crate::config::CancelOffer;
use crate::core::catalog::PlanId;
use crate::core::links::{ACTIONS, CustomerRefusal, LinkClaim, LinkRefusal};
use crate::core::locale::Language;
use crate::core::model::Email;
use crate::core::schedule::Interval;

type Fields = HashMap<String, String>;

/// What a page says after an action, by action, in the customer's language (shown only when
/// the subscription's latest event is the customer's own action of that kind; nothing the
/// client sends is echoed).
fn done_message(action: &str, language: Language) -> Option<String> {
    let (english, german) = match action {
        "skip" => (
            "Done: the next delivery is skipped.",
            "Erledigt: Die nächste Lieferung wird übersprungen.",
        ),
        "move" => (
            "Done: your next delivery has moved.",
            "Erledigt: Ihre nächste Lieferung ist verschoben.",
        ),
        "change" => (
            "Done: your subscription is changed.",
            "Erledigt: Ihr Abo ist geändert.",
        ),
        "pause" => (
            "Done: your subscription is paused.",
            "Erledigt: Ihr Abo ist pausiert.",
        ),
        "resume" => (
            "Done: your subscription is active again.",
            "Erledigt: Ihr Abo ist wieder aktiv.",
        ),
        "cancel" => (
            "Done: your subscription is cancelled and nothing more will be charged.",
            "Erledigt: Ihr Abo ist gekündigt, und es wird nichts mehr berechnet.",
        ),
        "renew" => (
            "Done: your next delivery is billed and shipped now.",
            "Erledigt: Ihre nächste Lieferung wird jetzt berechnet und versendet.",
        ),
        "coupon" => (
            "Done: your coupon applies from your next renewal.",
            "Erledigt: Ihr Gutschein gilt ab Ihrer nächsten Verlängerung.",
        ),
        "restart" => (
            "Done: your subscription is restarted, and its first delivery is billed and shipped now.",
            "Erledigt: Ihr Abo ist wieder gestartet; die erste Lieferung wird jetzt berechnet und versendet.",
        ),
        _ => return None,
    };
    Some(match language {
        Language::English => format!("{english} We have emailed you a confirmation."),
        Language::German => format!("{german} Wir haben Ihnen eine Bestätigung geschickt."),
    })
}

/// An action page's heading, in the customer's language.
fn heading(action: &str, language: Language) -> &'static str {
    let (english, german) = match action {
        "skip" => ("Skip the next delivery", "Nächste Lieferung überspringen"),
        "move" => ("Move the next delivery", "Nächste Lieferung verschieben"),
        "change" => ("Change your subscription", "Ihr Abo ändern"),
        "pause" => ("Pause your subscription", "Ihr Abo pausieren"),
        "resume" => ("Resume your subscription", "Ihr Abo fortsetzen"),
        "cancel" => ("Cancel your subscription", "Ihr Abo kündigen"),
        "restart" => ("Restart your subscription", "Ihr Abo wieder starten"),
        _ => ("Ship now", "Jetzt liefern"),
    };
    in_language(language, english, german)
}

/// `english` or `german`, as `language` reads.
pub(super) fn in_language(
    language: Language,
    english: &'static str,
    german: &'static str,
) -> &'static str {
    match language {
        Language::German => german,
        Language::English => english,
    }
}

impl Web {
    /// Renders `name` in the customer's language, as the emails are: `de/NAME` for a German
    /// locale when there is one, else `NAME`.
    pub(super) fn render_in(
        &self,
        locale: &str,
        status: StatusCode,
        name: &str,
        ctx: Value,
    ) -> Response {
        self.render_language(Language::of(locale), status, name, ctx)
    }

    fn render_language(
        &self,
        language: Language,
        status: StatusCode,
        name: &str,
        ctx: Value,
    ) -> Response {
        let localized = language
            .template_prefix()
            .map(|prefix| format!("{prefix}/{name}"))
            .filter(|localized| self.pages.get_template(localized).is_ok());
        self.render(status, localized.as_deref().unwrap_or(name), ctx)
    }

    fn render(&self, status: StatusCode, name: &str, ctx: Value) -> Response {
        match super::html(&self.pages, status, name, ctx) {
            Ok(response) => response,
            Err(error) => {
                tracing::error!(template = name, %error, "cannot render a customer page");
                unavailable()
            }
        }
    }

    /// A message page in `language` (a known customer's).
    pub(super) fn message(
        &self,
        status: StatusCode,
        language: Language,
        heading: &str,
        text: &str,
        extra: Value,
    ) -> Response {
        self.render_language(
            language,
            status,
            "message.html",
            context! { heading, text, problem => !status.is_success(), ..extra },
        )
    }

    /// A message page for a visitor no one knows yet, in the language their request prefers:
    /// `heading` and `text` are (English, German). It says so with `Vary: Accept-Language`.
    pub(super) fn visitor_message(
        &self,
        status: StatusCode,
        heading: (&'static str, &'static str),
        text: (&'static str, &'static str),
        extra: Value,
    ) -> Response {
        let language = visitor_language();
        let mut response = self.message(
            status,
            language,
            in_language(language, heading.0, heading.1),
            in_language(language, text.0, text.1),
            extra,
        );
        response.headers_mut().insert(
            header::VARY,
            header::HeaderValue::from_static("accept-language"),
        );
        response
    }

    /// The language of a subscription's customer, for a page that has not read it: the
    /// visitor's when it cannot be read (the page then says as little as before).
    pub(super) async fn language_of(&self, subscription_id: i64) -> Language {
        match self_service::page(&self.app, subscription_id).await {
            Ok(page) => Language::of(&page.locale),
            Err(_) => visitor_language(),
        }
    }

    /// The page for a link that opens nothing: 403 for a bad one (asking for an address), 410
    /// for an expired genuine one (offering a fresh link to the address on file).
    fn refused(&self, refusal: LinkRefusal, token: &str) -> Response {
        match refusal {
            LinkRefusal::Invalid => self.visitor_message(
                StatusCode::FORBIDDEN,
                ("This link does not work", "Dieser Link funktioniert nicht"),
                (
                    "The link is incomplete or no longer valid. Enter your email address and we will send you a new one.",
                    "Der Link ist unvollständig oder nicht mehr gültig. Geben Sie Ihre E-Mail-Adresse ein, und wir schicken Ihnen einen neuen.",
                ),
                context! { ask_address => true },
            ),
            LinkRefusal::Expired(_) => self.visitor_message(
                StatusCode::GONE,
                ("This link has expired", "Dieser Link ist abgelaufen"),
                (
                    "Links in our emails work for a limited time. We can email you a new one at the address we have on file.",
                    "Links in unseren E-Mails gelten nur eine Zeit lang. Wir können Ihnen einen neuen an die Adresse schicken, die wir von Ihnen haben.",
                ),
                context! { fresh => true, token, csrf => self.links.signer().form_token(token) },
            ),
        }
    }

    /// Verifies the link and the form's CSRF token; the refusal is the page to answer with,
    /// in the language of the link's customer.
    pub(super) async fn open_form(
        &self,
        token: &str,
        fields: &Fields,
    ) -> Result<LinkClaim, Box<Response>> {
        let claim = self.open(token)?;
        let csrf = fields.get("csrf").map(String::as_str).unwrap_or_default();
        if !self.links.signer().verify_form_token(token, csrf) {
            let language = self.language_of(claim.subscription_id).await;
            return Err(Box::new(self.message(
                StatusCode::FORBIDDEN,
                language,
                in_language(
                    language,
                    "This form cannot be sent",
                    "Dieses Formular kann nicht gesendet werden",
                ),
                in_language(
                    language,
                    "It did not come from your subscription's page. Nothing was changed; open the page again and retry.",
                    "Es kam nicht von der Seite Ihres Abos. Nichts wurde geändert; öffnen Sie die Seite erneut und versuchen Sie es noch einmal.",
                ),
                context! { token, back => true },
            )));
        }
        Ok(claim)
    }

    /// The page of an order number the link's subscription does not have, in its customer's
    /// language.
    pub(super) async fn no_such_order(&self, token: &str, subscription_id: i64) -> Response {
        let language = self.language_of(subscription_id).await;
        self.message(
            StatusCode::NOT_FOUND,
            language,
            in_language(language, "No such order", "Diese Bestellung gibt es nicht"),
            in_language(
                language,
                "This subscription has no order with that number. Its page lists its orders.",
                "Dieses Abo hat keine Bestellung mit dieser Nummer. Seine Seite listet seine Bestellungen auf.",
            ),
            context! { token, back => true },
        )
    }

    /// Verifies the link and counts the request against it.
    /// The refusal is the page to answer with, boxed (a response is large).
    pub(super) fn open(&self, token: &str) -> Result<LinkClaim, Box<Response>> {
        let claim = self
            .links
            .signer()
            .verify(token, self.app.now())
            .map_err(|refusal| Box::new(self.refused(refusal, token)))?;
        self.per_link
            .check(&format!("sub:{}", claim.subscription_id), Instant::now())
            .map_err(|wait| Box::new(too_many_requests(wait)))?;
        Ok(claim)
    }

    /// A use case's refusal as a page. An unknown subscription behind a genuine link (it
    /// cannot be, short of a database restored from before it) looks like a bad link.
    pub(super) fn failed(
        &self,
        error: AppError,
        token: &str,
        page: Option<&CustomerPage>,
    ) -> Response {
        let language = page.map_or_else(visitor_language, |p| Language::of(&p.locale));
        match error {
            AppError::NotFound(_) => self.refused(LinkRefusal::Invalid, token),
            AppError::Conflict(_) => self.subscription_page(
                StatusCode::CONFLICT,
                token,
                page,
                Some(in_language(
                    language,
                    "Nothing was done: your subscription had already changed (perhaps you already did this). Here it is now.",
                    "Nichts wurde getan: Ihr Abo hatte sich schon geändert (vielleicht haben Sie das schon getan). So steht es jetzt.",
                )),
            ),
            AppError::InvalidState(message) | AppError::InvalidInput { message, .. } => self
                .subscription_page(
                    StatusCode::CONFLICT,
                    token,
                    page,
                    Some(&format!(
                        "{} {}",
                        in_language(language, "Nothing was done:", "Nichts wurde getan:"),
                        customer_reason(&message, language)
                    )),
                ),
            AppError::Store(error) => {
                tracing::warn!(%error, "a customer page could not reach the database");
                unavailable()
            }
            AppError::Unavailable(error) => {
                tracing::warn!(%error, "a customer page could not be served");
                unavailable()
            }
        }
    }

    pub(super) fn subscription_page(
        &self,
        status: StatusCode,
        token: &str,
        page: Option<&CustomerPage>,
        done: Option<&str>,
    ) -> Response {
        match page {
            // The restart form of a cancelled subscription's page carries the CSRF token.
            Some(page) => self.render_in(
                &page.locale,
                status,
                "subscription.html",
                context! { token, page, done, csrf => self.links.signer().form_token(token) },
            ),
            None => {
                let language = visitor_language();
                self.message(
                    status,
                    language,
                    in_language(language, "Your subscription", "Ihr Abo"),
                    done.unwrap_or_default(),
                    context! { token, back => true },
                )
            }
        }
    }
}

/// A lifecycle refusal in a customer's words: the operator's hints (commands, ids) dropped.
fn customer_words(message: &str) -> String {
    let message = message.split("; ").next().unwrap_or(message);
    match message.split_once(": ") {
        Some((_, reason)) if message.starts_with("cannot ") => format!("{reason}."),
        _ => format!("{message}."),
    }
}

/// A refusal from the core in the customer's words and language. The core speaks English
/// (its refusals serve the operator's doors too); the pages translate the refusals a customer
/// can meet here, recognised by their wording, and show the English of any other.
fn customer_reason(message: &str, language: Language) -> String {
    match language {
        Language::German => german_reason(message).unwrap_or_else(|| customer_words(message)),
        Language::English => customer_words(message),
    }
}

/// The German of the refusals a customer can meet on the pages (`core::lifecycle`'s state,
/// date, quantity and plan refusals, and a renewal held for an unpaid order), none for others.
fn german_reason(message: &str) -> Option<String> {
    let after = |marker: &str| message.split_once(marker).map(|(_, rest)| rest);
    let number_after = |marker: &str| -> Option<u32> {
        let rest = after(marker)?;
        let digits = rest.split(|c: char| !c.is_ascii_digit()).next()?;
        digits.parse().ok()
    };
    let reason = if let Some(max) = number_after("is out of range: choose 1 to ") {
        format!("wählen Sie eine Menge von 1 bis {max}.")
    } else if let Some(days) = number_after("; choose a date within ") {
        format!("wählen Sie ein Datum innerhalb von {days} Tagen ab heute.")
    } else if message.contains(": it is paused") {
        "Ihr Abo ist pausiert; setzen Sie es zuerst fort.".to_owned()
    } else if message.contains("not paused") {
        "Ihr Abo ist nicht pausiert.".to_owned()
    } else if message.starts_with("cannot restart") {
        "Ihr Abo kann nicht mehr wieder gestartet werden; schließen Sie im Shop ein neues ab."
            .to_owned()
    } else if message.contains(": it is cancelled") {
        "Ihr Abo ist gekündigt.".to_owned()
    } else if message.contains(": that is not in the future") {
        "das Datum liegt nicht in der Zukunft; wählen Sie ein späteres.".to_owned()
    } else if message.contains("does not allow an interval of") {
        "diesen Plan gibt es nicht in diesem Rhythmus; wählen Sie einen anderen.".to_owned()
    } else if message.contains("is not in the catalog") {
        "diesen Plan gibt es nicht; wählen Sie einen der Pläne.".to_owned()
    } else if message.contains("without a reason") {
        "nennen Sie uns bitte einen Grund.".to_owned()
    } else if message.starts_with("nothing to change") {
        "wählen Sie, was sich ändern soll.".to_owned()
    } else if message.contains("is not paid yet") {
        "Ihre letzte Bestellung ist noch nicht bezahlt; aktualisieren Sie zuerst Ihre Zahlungsart."
            .to_owned()
    } else {
        return None;
    };
    Some(reason)
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(header::RETRY_AFTER, "60")],
        "We cannot show this page right now. Please try again in a minute.\n",
    )
        .into_response()
}

pub async fn not_found(State(web): State<Arc<Web>>) -> Response {
    web.not_found_page()
}

impl Web {
    fn not_found_page(&self) -> Response {
        self.visitor_message(
            StatusCode::NOT_FOUND,
            ("Page not found", "Seite nicht gefunden"),
            (
                "There is no page here. Open the link in one of our emails.",
                "Hier ist keine Seite. Öffnen Sie den Link in einer unserer E-Mails.",
            ),
            context! {},
        )
    }

    /// The link of an action's URL, when the action is one of the pages' and the link opens.
    fn open_action(&self, token: &str, action: &str) -> Result<LinkClaim, Box<Response>> {
        if !ACTIONS.contains(&action) {
            return Err(Box::new(self.not_found_page()));
        }
        self.open(token)
    }
}

/// `GET /s/TOKEN`: the subscription and what can be changed.
pub async fn overview(
    State(web): State<Arc<Web>>,
    Path(token): Path<String>,
    Query(query): Query<Fields>,
) -> Response {
    let claim = match web.open(&token) {
        Ok(claim) => claim,
        Err(response) => return *response,
    };
    // The banner reports what the server recorded: `?done=` only says which one the redirect
    // expects, and shows nothing unless the latest event is that action (read only then).
    let just = match query.get("done") {
        Some(asked) => match self_service::just_done(&web.app, claim.subscription_id).await {
            Ok(just) => just.filter(|just| just == asked),
            Err(error) => return web.failed(error, &token, None),
        },
        None => None,
    };
    match self_service::page(&web.app, claim.subscription_id).await {
        Ok(page) => {
            let done = just.and_then(|just| done_message(&just, Language::of(&page.locale)));
            web.subscription_page(StatusCode::OK, &token, Some(&page), done.as_deref())
        }
        Err(error) => web.failed(error, &token, None),
    }
}

/// `GET /c/TOKEN`: all of a customer's subscriptions, each with its next renewal and the links
/// of its own page's actions (signed to expire with the customer link: it grants no more).
/// A customer link opens no subscription page and a subscription's link opens no customer
/// page (their MACs have different purposes); an expired one asks for an address, as `/s` does.
pub async fn customer(State(web): State<Arc<Web>>, Path(token): Path<String>) -> Response {
    let now = web.app.now();
    let claim = match web.links.signer().verify_customer(&token, now) {
        Ok(claim) => claim,
        Err(CustomerRefusal::Invalid) => return web.refused(LinkRefusal::Invalid, &token),
        Err(CustomerRefusal::Expired) => {
            return web.visitor_message(
                StatusCode::GONE,
                ("This link has expired", "Dieser Link ist abgelaufen"),
                (
                    "Links in our emails work for a limited time. Enter your email address and we will send you new ones.",
                    "Links in unseren E-Mails gelten nur eine Zeit lang. Geben Sie Ihre E-Mail-Adresse ein, und wir schicken Ihnen neue.",
                ),
                context! { ask_address => true },
            );
        }
    };
    if let Err(wait) = web
        .per_link
        .check(&format!("customer:{}", claim.customer_id), Instant::now())
    {
        return too_many_requests(wait);
    }
    let overview = match self_service::customer_overview(&web.app, claim.customer_id).await {
        Ok(overview) => overview,
        Err(error) => return web.failed(error, &token, None),
    };
    let subscriptions: Vec<Value> = overview
        .subscriptions
        .iter()
        .map(|page| {
            let token = web
                .links
                .signer()
                .sign(page.subscription.id, claim.expires_at);
            context! { page, token }
        })
        .collect();
    web.render_in(
        &overview.locale.clone(),
        StatusCode::OK,
        "customer.html",
        context! {
            customer_token => token,
            expires_at => claim.expires_at,
            time_zone => overview.time_zone.clone(),
            subscriptions,
            overview,
        },
    )
}

/// `GET /s/TOKEN/orders/NUMBER`: the printable receipt of one of the subscription's orders.
/// Another subscription's order gets the very page an unknown one does.
pub async fn receipt(
    State(web): State<Arc<Web>>,
    Path((token, number)): Path<(String, String)>,
) -> Response {
    let claim = match web.open(&token) {
        Ok(claim) => claim,
        Err(response) => return *response,
    };
    match self_service::receipt(&web.app, claim.subscription_id, &number).await {
        Ok(receipt) => web.render_in(
            &receipt.locale,
            StatusCode::OK,
            "receipt.html",
            context! { token, receipt },
        ),
        Err(AppError::NotFound(_)) => web.no_such_order(&token, claim.subscription_id).await,
        Err(error) => web.failed(error, &token, None),
    }
}

/// `GET /s/TOKEN/ACTION`: the action's form (for a change with choices, its preview).
pub async fn show_action(
    State(web): State<Arc<Web>>,
    Path((token, action)): Path<(String, String)>,
    Query(query): Query<Fields>,
) -> Response {
    match action.as_str() {
        "address" => return super::address::show(web, token, query).await,
        "coupon" => return super::coupon::show(web, token, query).await,
        _ => {}
    }
    let claim = match web.open_action(&token, &action) {
        Ok(claim) => claim,
        Err(response) => return *response,
    };
    let page = match self_service::page(&web.app, claim.subscription_id).await {
        Ok(page) => page,
        Err(error) => return web.failed(error, &token, None),
    };
    // A restart's form is on the subscription's page itself.
    if action == "restart" {
        return web.subscription_page(StatusCode::OK, &token, Some(&page), None);
    }
    let language = Language::of(&page.locale);
    if page.subscription.status == "cancelled" {
        return web.subscription_page(
            StatusCode::OK,
            &token,
            Some(&page),
            Some(in_language(
                language,
                "This subscription is cancelled: there is nothing more to change.",
                "Dieses Abo ist gekündigt: Es gibt nichts mehr zu ändern.",
            )),
        );
    }
    let mut preview = None;
    let mut problem = None;
    if action == "change" && !query.is_empty() {
        match change_input(&query, language) {
            Ok(input) => {
                match self_service::preview(
                    &web.app,
                    claim.subscription_id,
                    &CustomerAction::Change(input),
                )
                .await
                {
                    Ok(shown) => preview = Some(shown),
                    Err(error @ (AppError::InvalidInput { .. } | AppError::InvalidState(_))) => {
                        problem = Some(customer_reason(&error.to_string(), language))
                    }
                    Err(error) => return web.failed(error, &token, Some(&page)),
                }
            }
            Err(message) => problem = Some(message),
        }
    }
    web.action_page(
        StatusCode::OK,
        &token,
        &action,
        &page,
        &query,
        preview,
        problem,
    )
}

impl Web {
    #[allow(clippy::too_many_arguments)]
    fn action_page(
        &self,
        status: StatusCode,
        token: &str,
        action: &str,
        page: &CustomerPage,
        chosen: &Fields,
        preview: Option<CustomerPage>,
        problem: Option<String>,
    ) -> Response {
        // The intervals of the plan the form shows chosen (each once): a choice the other
        // plans would refuse is carried over to their nearest allowed one in the preview.
        let chosen_plan = chosen
            .get("plan")
            .map(String::as_str)
            .unwrap_or(page.subscription.plan.as_str());
        let intervals: Vec<Interval> = page
            .plans
            .iter()
            .find(|p| p.plan.as_str() == chosen_plan)
            .map(|p| p.allowed_intervals.clone())
            .unwrap_or_default();
        let offer = match self.cancel_offer {
            CancelOffer::Skip => "skip",
            CancelOffer::Pause => "pause",
            CancelOffer::None => "none",
        };
        self.render_in(
            &page.locale,
            status,
            "action.html",
            context! {
                token,
                action,
                heading => heading(action, Language::of(&page.locale)),
                page,
                preview,
                problem,
                chosen,
                intervals => intervals.iter().map(ToString::to_string).collect::<Vec<_>>(),
                offer,
                csrf => self.links.signer().form_token(token),
            },
        )
    }
}

/// `POST /s/TOKEN/ACTION`: does the action if the form is this link's and the subscription is
/// as the form showed it; then back to the page.
pub async fn do_action(
    State(web): State<Arc<Web>>,
    Path((token, action)): Path<(String, String)>,
    Form(fields): Form<Fields>,
) -> Response {
    match action.as_str() {
        "address" => return super::address::submit(web, token, fields).await,
        "coupon" => return super::coupon::submit(web, token, fields).await,
        _ => {}
    }
    if !ACTIONS.contains(&action.as_str()) {
        return web.not_found_page();
    }
    let claim = match web.open_form(&token, &fields).await {
        Ok(claim) => claim,
        Err(response) => return *response,
    };
    let seen = fields.get("seen").map(String::as_str).unwrap_or_default();
    let id = claim.subscription_id;
    let page = match self_service::page(&web.app, id).await {
        Ok(page) => page,
        Err(error) => return web.failed(error, &token, None),
    };
    let parsed = customer_action(&action, &fields, Language::of(&page.locale));
    let outcome = match &parsed {
        Ok(customer_action) => self_service::act(&web.app, id, seen, customer_action).await,
        Err(message) => Err(AppError::invalid(message.clone())),
    };
    match outcome {
        Ok(_) => Redirect::to(&format!("/s/{token}?done={action}")).into_response(),
        Err(AppError::InvalidInput { message, .. }) => {
            match self_service::page(&web.app, id).await {
                Ok(page) => web.action_page(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &token,
                    &action,
                    &page,
                    &fields,
                    None,
                    Some(customer_reason(&message, Language::of(&page.locale))),
                ),
                Err(error) => web.failed(error, &token, None),
            }
        }
        Err(error) => {
            let page = self_service::page(&web.app, id).await.ok();
            web.failed(error, &token, page.as_ref())
        }
    }
}

/// The action a posted form asks for, or what is wrong with it in the customer's words and
/// language.
fn customer_action(
    action: &str,
    fields: &Fields,
    language: Language,
) -> Result<CustomerAction, String> {
    let date = |name: &str| -> Result<NaiveDate, String> {
        let text = fields.get(name).map(|s| s.trim()).unwrap_or_default();
        NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| {
            in_language(
                language,
                "choose a date (year-month-day)",
                "wählen Sie ein Datum (Jahr-Monat-Tag)",
            )
            .to_owned()
        })
    };
    Ok(match action {
        "skip" => CustomerAction::Skip,
        "move" => CustomerAction::Move(date("date")?),
        "change" => CustomerAction::Change(change_input(fields, language)?),
        "pause" => match fields.get("renewals").map(String::as_str) {
            Some("until") | None => CustomerAction::PauseUntil(date("until")?),
            Some(n) => CustomerAction::PauseRenewals(n.parse().map_err(|_| {
                in_language(
                    language,
                    "choose how many deliveries to pause",
                    "wählen Sie, wie viele Lieferungen pausieren",
                )
                .to_owned()
            })?),
        },
        "resume" => CustomerAction::Resume,
        "cancel" => CustomerAction::Cancel {
            reason: fields.get("reason").cloned().unwrap_or_default(),
        },
        "restart" => CustomerAction::Restart,
        _ => CustomerAction::RenewNow,
    })
}

fn change_input(fields: &Fields, language: Language) -> Result<ChangeInput, String> {
    let problem = |english, german| in_language(language, english, german).to_owned();
    let plan = fields
        .get("plan")
        .map(|p| PlanId::parse(p.trim()))
        .transpose()
        .map_err(|_| problem("choose one of the plans", "wählen Sie einen der Pläne"))?;
    let quantity = fields
        .get("quantity")
        .map(|q| q.trim().parse::<u32>())
        .transpose()
        .map_err(|_| {
            problem(
                "the quantity is a whole number, like 2",
                "die Menge ist eine ganze Zahl, etwa 2",
            )
        })?;
    let interval = fields
        .get("interval")
        .map(|i| i.trim().parse::<Interval>())
        .transpose()
        .map_err(|_| problem("choose how often", "wählen Sie, wie oft"))?;
    Ok(ChangeInput {
        plan,
        quantity,
        interval,
        ship_to: None,
    })
}

/// `GET /s`: ask for a link by email address.
pub async fn request_form(State(web): State<Arc<Web>>) -> Response {
    web.visitor_message(
        StatusCode::OK,
        MANAGE,
        (
            "We email you a link to your subscription's page: no account or password needed.",
            "Wir schicken Ihnen einen Link zur Seite Ihres Abos: ohne Konto und ohne Passwort.",
        ),
        context! { ask_address => true },
    )
}

const MANAGE: (&str, &str) = ("Manage your subscription", "Ihr Abo verwalten");

/// The answer to every request for a fresh link, whether or not anything was sent.
const SENT: (&str, &str) = (
    "If that address belongs to a subscription with us, we have emailed a link to it. It can take a few minutes to arrive; the link works for a limited time.",
    "Gehört diese Adresse zu einem Abo bei uns, haben wir einen Link an sie geschickt. Er kann einige Minuten brauchen und gilt nur eine Zeit lang.",
);
const CHECK_EMAIL: (&str, &str) = ("Check your email", "Sehen Sie in Ihre E-Mails");

/// `POST /s`: mails fresh links to a customer's address, answering the same whether the
/// address is known or not, and as fast (the lookup happens after the answer).
pub async fn request_links(State(web): State<Arc<Web>>, Form(fields): Form<Fields>) -> Response {
    let address = fields.get("email").map(|e| e.trim()).unwrap_or_default();
    let Ok(email) = address.parse::<Email>() else {
        return web.visitor_message(
            StatusCode::UNPROCESSABLE_ENTITY,
            MANAGE,
            (
                "That is not an email address; enter the address our emails come to, like name@example.com.",
                "Das ist keine E-Mail-Adresse; geben Sie die Adresse ein, an die unsere E-Mails gehen, etwa name@example.com.",
            ),
            context! { ask_address => true },
        );
    };
    let key = format!("address:{}", email.as_str().to_lowercase());
    if web.fresh_links.check(&key, Instant::now()).is_ok() {
        let web = web.clone();
        tokio::spawn(async move {
            if let Err(error) = self_service::send_fresh_links_to(&web.app, &email).await {
                tracing::warn!(%error, "could not queue fresh links for a requested address");
            }
        });
    }
    web.visitor_message(StatusCode::OK, CHECK_EMAIL, SENT, context! {})
}

/// `POST /s/TOKEN/fresh`: an expired (or still valid) genuine link asks for a fresh one,
/// mailed to the address on file.
pub async fn fresh_link(
    State(web): State<Arc<Web>>,
    Path(token): Path<String>,
    Form(fields): Form<Fields>,
) -> Response {
    let claim = match web.links.signer().verify(&token, web.app.now()) {
        Ok(claim) | Err(LinkRefusal::Expired(claim)) => claim,
        Err(refusal) => return web.refused(refusal, &token),
    };
    let csrf = fields.get("csrf").map(String::as_str).unwrap_or_default();
    if !web.links.signer().verify_form_token(&token, csrf) {
        return web.refused(LinkRefusal::Invalid, &token);
    }
    let key = format!("sub:{}", claim.subscription_id);
    if web.fresh_links.check(&key, Instant::now()).is_ok()
        && let Err(error) = self_service::send_fresh_link(&web.app, claim.subscription_id).await
    {
        return web.failed(error, &token, None);
    }
    web.visitor_message(StatusCode::OK, CHECK_EMAIL, SENT, context! {})
}
