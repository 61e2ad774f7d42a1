//! Stripe over its HTTP API: off-session PaymentIntents, the lookup of an attempt sent
//! before a crash, refunds, and the `Stripe-Signature` of its webhooks.
//!
//! Owns the mapping of Stripe's answers to [`ChargeOutcome`]s and [`ProviderError`]s: 2xx
//! with the PaymentIntent's status; 402 a decline (`authentication_required` off-session
//! means the customer must authenticate); 429, 5xx, 401/403 and network failures are
//! transient (the same attempt and key later); other 4xx refuse the request. Never logs the
//! secret key or a signature.

use std::time::Duration;

use chrono::{DateTime, Utc};

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::{ChargeRequest, ProviderError, RefundRequest};
use crate::core::dunning::ChargeOutcome;
use crate::core::secret::Secret;

/// How far a webhook's timestamp may be from now.
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    base: String,
    key: Secret,
}

impl StripeClient {
    pub fn new(base: &str, key: Secret, timeout: Duration) -> Result<StripeClient, String> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| format!("cannot build the Stripe client: {e}"))?;
        Ok(StripeClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key: key.clone(),
        })
    }

    pub async fn charge(
        &self,
        request: &ChargeRequest<'_>,
    ) -> Result<ChargeOutcome, ProviderError> {
        let amount = request.amount.minor().to_string();
        let currency = request.amount.currency().code().to_lowercase();
        let form = [
            ("amount", amount.as_str()),
            ("currency", currency.as_str()),
            ("customer", request.customer_ref),
            ("payment_method", request.method_ref),
            ("confirm", "true"),
            ("off_session", "true"),
            ("metadata[subsave_order]", request.order_number),
            ("metadata[subsave_key]", request.idempotency_key),
            ("expand[]", "latest_charge.balance_transaction"),
        ];
        let (status, body) = self
            .send(
                self.http
                    .post(format!("{}/v1/payment_intents", self.base))
                    .header("Idempotency-Key", request.idempotency_key)
                    .form(&form),
            )
            .await?;
        match status {
            200..=299 => intent_outcome(&body),
            402 => Ok(decline(&body)),
            _ => Err(refused(status, &body)),
        }
    }

    /// Finds the PaymentIntent an earlier attempt made, by the key in its metadata, among the
    /// customer's charges of the same amount (newest first, at most 500). Stripe replays an
    /// Idempotency-Key for 24 hours, but not every server that speaks its API does, and a
    /// lookup costs nothing when nothing crashed. No date filter: the worker's clock may be a
    /// simulated one (`--now`), and the provider's is not.
    pub async fn find_attempt(
        &self,
        request: &ChargeRequest<'_>,
    ) -> Result<Option<ChargeOutcome>, ProviderError> {
        let mut after: Option<String> = None;
        for _ in 0..5 {
            let mut query = vec![("customer", request.customer_ref), ("limit", "100")];
            if let Some(id) = &after {
                query.push(("starting_after", id));
            }
            let (status, body) = self
                .send(
                    self.http
                        .get(format!("{}/v1/charges", self.base))
                        .query(&query),
                )
                .await?;
            if !(200..=299).contains(&status) {
                return Err(refused(status, &body));
            }
            let charges = body["data"].as_array().cloned().unwrap_or_default();
            for charge in &charges {
                let Some(intent) = charge["payment_intent"].as_str() else {
                    continue;
                };
                if charge["amount"].as_i64() != Some(request.amount.minor()) {
                    continue;
                }
                let (status, body) = self
                    .send(
                        self.http
                            .get(format!("{}/v1/payment_intents/{intent}", self.base))
                            .query(&[("expand[]", "latest_charge.balance_transaction")]),
                    )
                    .await?;
                if !(200..=299).contains(&status) {
                    return Err(refused(status, &body));
                }
                if body["metadata"]["subsave_key"].as_str() == Some(request.idempotency_key) {
                    return intent_outcome(&body).map(Some);
                }
            }
            if !body["has_more"].as_bool().unwrap_or(false) {
                break;
            }
            after = charges
                .last()
                .and_then(|c| c["id"].as_str())
                .map(str::to_owned);
        }
        Ok(None)
    }

    pub async fn refund(&self, request: &RefundRequest<'_>) -> Result<String, ProviderError> {
        let amount = request.amount.minor().to_string();
        let (status, body) = self
            .send(
                self.http
                    .post(format!("{}/v1/refunds", self.base))
                    .header("Idempotency-Key", request.idempotency_key)
                    .form(&[
                        ("payment_intent", request.payment_ref),
                        ("amount", amount.as_str()),
                    ]),
            )
            .await?;
        if !(200..=299).contains(&status) {
            return Err(refused(status, &body));
        }
        body["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ProviderError::Transient("Stripe's refund has no id".into()))
    }

    /// Creates the Stripe customer of our customer `customer_id` (`metadata[subsave_customer]`
    /// names it); the same `idempotency_key` gives back the same customer. Returns it.
    pub async fn create_customer(
        &self,
        customer_id: i64,
        email: &str,
        name: &str,
        idempotency_key: &str,
    ) -> Result<Value, ProviderError> {
        let customer_id = customer_id.to_string();
        self.object(
            self.http
                .post(format!("{}/v1/customers", self.base))
                .header("Idempotency-Key", idempotency_key)
                .form(&[
                    ("email", email),
                    ("name", name),
                    ("metadata[subsave_customer]", customer_id.as_str()),
                ]),
        )
        .await
    }

    /// Creates a SetupIntent that saves a card for off-session charges to `customer_ref`
    /// (`metadata[subsave_customer]` names our customer); the same `idempotency_key` gives
    /// back the same SetupIntent. Returns the SetupIntent.
    pub async fn create_setup_intent(
        &self,
        customer_ref: &str,
        customer_id: i64,
        idempotency_key: &str,
    ) -> Result<Value, ProviderError> {
        let customer_id = customer_id.to_string();
        self.object(
            self.http
                .post(format!("{}/v1/setup_intents", self.base))
                .header("Idempotency-Key", idempotency_key)
                .form(&[
                    ("customer", customer_ref),
                    ("usage", "off_session"),
                    // The page's card element confirms it: cards only.
                    ("payment_method_types[]", "card"),
                    ("metadata[subsave_customer]", customer_id.as_str()),
                ]),
        )
        .await
    }

    /// Reads one object of Stripe's API by its path (`setup_intents/seti_…`,
    /// `payment_intents/pi_…`, `payment_methods/pm_…`): what it says now, never what a
    /// browser claims. An id that is not Stripe's shape is refused before any request.
    pub async fn read(&self, kind: &str, id: &str) -> Result<Value, ProviderError> {
        if id.is_empty()
            || id.len() > 255
            || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(ProviderError::Refused(format!(
                "\"{id}\" is not a Stripe id (letters, digits and _)"
            )));
        }
        self.object(self.http.get(format!("{}/v1/{kind}/{id}", self.base)))
            .await
    }

    /// Attaches a payment method to a customer (what a SetupIntent with a customer does by
    /// itself at Stripe; a stand-in may leave it to us).
    pub async fn attach(
        &self,
        method_ref: &str,
        customer_ref: &str,
    ) -> Result<Value, ProviderError> {
        self.object(
            self.http
                .post(format!(
                    "{}/v1/payment_methods/{method_ref}/attach",
                    self.base
                ))
                .form(&[("customer", customer_ref)]),
        )
        .await
    }

    /// A request whose 2xx answer is the object; any other answer refused.
    async fn object(&self, builder: reqwest::RequestBuilder) -> Result<Value, ProviderError> {
        let (status, body) = self.send(builder).await?;
        if (200..=299).contains(&status) {
            Ok(body)
        } else {
            Err(refused(status, &body))
        }
    }

    /// Sends with the secret key; a status and a JSON body, or a transient failure.
    async fn send(&self, builder: reqwest::RequestBuilder) -> Result<(u16, Value), ProviderError> {
        let response = builder
            .basic_auth(self.key.expose(), Some(""))
            .header("Stripe-Version", "2024-06-20")
            .send()
            .await
            .map_err(|e| ProviderError::Transient(format!("Stripe unreachable: {e}")))?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.map_err(|e| {
            ProviderError::Transient(format!("Stripe's answer ({status}) is not JSON: {e}"))
        })?;
        match status {
            401 | 403 => Err(ProviderError::Transient(format!(
                "Stripe refused the secret key ({status}): check payments.stripe.secret_key"
            ))),
            429 | 500..=599 => Err(ProviderError::Transient(format!(
                "Stripe answered {status}: {}",
                error_message(&body)
            ))),
            _ => Ok((status, body)),
        }
    }
}

