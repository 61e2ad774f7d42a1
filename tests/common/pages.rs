//! The public listener (customer pages and the `/v1` API) served on a real socket over a test
//! database, at a fixed "now", with known link keys; and a plain HTTP client that does not
//! follow redirects.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use subsave::app::App;
use subsave::clock::FixedClock;
use subsave::config::{LinkKeySource, Settings};
use subsave::core::links::{LinkSigner, Links, parse_keys};
use subsave::core::secret::Secret;
use subsave::store::Store;
use tokio_util::sync::CancellationToken;

use super::{TestDb, settings_for};

pub const KEY_OLD: &str = "k1:old-key-old-key-old-key-old-key-0001";
pub const KEY_NEW: &str = "k2:new-key-new-key-new-key-new-key-0002";

/// Settings for the pages over `db`: the built-in defaults, its database, and `keys`.
pub fn settings(db: &TestDb, keys: &str) -> Settings {
    let mut settings = subsave::config::load(None).expect("the built-in config loads");
    settings.database = settings_for(&db.url, 4);
    settings.web.link_keys = LinkKeySource::Given(Secret::new(keys.to_owned()));
    settings.catalog = (*db.catalog).clone();
    settings
}

/// The links `settings`' keys sign, as an entry point builds them.
pub fn links(settings: &Settings) -> Links {
    subsave::link_keys::links(&settings.web).expect("the link keys load")
}

pub fn signer(keys: &str) -> LinkSigner {
    LinkSigner::new(parse_keys(keys).unwrap()).unwrap()
}

/// The pages, listening on a free port until dropped.
pub struct Pages {
    pub base: String,
    pub client: reqwest::Client,
    stop: CancellationToken,
}

impl Pages {
    pub async fn start(db: &TestDb, settings: Settings, now: DateTime<Utc>) -> Pages {
        Pages::start_on(db.store.clone(), settings, now).await
    }

    /// The pages over `store` (a pool through a proxy the test can cut, say).
    pub async fn start_on(store: Arc<dyn Store>, settings: Settings, now: DateTime<Utc>) -> Pages {
        let app = || {
            App::new(
                store.clone(),
                Arc::new(settings.clone()),
                Arc::new(FixedClock(now)),
            )
        };
        let web = subsave::web::Web::new(app(), links(&settings));
        let database = Arc::new(subsave::outage::Outage::new("database"));
        let api = subsave::api::Api::new(app(), database);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        tokio::spawn(subsave::daemon::serve_public(
            listener,
            web,
            api,
            settings.http.limits(),
            stop.clone(),
        ));
        Pages {
            base,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            stop,
        }
    }

    pub async fn get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, String) {
        self.get_as(path, None).await
    }

    pub async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> (u16, reqwest::header::HeaderMap, String) {
        self.post_as(path, form, None).await
    }

    /// A GET from a browser that sends `accept_language`.
    pub async fn get_as(
        &self,
        path: &str,
        accept_language: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let request = self.client.get(format!("{}{path}", self.base));
        answer(with_language(request, accept_language)).await
    }

    /// A form posted from a browser that sends `accept_language`.
    pub async fn post_as(
        &self,
        path: &str,
        form: &[(&str, &str)],
        accept_language: Option<&str>,
    ) -> (u16, reqwest::header::HeaderMap, String) {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        answer(with_language(request, accept_language)).await
    }
}

fn with_language(
    request: reqwest::RequestBuilder,
    accept_language: Option<&str>,
) -> reqwest::RequestBuilder {
    match accept_language {
        Some(language) => request.header("accept-language", language),
        None => request,
    }
}

async fn answer(request: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, String) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

impl Drop for Pages {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Percent-encodes a form value.
pub fn encode(text: &str) -> String {
    subsave::console::url_component(text)
}

/// The value of a form's hidden input `name` in a page.
pub fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in the page:\n{page}"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}
