//! A headless Chromium driven over WebDriver (Debian's `chromium` and `chromium-driver`): the
//! protocol is JSON over HTTP, spoken here with the tests' own HTTP client.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::blocking::Client;
use serde_json::{Value, json};

/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a wait for the page lasts before the test fails.
const PATIENCE: Duration = Duration::from_secs(15);

/// A browser session; chromedriver and the browser end with it.
pub struct Browser {
    driver: Child,
    http: Client,
    session: String,
}

/// An element of the page.
#[derive(Clone)]
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    pub fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver runs (Debian's chromium-driver; .ci/run installs it)");
        let http = Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + PATIENCE;
        while http.get(format!("{base}/status")).send().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/lib/chromium/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,900", "--no-first-run"],
            },
        } } });
        let answer: Value = http.post(format!("{base}/session")).json(&capabilities).send().unwrap().json().unwrap();
        let session = answer["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {answer}"));
        Browser { driver, http, session: format!("{base}/session/{session}") }
    }

    fn command(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self.http.request(method, format!("{}{path}", self.session));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().expect("chromedriver answers").json().expect("JSON");
        answer["value"].clone()
    }

    pub fn open(&self, url: &str) {
        self.command(Method::POST, "/url", Some(json!({ "url": url })));
    }

    /// Loads the page again.
    pub fn refresh(&self) {
        self.command(Method::POST, "/refresh", Some(json!({})));
    }

    /// The first element matching `css`, waiting for it to appear.
    pub fn find(&self, css: &str) -> Element<'_> {
        self.wait(&format!("an element `{css}`"), || self.try_find(css))
    }

    pub fn try_find(&self, css: &str) -> Option<Element<'_>> {
        let found = self.command(Method::POST, "/elements", Some(json!({ "using": "css selector", "value": css })));
        let id = found.as_array()?.first()?[ELEMENT].as_str()?.to_string();
        Some(Element { browser: self, id })
    }

    /// Waits until the element `css` shows text containing `text`, and returns its text.
    pub fn wait_for_text(&self, css: &str, text: &str) -> String {
        self.wait(&format!("`{css}` to read `{text}`"), || {
            let element = self.try_find(css)?;
            let shown = element.text();
            shown.contains(text).then_some(shown)
        })
    }

    /// Waits until nothing matches `css`.
    pub fn wait_gone(&self, css: &str) {
        self.wait(&format!("`{css}` to go"), || self.try_find(css).is_none().then_some(()));
    }

    /// Waits until `check` finds something, and answers it.
    pub fn wait<T>(&self, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(found) = check() {
                return found;
            }
            if Instant::now() > deadline {
                let page = self.try_find("body").map(|b| b.text()).unwrap_or_default();
                panic!("waited for {what}; the page shows:\n{page}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Fills the control of the API field `path` (its `data-field`).
    pub fn fill(&self, path: &str, text: &str) {
        self.fill_in("body", path, text);
    }

    /// Fills the control of the API field `path` inside the element `within` (a page with two
    /// forms naming the same field).
    pub fn fill_in(&self, within: &str, path: &str, text: &str) {
        let control = self.find(&format!("{within} [data-field=\"{path}\"]"));
        control.clear();
        control.type_text(text);
    }

    /// Sets the control of the API field `path` as a script would, for controls that take no
    /// typing in a portable way (date and time pickers).
    pub fn set_value(&self, path: &str, value: &str) {
        let control = self.find(&format!("[data-field=\"{path}\"]"));
        let script = "arguments[0].value = arguments[1]; arguments[0].dispatchEvent(new Event('change'));";
        self.command(
            Method::POST,
            "/execute/sync",
            Some(json!({ "script": script,
            "args": [{ ELEMENT: control.id }, value] })),
        );
    }

    /// Chooses the file at `file` in the file control of the API field `path`.
    pub fn attach(&self, path: &str, file: &std::path::Path) {
        self.find(&format!("input[type=file][data-field=\"{path}\"]")).type_text(file.to_str().unwrap());
    }

    /// Signs in with `token` on the sign-in form and waits for the signed-in header.
    /// A browser signed in to the console at `base` with `token`, on its first page (`first`).
    pub fn signed_in(base: &str, token: &str, first: &str) -> Browser {
        let browser = Browser::start();
        browser.open(base);
        browser.sign_in(token);
        browser.wait_for_text("h1", first);
        browser
    }

    pub fn sign_in(&self, token: &str) {
        self.fill("token", token);
        self.click("button[type=submit]");
        self.find("#whoami");
    }

    /// Runs `script` in the page and answers what it returns.
    pub fn script(&self, script: &str) -> Value {
        self.script_with(script, json!([]))
    }

    /// Runs `script` in the page with `args` (its `arguments`) and answers what it returns.
    pub fn script_with(&self, script: &str, args: Value) -> Value {
        self.command(Method::POST, "/execute/sync", Some(json!({ "script": script, "args": args })))
    }

    /// Answers the page's confirmation dialog with OK.
    pub fn accept_dialog(&self) {
        self.wait("a dialog", || {
            let answer = self.command(Method::POST, "/alert/accept", Some(json!({})));
            answer.get("error").is_none().then_some(())
        });
    }

    /// Picks the option `value` of the select for the API field `path`.
    pub fn choose(&self, path: &str, value: &str) {
        self.find(&format!("select[data-field=\"{path}\"] option[value=\"{value}\"]")).click();
    }

    /// Looks inside the frame `frame` from now on (until `switch_to_parent`).
    pub fn switch_to_frame(&self, frame: &Element) {
        self.command(Method::POST, "/frame", Some(json!({ "id": { ELEMENT: frame.id } })));
    }

    pub fn switch_to_parent(&self) {
        self.command(Method::POST, "/frame/parent", Some(json!({})));
    }

    pub fn click(&self, css: &str) {
        self.find(css).click();
    }

    /// The page's current address.
    pub fn url(&self) -> String {
        self.command(Method::GET, "/url", None).as_str().unwrap_or_default().to_string()
    }

    /// Saves a PNG of the window as `target/screenshots/{name}.png`.
    pub fn screenshot(&self, name: &str) {
        use base64::Engine;
        let png = self.command(Method::GET, "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.http.delete(&self.session).send();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Element<'_> {
    fn path(&self, rest: &str) -> String {
        format!("/element/{}{rest}", self.id)
    }

    pub fn click(&self) {
        self.browser.command(Method::POST, &self.path("/click"), Some(json!({})));
    }

    pub fn clear(&self) {
        self.browser.command(Method::POST, &self.path("/clear"), Some(json!({})));
    }

    pub fn type_text(&self, text: &str) {
        self.browser.command(Method::POST, &self.path("/value"), Some(json!({ "text": text })));
    }

    pub fn attribute(&self, name: &str) -> String {
        let value = self.browser.command(Method::GET, &self.path(&format!("/attribute/{name}")), None);
        value.as_str().unwrap_or_default().to_string()
    }

    /// Whether the element is shown (not hidden by itself or an ancestor).
    pub fn displayed(&self) -> bool {
        self.browser.command(Method::GET, &self.path("/displayed"), None).as_bool().unwrap_or(false)
    }

    pub fn text(&self) -> String {
        self.browser.command(Method::GET, &self.path("/text"), None).as_str().unwrap_or_default().to_string()
    }
}