/// A PaymentIntent's status as an outcome: an API answer's, or a webhook event's object.
pub fn intent_outcome(intent: &Value) -> Result<ChargeOutcome, ProviderError> {
    let id = intent["id"].as_str().unwrap_or_default().to_owned();
    match intent["status"].as_str().unwrap_or_default() {
        "succeeded" => Ok(ChargeOutcome::Succeeded {
            payment_ref: id,
            fee_minor: intent["latest_charge"]["balance_transaction"]["fee"].as_i64(),
        }),
        "requires_action" | "requires_confirmation" => {
            Ok(ChargeOutcome::RequiresAction { payment_ref: id })
        }
        "requires_payment_method" => Ok(declined(Some(id), &intent["last_payment_error"])),
        other => Err(ProviderError::Transient(format!(
            "payment {id} is {other}; asking again later"
        ))),
    }
}

/// A 402's decline, or (off-session) the customer's authentication needed.
fn decline(body: &Value) -> ChargeOutcome {
    let error = &body["error"];
    let payment_ref = error["payment_intent"]["id"].as_str().map(str::to_owned);
    match payment_ref {
        Some(payment_ref)
            if error["code"] == "authentication_required"
                || error["decline_code"] == "authentication_required" =>
        {
            ChargeOutcome::RequiresAction { payment_ref }
        }
        payment_ref => declined(payment_ref, error),
    }
}

