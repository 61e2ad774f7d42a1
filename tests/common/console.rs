//! The console served on a real socket over a test database at a fixed "now", and a client
//! that keeps the console's cookies by hand (so a test sees every `Set-Cookie`) and follows no
//! redirects.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use subsave::app::App;
use subsave::clock::FixedClock;
use subsave::config::Settings;
use subsave::core::model::Scope;
use tokio_util::sync::CancellationToken;

use super::TestDb;
use super::pages::{encode, hidden};

/// The console, listening on a free port until dropped.
pub struct Console {
    pub base: String,
    pub app: App,
    client: reqwest::Client,
    stop: CancellationToken,
}

/// A response: status, headers, body.
pub type Answer = (u16, HeaderMap, String);

impl Console {
    pub async fn start(db: &TestDb, settings: Settings, now: DateTime<Utc>) -> Console {
        Console::start_on(db.store.clone(), settings, now).await
    }

    /// The console over `store` (a database the test did not make, say the demo's).
    pub async fn start_on(
        store: Arc<dyn subsave::store::Store>,
        settings: Settings,
        now: DateTime<Utc>,
    ) -> Console {
        let app = || {
            App::new(
                store.clone(),
                Arc::new(settings.clone()),
                Arc::new(FixedClock(now)),
            )
        };
        let console = Arc::new(
            subsave::console::Console::new(app(), super::pages::links(&settings))
                .expect("the console starts"),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        tokio::spawn(subsave::daemon::overview_refresher(
            console.clone(),
            stop.clone(),
        ));
        tokio::spawn(subsave::daemon::serve_console(
            listener,
            console,
            settings.http.limits(),
            stop.clone(),
        ));
        Console {
            base,
            app: app(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            stop,
        }
    }

    /// A new key of `scope` named `name`.
    pub async fn key(&self, name: &str, scope: Scope) -> String {
        subsave::app::api_keys::create(&self.app, name, scope)
            .await
            .unwrap()
            .key
    }

    /// GET with `cookies` (a `Cookie` header's value) and extra headers.
    pub async fn get(&self, path: &str, cookies: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if !cookies.is_empty() {
            request = request.header("cookie", cookies);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer(request.send().await.unwrap()).await
    }

    /// POST a form with `cookies` and extra headers.
    pub async fn post(
        &self,
        path: &str,
        cookies: &str,
        headers: &[(&str, &str)],
        form: &[(&str, &str)],
    ) -> Answer {
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        if !cookies.is_empty() {
            request = request.header("cookie", cookies);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer(request.send().await.unwrap()).await
    }

    /// Signs in with `key` through the form; returns the answer to the form's POST and the
    /// session cookie (`name=value`) it set, if any.
    pub async fn sign_in(&self, key: &str) -> (Answer, Option<String>) {
        let (status, headers, form) = self.get("/sign-in", "", &[]).await;
        assert_eq!(status, 200, "{form}");
        let pre = cookie_pair(&headers, "subsave_console_sign_in").expect("a sign-in cookie");
        let csrf = hidden(&form, "csrf");
        let answer = self
            .post("/sign-in", &pre, &[], &[("csrf", &csrf), ("key", key)])
            .await;
        let session = cookie_pair(&answer.1, "subsave_console");
        (answer, session)
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn answer(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

/// The whole `Set-Cookie` line that sets `name`.
pub fn set_cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// `name=value` of the cookie `name` set, when it has a value.
pub fn cookie_pair(headers: &HeaderMap, name: &str) -> Option<String> {
    set_cookie(headers, name)
        .and_then(|line| line.split(';').next())
        .filter(|pair| !pair.ends_with('='))
        .map(str::to_owned)
}
