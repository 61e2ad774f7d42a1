//! localstripe (PyPI), the stateful fake Stripe server, started per test on a free port, and
//! a small client for what the tests set up and check there: customers with saved cards,
//! webhook endpoints, 3-D Secure confirmation, and every charge it made.
//!
//! `.ci/run` installs it in `/var/tmp/subsave-venv` (or set `LOCALSTRIPE_PYTHON` to a Python
//! that has it). A test that needs it fails loudly when it is missing. localstripe writes its
//! whole store to `/tmp/localstripe.pickle` after every change (quadratic over a thousand
//! customers, and shared by every instance): the harness starts it with that write turned off
//! and `--from-scratch`, so each instance keeps its state in memory, alone.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

pub const SECRET_KEY: &str = "sk_test_subsave";

pub struct LocalStripe {
    pub base: String,
    client: reqwest::Client,
    child: std::process::Child,
}

fn python() -> String {
    std::env::var("LOCALSTRIPE_PYTHON")
        .unwrap_or_else(|_| "/var/tmp/subsave-venv/bin/python".to_owned())
}

impl LocalStripe {
    pub async fn start() -> LocalStripe {
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            probe.local_addr().unwrap().port()
        };
        let script = format!(
            "import sys, localstripe.resources as r; r.Store.dump_to_disk = lambda self: None; \
             from localstripe.server import start; \
             sys.argv = ['localstripe', '--port', '{port}', '--from-scratch']; start()"
        );
        let child = std::process::Command::new(python())
            .args(["-c", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "localstripe is required for this test and could not start with {}: {e}. \
                     Install it (bash .ci/run does: /var/tmp/subsave-venv) or set LOCALSTRIPE_PYTHON.",
                    python()
                )
            });
        let stripe = LocalStripe {
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            child,
        };
        for _ in 0..100 {
            if stripe
                .client
                .get(format!("{}/v1/customers", stripe.base))
                .basic_auth(SECRET_KEY, Some(""))
                .send()
                .await
                .is_ok()
            {
                return stripe;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "localstripe did not answer on {} within 10 s (is the localstripe package installed for {}?)",
            stripe.base,
            python()
        );
    }

    async fn call(&self, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> Value {
        let response = self
            .client
            .request(method, format!("{}{path}", self.base))
            .basic_auth(SECRET_KEY, Some(""))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        // Its `_config` endpoints answer with an empty body.
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert!(status.is_success(), "localstripe {path}: {status} {body}");
        body
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Value {
        self.call(reqwest::Method::POST, path, form).await
    }

    pub async fn get(&self, path: &str) -> Value {
        self.call(reqwest::Method::GET, path, &[]).await
    }

    /// A customer with the card `number` saved and attached: (`cus_…`, `pm_…`).
    pub async fn customer_with_card(&self, email: &str, number: &str) -> (String, String) {
        let customer = self.post("/v1/customers", &[("email", email)]).await;
        let method = self.card(number).await;
        let customer = customer["id"].as_str().unwrap().to_owned();
        self.post(
            &format!("/v1/payment_methods/{method}/attach"),
            &[("customer", &customer)],
        )
        .await;
        (customer, method)
    }

    /// A new card payment method, not attached yet.
    pub async fn card(&self, number: &str) -> String {
        let method = self
            .post(
                "/v1/payment_methods",
                &[
                    ("type", "card"),
                    ("card[number]", number),
                    ("card[exp_month]", "12"),
                    ("card[exp_year]", "2031"),
                    ("card[cvc]", "123"),
                ],
            )
            .await;
        method["id"].as_str().unwrap().to_owned()
    }

    /// Attaches a payment method to a customer.
    pub async fn attach(&self, method: &str, customer: &str) {
        self.post(
            &format!("/v1/payment_methods/{method}/attach"),
            &[("customer", customer)],
        )
        .await;
    }

    /// Sends the events localstripe makes to `url`, signed with `secret`.
    pub async fn send_webhooks_to(&self, url: &str, secret: &str) {
        self.post(
            "/_config/webhooks/subsave",
            &[("url", url), ("secret", secret)],
        )
        .await;
    }

    /// The customer confirms a PaymentIntent that needs 3-D Secure.
    pub async fn authenticate(&self, intent: &str) {
        let pi = self.get(&format!("/v1/payment_intents/{intent}")).await;
        let secret = pi["client_secret"].as_str().unwrap().to_owned();
        self.post(
            &format!("/v1/payment_intents/{intent}/_authenticate"),
            &[("client_secret", &secret), ("success", "true")],
        )
        .await;
    }

    /// Every charge localstripe made, succeeded or failed.
    pub async fn charges(&self) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(id) => format!("/v1/charges?limit=100&starting_after={id}"),
                None => "/v1/charges?limit=100".to_owned(),
            };
            let page = self.get(&path).await;
            let data = page["data"].as_array().unwrap().clone();
            after = data
                .last()
                .and_then(|c| c["id"].as_str())
                .map(str::to_owned);
            all.extend(data);
            if !page["has_more"].as_bool().unwrap_or(false) {
                return all;
            }
        }
    }

    /// The charges that succeeded.
    pub async fn succeeded_charges(&self) -> Vec<Value> {
        self.charges()
            .await
            .into_iter()
            .filter(|c| c["status"] == "succeeded")
            .collect()
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