/// A decline as Stripe's error object (`error`, or a PaymentIntent's `last_payment_error`)
/// describes it: the bank's decline code when given, else Stripe's code.
fn declined(payment_ref: Option<String>, error: &Value) -> ChargeOutcome {
    ChargeOutcome::Declined {
        payment_ref,
        code: error["decline_code"]
            .as_str()
            .or(error["code"].as_str())
            .unwrap_or("card_declined")
            .to_owned(),
        message: error["message"]
            .as_str()
            .unwrap_or("The payment was declined.")
            .to_owned(),
    }
}

fn refused(status: u16, body: &Value) -> ProviderError {
    ProviderError::Refused(format!(
        "Stripe refused the request ({status}): {}",
        error_message(body)
    ))
}

fn error_message(body: &Value) -> String {
    body["error"]["message"]
        .as_str()
        .unwrap_or("no message")
        .to_owned()
}

/// Why a webhook's signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing or malformed")]
    Malformed,
    #[error("the signature's timestamp is more than 5 minutes from now")]
    Stale,
    #[error("no signature matches a configured webhook secret")]
    Mismatch,
}

/// Checks `Stripe-Signature` (`t=…,v1=…[,v1=…]`) over the raw body: HMAC-SHA256 of
/// `"{t}.{body}"` with any of `secrets`, compared in constant time, the timestamp within
/// [`SIGNATURE_TOLERANCE_SECS`] of `now`.
pub fn verify_signature(
    header: &str,
    body: &[u8],
    secrets: &[&str],
    now: DateTime<Utc>,
) -> Result<(), SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", hex)) => signatures.push(decode_hex(hex).ok_or(SignatureError::Malformed)?),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now.timestamp() - timestamp).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    for secret in secrets {
        for signature in &signatures {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
                .expect("HMAC takes a key of any length");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            if mac.verify_slice(signature).is_ok() {
                return Ok(());
            }
        }
    }
    Err(SignatureError::Mismatch)
}

/// The `Stripe-Signature` header for `body` at `timestamp` with `secret` (for tests and the
/// scripted peers that stand in for Stripe).
pub fn sign(body: &[u8], secret: &str, timestamp: i64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={timestamp},v1={hex}")
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::at;

    #[test]
    fn signatures_verify_with_any_secret_within_five_minutes() {
        let now = at("2027-01-10T09:00:00Z");
        let body = br#"{"id":"evt_1"}"#;
        let header = sign(body, "whsec_new", now.timestamp());
        assert_eq!(
            verify_signature(&header, body, &["whsec_old", "whsec_new"], now),
            Ok(())
        );
        // Several v1 signatures (Stripe during a rotation): one match is enough.
        let both = format!("{header},v1={}", "00".repeat(32));
        assert_eq!(verify_signature(&both, body, &["whsec_new"], now), Ok(()));
        assert_eq!(
            verify_signature(&header, b"{\"id\":\"evt_2\"}", &["whsec_new"], now),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(&header, body, &["whsec_other"], now),
            Err(SignatureError::Mismatch)
        );
        let later = now + chrono::TimeDelta::seconds(301);
        assert_eq!(
            verify_signature(&header, body, &["whsec_new"], later),
            Err(SignatureError::Stale)
        );
        for bad in ["", "t=1", "v1=00", "t=x,v1=00", "t=1,v1=0g"] {
            assert_eq!(
                verify_signature(bad, body, &["whsec_new"], now),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }

    #[test]
    fn answers_map_to_outcomes() {
        let paid = serde_json::json!({"id": "pi_1", "status": "succeeded",
            "latest_charge": {"balance_transaction": {"fee": 175}}});
        assert_eq!(
            intent_outcome(&paid),
            Ok(ChargeOutcome::Succeeded {
                payment_ref: "pi_1".into(),
                fee_minor: Some(175)
            })
        );
        let action = serde_json::json!({"id": "pi_2", "status": "requires_action"});
        assert_eq!(
            intent_outcome(&action),
            Ok(ChargeOutcome::RequiresAction {
                payment_ref: "pi_2".into()
            })
        );
        let declined = serde_json::json!({"error": {"code": "card_declined",
            "decline_code": "insufficient_funds", "message": "Your card has insufficient funds.",
            "payment_intent": {"id": "pi_3"}}});
        assert_eq!(
            decline(&declined),
            ChargeOutcome::Declined {
                payment_ref: Some("pi_3".into()),
                code: "insufficient_funds".into(),
                message: "Your card has insufficient funds.".into()
            }
        );
        let auth = serde_json::json!({"error": {"code": "authentication_required",
            "payment_intent": {"id": "pi_4"}}});
        assert_eq!(
            decline(&auth),
            ChargeOutcome::RequiresAction {
                payment_ref: "pi_4".into()
            }
        );
    }
}
