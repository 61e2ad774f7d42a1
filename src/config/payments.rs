//! `[payments]`: who collects the money, the dunning rules, the payment worker's limits, and
//! Stripe's API, keys and Stripe.js.

use figment::value::magic::RelativePathBuf;
use serde::{Deserialize, Serialize};

use super::{ConfigError, Layers, Secret, secret_env};

/// Who collects the money, and what happens when a charge fails (`[payments]`).
#[derive(Debug, Clone, Serialize)]
pub struct PaymentSettings {
    /// `none`: the storefront collects (orders are `external`); `stripe`; `simulated` (demo).
    pub provider: crate::core::model::ProviderKind,
    /// Retries after a decline, in days after the order's first try.
    pub retry_days: Vec<u32>,
    pub on_final_failure: crate::core::dunning::FinalAction,
    pub hold_renewals_while_unpaid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_payment_url: Option<String>,
    /// Payments one worker claims at once, charged by `concurrency` tasks.
    pub batch_size: u32,
    pub concurrency: u32,
    /// How long a claimed payment is the worker's alone.
    pub lease_secs: u64,
    /// How often the worker looks for payments due.
    pub poll_secs: u64,
    /// How long the provider may take to answer one request.
    pub timeout_secs: u64,
    pub stripe: StripeSettings,
}

impl PaymentSettings {
    /// The dunning rules, as the pure core takes them.
    pub fn policy(&self) -> crate::core::dunning::DunningPolicy {
        crate::core::dunning::DunningPolicy {
            retry_days: self.retry_days.clone(),
            final_action: self.on_final_failure,
            hold_renewals: self.hold_renewals_while_unpaid,
            update_payment_url: self.update_payment_url.clone(),
        }
    }
}

/// Stripe's API and the secrets that talk to it.
#[derive(Debug, Clone, Serialize)]
pub struct StripeSettings {
    /// `https://api.stripe.com`, or a stand-in such as localstripe.
    pub api_base: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key: Option<Secret>,
    /// Signing secrets of the webhook endpoint (`whsec_…`), comma-separated: several during a
    /// rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook_secrets: Option<Secret>,
    /// The publishable key (`pk_…`) Stripe.js uses on the customer's card page; unset, that
    /// page cannot take a card.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publishable_key: Option<String>,
    /// Where the card page loads Stripe.js from (`https://js.stripe.com/v3/`, or a
    /// stand-in's); its origin is the only one the page's CSP lets in.
    pub js_url: String,
}

