//! A real browser for tests: Debian's Chromium, headless, driven through chromedriver's W3C
//! WebDriver HTTP API (a few JSON calls; no driver crate needed). The phone-sized viewport is
//! Chromium's device emulation. Fails loudly when chromium or chromedriver is missing:
//! `.ci/run` installs them (`apt-get install chromium chromium-driver`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use mail_parser::MessageParser;
use serde_json::{Value, json};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    /// Page loads and clicks so far: what a customer does.
    pub interactions: u32,
}

impl Browser {
    /// A headless Chromium with a `width` × `height` CSS-pixel viewport.
    pub async fn start(width: u32, height: u32) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("chromedriver is required for the browser test and could not start: {e}. Install chromium and chromium-driver (bash .ci/run does).")
            });
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut browser = Browser {
            driver,
            base,
            session: String::new(),
            http,
            interactions: 0,
        };
        let created = browser
            .call(
                "POST",
                "/session",
                json!({ "capabilities": { "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": "/usr/bin/chromium",
                        "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
                        "mobileEmulation": { "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2.0 } }
                    }
                }}}),
            )
            .await;
        browser.session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("chromedriver did not start Chromium: {created}"))
            .to_owned();
        browser
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let reply: Value = request
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .expect("chromedriver answers JSON");
        if reply["value"]["error"].is_string() {
            panic!("WebDriver {method} {path}: {}", reply["value"]);
        }
        reply["value"].clone()
    }

    /// Ends the session (closing Chromium) and the driver.
    pub async fn quit(self) {
        self.call("DELETE", "", Value::Null).await;
    }

    /// Opens a URL (an interaction when a customer does it).
    pub async fn open(&mut self, url: &str) {
        self.interactions += 1;
        self.call("POST", "/url", json!({ "url": url })).await;
    }

    /// Opens a URL that a test looks at, not one a customer would open.
    pub async fn look_at(&mut self, url: &str) {
        self.call("POST", "/url", json!({ "url": url })).await;
    }

    /// The WebDriver id of the first element matching a CSS selector.
    async fn element(&self, selector: &str) -> String {
        let found = self
            .call(
                "POST",
                "/element",
                json!({ "using": "css selector", "value": selector }),
            )
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element id for {selector}: {found}"))
            .to_owned()
    }

    /// Clicks the first element matching a CSS selector.
    pub async fn click(&mut self, selector: &str) {
        let id = self.element(selector).await;
        self.interactions += 1;
        self.call("POST", &format!("/element/{id}/click"), json!({}))
            .await;
    }

    /// Types into the first element matching a CSS selector.
    pub async fn type_into(&mut self, selector: &str, text: &str) {
        let id = self.element(selector).await;
        self.call(
            "POST",
            &format!("/element/{id}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    pub async fn script(&self, script: &str) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
        .await
    }

    pub async fn text(&self) -> String {
        self.script("return document.body.innerText")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits (up to 10 s) for the page to show `needle`: a click that submits a form returns
    /// before the next page has loaded. Returns the page's text.
    pub async fn wait_for_text(&self, needle: &str) -> String {
        let mut text = String::new();
        for _ in 0..100 {
            text = self.text().await;
            if text.contains(needle) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the page never showed \"{needle}\":\n{text}");
    }

    /// (scrollWidth, innerWidth): the page fits when the first is not larger.
    pub async fn widths(&self) -> (u64, u64) {
        let w = self
            .script("return [document.documentElement.scrollWidth, window.innerWidth]")
            .await;
        (w[0].as_u64().unwrap(), w[1].as_u64().unwrap())
    }

    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self.call("GET", "/screenshot", Value::Null).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("base64 PNG"))
            .unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The HTML parts of the .eml files in `dir` whose subject contains `subject`, by file name.
pub fn emails(dir: &Path) -> Vec<(String, String, String)> {
    let mut found: Vec<(String, String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let raw = std::fs::read(&path).unwrap();
            let message = MessageParser::default().parse(&raw).unwrap();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                message.subject().unwrap_or_default().to_owned(),
                message.body_html(0).expect("an HTML part").into_owned(),
            )
        })
        .collect();
    found.sort();
    found
}

/// The href of the first link whose text is `label` in an HTML email, its entities decoded
/// (the templates escape `/` in attributes, as a browser reads them).
pub fn href(html: &str, label: &str) -> String {
    let end = html
        .find(&format!(">{label}</a>"))
        .unwrap_or_else(|| panic!("no \"{label}\" link in:\n{html}"));
    let start = html[..end].rfind("href=\"").unwrap() + "href=\"".len();
    html[start..end]
        .split('"')
        .next()
        .unwrap()
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

/// Screenshots of pages and emails, each checked to fit its width (no sideways scrolling).
pub struct Shots {
    pub dir: PathBuf,
    /// Each check, as `name: scrollWidth <= innerWidth`.
    pub taken: Vec<String>,
    /// What was looked at by URL, to look at again at the narrowest width.
    urls: Vec<(String, String)>,
    width: u32,
    narrowest: u32,
}

impl Shots {
    /// Screenshots into `dir` (made if missing), at `width` and again at `narrowest`.
    pub fn new(dir: PathBuf, width: u32, narrowest: u32) -> Shots {
        std::fs::create_dir_all(&dir).unwrap();
        Shots {
            dir,
            taken: vec![],
            urls: vec![],
            width,
            narrowest,
        }
    }

    /// Checks that the page fits `width`, and saves a screenshot named `name`.
    pub async fn check_at(&mut self, browser: &Browser, name: &str, width: u32) {
        let (scroll, inner) = browser.widths().await;
        assert_eq!(inner, u64::from(width), "the viewport is a phone's");
        assert!(
            scroll <= inner,
            "{name} scrolls sideways at {width} px: scrollWidth {scroll} > innerWidth {inner}"
        );
        browser
            .screenshot(&self.dir.join(format!("{name}.png")))
            .await;
        self.taken.push(format!("{name}: {scroll} <= {inner}"));
    }

    pub async fn check(&mut self, browser: &Browser, name: &str) {
        self.check_at(browser, name, self.width).await;
    }

    /// Looks again, in a browser `narrowest` pixels wide, at the URLs `which` picks.
    pub async fn narrowest(&mut self, which: impl Fn(&str) -> bool) {
        let narrowest = self.narrowest;
        let mut narrow = Browser::start(narrowest, 640).await;
        for (name, url) in self.urls.clone() {
            if which(&url) {
                narrow.look_at(&url).await;
                self.check_at(&narrow, &format!("{name}-{narrowest}"), narrowest)
                    .await;
            }
        }
        narrow.quit().await;
    }

    /// Looks at `url` (not as a customer would: not counted) and checks it.
    pub async fn look(&mut self, browser: &mut Browser, name: &str, url: String) {
        browser.look_at(&url).await;
        self.check(browser, name).await;
        self.urls.push((name.to_owned(), url));
    }

    /// Saves an email's HTML part as `FILE.html` beside the screenshots and looks at it.
    pub async fn look_email(&mut self, browser: &mut Browser, file: &str, html: &str) {
        let path = self.dir.join(format!("{file}.html"));
        std::fs::write(&path, html).unwrap();
        self.look(
            browser,
            &format!("email-{file}"),
            format!("file://{}", path.display()),
        )
        .await;
    }
}
