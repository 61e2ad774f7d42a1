//! "Apply a coupon code": the form (`GET /s/TOKEN/coupon`; with `?code=` it shows the next
//! renewal's price with the coupon, changing nothing) and its confirmation (`POST`, with the
//! CSRF token, the state the form showed and the total it showed). The code's rules are the
//! operator's coupons' (`app::subscriptions::redeem_coupon`); a code that cannot be used says
//! only that, so a page reveals no more of which codes exist.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::context;

use super::Web;
use crate::app::AppError;
use crate::app::self_service::{self, COUPON_REFUSED, CouponPreview, CustomerPage};
use crate::core::locale::Language;

type Fields = HashMap<String, String>;

/// A refusal of the coupon form in the customer's language: the use case's words for what is
/// about the subscription or the code, `None` for any other error (the caller's page).
fn refusal(error: &AppError, language: Language) -> Option<&'static str> {
    let AppError::InvalidState(message) = error else {
        return None;
    };
    let german = language == Language::German;
    Some(match message.as_str() {
        COUPON_REFUSED if german => "Dieser Code kann hier oder jetzt nicht verwendet werden.",
        COUPON_REFUSED => "This code cannot be used here or now.",
        m if m.contains("already has a coupon") && german => {
            "Dieses Abo hat schon einen Gutschein; es nimmt höchstens einen."
        }
        m if m.contains("already has a coupon") => {
            "This subscription already has a coupon, and it takes one at most."
        }
        _ if german => "Dieses Abo ist gekündigt: Ein Gutschein ändert daran nichts.",
        _ => "This subscription is cancelled: a coupon changes nothing.",
    })
}

impl Web {
    fn coupon_page(
        &self,
        status: StatusCode,
        token: &str,
        page: &CustomerPage,
        preview: Option<CouponPreview>,
        problem: Option<&str>,
        entered: &str,
    ) -> Response {
        self.render_in(
            &page.locale,
            status,
            "coupon.html",
            context! {
                token,
                page,
                preview,
                problem,
                entered,
                csrf => self.links.signer().form_token(token),
            },
        )
    }
}

/// `GET /s/TOKEN/coupon[?code=CODE]`: the form, and with a code the price it would give.
pub async fn show(web: Arc<Web>, token: String, query: Fields) -> Response {
    let claim = match web.open(&token) {
        Ok(claim) => claim,
        Err(response) => return *response,
    };
    let id = claim.subscription_id;
    let page = match self_service::page(&web.app, id).await {
        Ok(page) => page,
        Err(error) => return web.failed(error, &token, None),
    };
    let language = Language::of(&page.locale);
    let entered = query.get("code").map(|c| c.trim()).unwrap_or_default();
    if entered.is_empty() {
        return web.coupon_page(StatusCode::OK, &token, &page, None, None, "");
    }
    match self_service::coupon_preview(&web.app, id, entered).await {
        Ok(preview) => web.coupon_page(StatusCode::OK, &token, &page, Some(preview), None, entered),
        Err(error) => match refusal(&error, language) {
            Some(problem) => {
                web.coupon_page(StatusCode::OK, &token, &page, None, Some(problem), entered)
            }
            None => web.failed(error, &token, Some(&page)),
        },
    }
}

/// `POST /s/TOKEN/coupon`: redeems the code if the form is this link's, the subscription is
/// as the form showed it and the code still gives the price shown; then back to the page.
pub async fn submit(web: Arc<Web>, token: String, fields: Fields) -> Response {
    let claim = match web.open_form(&token, &fields).await {
        Ok(claim) => claim,
        Err(response) => return *response,
    };
    let id = claim.subscription_id;
    let field = |name: &str| fields.get(name).map(|v| v.trim()).unwrap_or_default();
    let outcome =
        self_service::redeem_coupon(&web.app, id, field("seen"), field("code"), field("total"))
            .await;
    let page = match self_service::page(&web.app, id).await {
        Ok(page) => page,
        Err(error) => return web.failed(error, &token, None),
    };
    match outcome {
        Ok(_) => Redirect::to(&format!("/s/{token}?done=coupon")).into_response(),
        Err(error) => match refusal(&error, Language::of(&page.locale)) {
            Some(problem) => web.coupon_page(
                StatusCode::CONFLICT,
                &token,
                &page,
                None,
                Some(problem),
                field("code"),
            ),
            None => web.failed(error, &token, Some(&page)),
        },
    }
}
