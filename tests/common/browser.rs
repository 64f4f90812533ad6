//! Headless Chromium under chromedriver, driven over WebDriver by fantoccini.
//!
//! Debian's `chromium` and `chromium-driver` packages provide the two binaries (the
//! README's test command installs them); without them the browser tests fail and say so,
//! rather than passing without having looked at the page. `WHISPER_APPLIANCE_TEST_CHROMIUM`
//! and `WHISPER_APPLIANCE_TEST_CHROMEDRIVER` point elsewhere. Each browser gets its own
//! chromedriver on a port it chooses itself and a fresh profile directory, so tests run in parallel.
//!
//! Before any page script runs, every document gets listeners that record Content Security
//! Policy violations and uncaught errors in `window.__csp` and `window.__errors`; what the
//! browser itself logs to the console (a refused header, a failed request) is read from
//! chromedriver's log by [`Browser::console`].

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder};
use serde_json::{Value, json};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Runs in each new document before the page's own scripts.
const RECORDER: &str = "window.__csp = []; window.__errors = [];\
    document.addEventListener('securitypolicyviolation', (e) =>\
      window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'} at ${e.sourceFile}:${e.lineNumber}`));\
    window.addEventListener('error', (e) => window.__errors.push(String(e.message)));\
    window.addEventListener('unhandledrejection', (e) => window.__errors.push(String(e.reason)));";

fn binary(variable: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "{} is missing, so the page cannot be tested in a real browser; install Debian's chromium and \
         chromium-driver (`apt-get install -y chromium chromium-driver`, as the README's test command does) \
         or set {variable}",
        path.display()
    );
    path
}

/// The port chromedriver started with `--port=0` chose, from the line it prints on stdout
/// ("ChromeDriver was started successfully on port N."): nothing else can take it meanwhile.
fn chosen_port(child: &mut Child, log: &Path) -> u16 {
    let stdout = child.stdout.take().expect("chromedriver's stdout is piped");
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let port = line.strip_prefix("ChromeDriver was started successfully on port ");
            if let Some(port) = port.and_then(|rest| rest.trim_end_matches('.').parse::<u16>().ok()) {
                let _ = port_tx.send(port);
            }
        }
    });
    port_rx
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("chromedriver named no port:\n{}", read_log(log)))
}

/// A chromedriver process, stopped when dropped (it takes its browser with it).
struct Driver {
    child: Child,
    log: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Browser {
    pub client: Client,
    driver: Driver,
    /// The Chromium profile; removed after the driver (and so the browser) has stopped.
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session of `width` x `height`.
    pub async fn start(width: u32, height: u32) -> Browser {
        Browser::start_with(width, height, &[]).await
    }

    /// Chromium with a fake microphone that plays `wav` (16-bit PCM; Chromium loops it) and
    /// grants the page's request for it without asking.
    pub async fn start_with_microphone(width: u32, height: u32, wav: &Path) -> Browser {
        let file = format!("--use-file-for-fake-audio-capture={}", wav.display());
        Browser::start_with(
            width,
            height,
            &["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", &file],
        )
        .await
    }

    async fn start_with(width: u32, height: u32, extra_args: &[&str]) -> Browser {
        let chromium = binary("WHISPER_APPLIANCE_TEST_CHROMIUM", CHROMIUM);
        let chromedriver = binary("WHISPER_APPLIANCE_TEST_CHROMEDRIVER", CHROMEDRIVER);
        let profile = tempfile::tempdir().unwrap();
        let log = profile.path().join("chromedriver.log");
        let mut child = Command::new(&chromedriver)
            .arg("--port=0")
            .arg(format!("--log-path={}", log.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", chromedriver.display()));
        let port = chosen_port(&mut child, &log);
        let driver = Driver { child, log };
        let url = format!("http://127.0.0.1:{port}");
        wait_for_driver(&url, &driver.log).await;

        let user_data = profile.path().join("chromium");
        let mut args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            format!("--window-size={width},{height}"),
            format!("--user-data-dir={}", user_data.display()),
        ];
        args.extend(extra_args.iter().map(|arg| (*arg).to_owned()));
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium, "args": args },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(capabilities) = capabilities else { unreachable!() };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&url)
            .await
            .unwrap_or_else(|error| {
                panic!("chromedriver could not start Chromium: {error}\n{}", read_log(&driver.log))
            });
        let browser = Browser { client, driver, _profile: profile };
        browser.cdp("Page.addScriptToEvaluateOnNewDocument", json!({ "source": RECORDER })).await;
        browser
    }

    /// A Chrome DevTools Protocol command, through chromedriver's `goog/cdp/execute`.
    pub async fn cdp(&self, command: &str, params: Value) -> Value {
        self.client
            .issue_cmd(Cdp { command: command.to_owned(), params })
            .await
            .unwrap_or_else(|error| panic!("CDP {command} failed: {error}"))
    }

    /// Runs `script` (a function body) and returns its value.
    pub async fn js(&self, script: &str) -> Value {
        self.client.execute(script, Vec::new()).await.unwrap_or_else(|error| panic!("{script}: {error}"))
    }

