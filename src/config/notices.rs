//! `[notices]`: the terms customers agree to, and when a price rise is announced.

use serde::{Deserialize, Serialize};

use super::{ConfigError, Layers};

/// The notices customers get about their subscription's terms.
#[derive(Debug, Clone, Serialize)]
pub struct NoticeSettings {
    /// The version of the subscription terms customers agree to now, recorded with each
    /// consent (`subs create`).
    pub terms_version: String,
    /// How many days before a renewal its price is checked; a rise gets a notice then
    /// (7 to 30: the notice must arrive at least 7 and at most 30 days ahead).
    pub price_change_days: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotices {
    pub(super) terms_version: String,
    pub(super) price_change_days: u32,
}

/// `[notices]`, checked: a printable terms version, a notice period the law allows.
pub(super) fn parse(l: &Layers, raw: RawNotices) -> Result<NoticeSettings, ConfigError> {
    let terms_version = raw.terms_version.trim().to_owned();
    if terms_version.is_empty()
        || terms_version.len() > 64
        || terms_version.chars().any(char::is_control)
    {
        return Err(l.field(
            "notices.terms_version",
            &raw.terms_version,
            "expected 1-64 printable characters naming the terms customers agree to, like \"2026-12-01\"".into(),
        ));
    }
    let days = raw.price_change_days;
    if !(crate::core::notices::PRICE_NOTICE_MIN_DAYS..=crate::core::notices::PRICE_NOTICE_MAX_DAYS)
        .contains(&days)
    {
        return Err(l.field(
            "notices.price_change_days",
            &days.to_string(),
            format!(
                "must be {} to {}: a price-change notice arrives at least {} and at most {} days before the renewal",
                crate::core::notices::PRICE_NOTICE_MIN_DAYS,
                crate::core::notices::PRICE_NOTICE_MAX_DAYS,
                crate::core::notices::PRICE_NOTICE_MIN_DAYS,
                crate::core::notices::PRICE_NOTICE_MAX_DAYS
            ),
        ));
    }
    let notices = NoticeSettings {
        terms_version,
        price_change_days: days,
    };

    Ok(notices)
}