impl StripeSettings {
    /// Each webhook signing secret.
    pub fn webhook_secret_list(&self) -> Vec<&str> {
        self.webhook_secrets
            .as_ref()
            .map(|s| {
                s.expose()
                    .split([',', '\n'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPayments {
    pub(super) provider: String,
    pub(super) retry_days: Vec<u32>,
    pub(super) on_final_failure: crate::core::dunning::FinalAction,
    pub(super) hold_renewals_while_unpaid: bool,
    pub(super) update_payment_url: Option<String>,
    pub(super) batch_size: u32,
    pub(super) concurrency: u32,
    pub(super) lease_secs: u32,
    pub(super) poll_secs: u32,
    pub(super) timeout_secs: u32,
    pub(super) stripe: RawStripe,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStripe {
    pub(super) api_base: String,
    #[serde(default, deserialize_with = "super::secret_text")]
    pub(super) secret_key: Option<String>,
    pub(super) secret_key_file: Option<RelativePathBuf>,
    #[serde(default, deserialize_with = "super::secret_text")]
    pub(super) webhook_secrets: Option<String>,
    pub(super) webhook_secrets_file: Option<RelativePathBuf>,
    publishable_key: Option<String>,
    pub(super) js_url: String,
}

/// `[payments]`, checked: a provider, retry days, a lease a claimed batch fits in, Stripe's
/// keys of the right kinds (and the secret key when Stripe charges).
pub(super) fn parse(l: &Layers, raw: RawPayments) -> Result<PaymentSettings, ConfigError> {
    let provider = raw
        .provider
        .parse()
        .map_err(|e| l.field("payments.provider", &raw.provider, e))?;
    check_retry_days(l, &raw.retry_days)?;
    let update_payment_url = l.http_url(
        "payments.update_payment_url",
        raw.update_payment_url,
        "the storefront's payment-method page",
    )?;
    let batch_size = l.positive("payments.batch_size", raw.batch_size)?;
    let concurrency = l.positive("payments.concurrency", raw.concurrency)?;
    let lease_secs = u64::from(l.positive("payments.lease_secs", raw.lease_secs)?);
    let timeout_secs = u64::from(l.positive("payments.timeout_secs", raw.timeout_secs)?);
    // A charge starts only if it can end before its lease does: a whole batch must fit.
    let batch_time = u64::from(batch_size).div_ceil(u64::from(concurrency)) * timeout_secs * 2;
    if batch_time >= lease_secs {
        return Err(l.field(
            "payments.lease_secs",
            &lease_secs.to_string(),
            format!(
                "must exceed batch_size / concurrency x timeout_secs x 2 ({batch_time} s: a charge and its lookup), so a claimed batch ends before its lease; raise lease_secs or concurrency, or lower batch_size"
            ),
        ));
    }
    let stripe = parse_stripe(l, raw.stripe)?;
    if provider == crate::core::model::ProviderKind::Stripe && stripe.secret_key.is_none() {
        return Err(l.field(
            "payments.stripe.secret_key",
            "",
            "the stripe provider needs its secret key: set SUBSAVE_PAYMENTS__STRIPE__SECRET_KEY or payments.stripe.secret_key_file".into(),
        ));
    }
    Ok(PaymentSettings {
        provider,
        retry_days: raw.retry_days,
        on_final_failure: raw.on_final_failure,
        hold_renewals_while_unpaid: raw.hold_renewals_while_unpaid,
        update_payment_url,
        batch_size,
        concurrency,
        lease_secs,
        poll_secs: u64::from(l.positive("payments.poll_secs", raw.poll_secs)?),
        timeout_secs,
        stripe,
    })
}

/// `payments.retry_days`: at most 10, increasing, each from 1 to 60.
fn check_retry_days(l: &Layers, days: &[u32]) -> Result<(), ConfigError> {
    if days.len() > 10
        || days.iter().any(|d| !(1..=60).contains(d))
        || days.windows(2).any(|w| w[0] >= w[1])
    {
        return Err(l.field(
            "payments.retry_days",
            &format!("{days:?}"),
            "expected at most 10 increasing days from 1 to 60, like [1, 3, 5, 7] ([] retries nothing)".into(),
        ));
    }
    Ok(())
}

/// `[payments.stripe]`: its secrets, an http(s) API base and Stripe.js URL, and keys of the
/// right kinds (a secret key that is no publishable one, a publishable key that is one).
fn parse_stripe(l: &Layers, s: RawStripe) -> Result<StripeSettings, ConfigError> {
    let secret_key = l.secret(
        "payments.stripe.secret_key",
        secret_env("payments.stripe.secret_key").or(s.secret_key),
        s.secret_key_file.map(|p| p.relative()),
    )?;
    let webhook_secrets = l
        .secret(
            "payments.stripe.webhook_secrets",
            secret_env("payments.stripe.webhook_secrets").or(s.webhook_secrets),
            s.webhook_secrets_file.map(|p| p.relative()),
        )?
        .filter(|s| !s.expose().trim().is_empty());
    let api_base = s.api_base.trim_end_matches('/').to_owned();
    if !(api_base.starts_with("https://") || api_base.starts_with("http://")) {
        return Err(l.field(
            "payments.stripe.api_base",
            &api_base,
            "expected an http(s):// URL, like \"https://api.stripe.com\"".into(),
        ));
    }
    if secret_key
        .as_ref()
        .is_some_and(|k| k.expose().starts_with("pk_"))
    {
        return Err(l.field(
            "payments.stripe.secret_key",
            "[redacted]",
            "is a publishable key (pk_…), which cannot charge: give the secret key (sk_…) or a restricted key (rk_…) from Stripe's dashboard".into(),
        ));
    }
    let publishable_key = s.publishable_key.filter(|k| !k.trim().is_empty());
    if let Some(key) = &publishable_key
        && !(key.starts_with("pk_")
            && key[3..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        // Not quoted back: what is there by mistake may be the secret key.
        return Err(l.field(
            "payments.stripe.publishable_key",
            "[redacted]",
            "expected the publishable key (pk_live_… or pk_test_…) from Stripe's dashboard; it is public, unlike the secret key".into(),
        ));
    }
    let js_url = match reqwest::Url::parse(&s.js_url) {
        Ok(url) if matches!(url.scheme(), "https" | "http") && url.host().is_some() => s.js_url,
        _ => {
            return Err(l.field(
                "payments.stripe.js_url",
                &s.js_url,
                "expected the http(s):// URL of Stripe.js, like \"https://js.stripe.com/v3/\""
                    .into(),
            ));
        }
    };
    Ok(StripeSettings {
        api_base,
        secret_key,
        webhook_secrets,
        publishable_key,
        js_url,
    })
}