    /// Polls `expression` until it is truthy; returns its value, or fails with `what`.
    pub async fn wait_for(&self, what: &str, within: Duration, expression: &str) -> Value {
        let deadline = Instant::now() + within;
        let script = format!("return {expression};");
        loop {
            let value = self.js(&script).await;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::String(text) => !text.is_empty(),
                Value::Number(number) => number.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                let alerts = self.js("return document.getElementById('alerts')?.innerText ?? ''").await;
                panic!("timed out after {within:?} waiting for {what}; page alerts: {alerts}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The CSP violations and script errors recorded on the current page.
    pub async fn problems(&self) -> (Vec<String>, Vec<String>) {
        let value = self.js("return [window.__csp || ['recorder missing'], window.__errors || []];").await;
        let list =
            |v: &Value| v.as_array().unwrap().iter().map(|s| s.as_str().unwrap_or_default().to_owned()).collect();
        (list(&value[0]), list(&value[1]))
    }

    /// Console messages at warning level or above since the last call (chromedriver's
    /// browser log, which hands each entry out once).
    pub async fn console(&self) -> Vec<String> {
        let entries = self.client.issue_cmd(BrowserLog).await.unwrap_or_else(|error| panic!("browser log: {error}"));
        entries
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|entry| matches!(entry["level"].as_str(), Some("SEVERE" | "WARNING")))
                    .map(|entry| format!("{}: {}", entry["level"].as_str().unwrap_or(""), entry["message"]))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Saves a screenshot of the page as it is (the whole page, or the window) under
    /// target/ui-screenshots/ for people to look at, and checks it with axe-core: every state
    /// people are shown is checked for accessibility too.
    pub async fn look(&self, name: &str, whole_page: bool) {
        let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("ui-screenshots");
        let path = folder.join(format!("{name}.png"));
        if whole_page {
            self.screenshot_page(&path).await;
        } else {
            self.screenshot(&path).await;
        }
        assert_eq!(self.axe().await, Vec::<String>::new(), "axe-core finds violations in {name}");
    }

    /// No CSP violation, script error or console warning so far on this page.
    pub async fn assert_no_problems(&self, what: &str) {
        let (csp, errors) = self.problems().await;
        assert_eq!(csp, Vec::<String>::new(), "CSP violations: {what}");
        assert_eq!(errors, Vec::<String>::new(), "script errors: {what}");
        assert_eq!(self.console().await, Vec::<String>::new(), "console messages: {what}");
    }

    /// Runs axe-core on the page as it is now and returns its violations, one line each
    /// (rule, impact, and where). `tests/fixtures/axe.min.js` is axe-core 4.14.1 from npm
    /// (MPL-2.0), unmodified; it runs only in tests and never ships.
    pub async fn axe(&self) -> Vec<String> {
        static AXE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/axe.min.js")).unwrap()
        });
        // WebDriver scripts are not the page's, so the CSP does not stop this one.
        if self.js("return typeof window.axe === 'undefined';").await == true {
            self.js(&format!("{}\nreturn true;", *AXE)).await;
        }
        let script = "const done = arguments[arguments.length - 1];
            axe.run(document, { resultTypes: ['violations'] })
              .then((r) => done(r.violations.map((v) =>
                `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`)))
              .catch((e) => done([`axe failed: ${e}`]));";
        let value = self.client.execute_async(script, Vec::new()).await.unwrap_or_else(|error| panic!("axe: {error}"));
        value.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()).collect()
    }

    /// Saves a PNG of the viewport.
    pub async fn screenshot(&self, path: &Path) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// Saves a PNG of the whole page: the window grows to the page's height first.
    pub async fn screenshot_page(&self, path: &Path) {
        let (width, _) = self.client.get_window_size().await.unwrap();
        let inner =
            self.js("return [window.outerHeight - window.innerHeight, document.documentElement.scrollHeight];").await;
        let height = inner[0].as_u64().unwrap() + inner[1].as_u64().unwrap();
        self.client.set_window_size(width as u32, height as u32).await.unwrap();
        self.screenshot(path).await;
    }

    pub async fn close(self) {
        let Browser { client, driver, _profile } = self;
        client.close().await.unwrap();
        drop(driver);
    }
}

async fn wait_for_driver(url: &str, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let client = reqwest::Client::new();
    loop {
        if let Ok(response) = client.get(format!("{url}/status")).send().await
            && response.status() == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "chromedriver did not answer on {url}:\n{}", read_log(log));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn read_log(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// `POST /session/{id}/se/log`: chromedriver's console log for the session.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (warp::http::Method, Option<String>) {
        (warp::http::Method::POST, Some(json!({ "type": "browser" }).to_string()))
    }
}

/// `POST /session/{id}/goog/cdp/execute`: chromedriver's door to the DevTools protocol.
#[derive(Debug)]
struct Cdp {
    command: String,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/goog/cdp/execute", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (warp::http::Method, Option<String>) {
        (warp::http::Method::POST, Some(json!({ "cmd": self.command, "params": self.params }).to_string()))
    }
}
