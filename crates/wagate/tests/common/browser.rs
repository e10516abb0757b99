//! A headless Chromium driven over the DevTools protocol, for tests of pages that run script
//! (the connect page). No WebDriver and no browser download: Debian's `chromium` package and
//! one WebSocket are enough.
//!
//! ```ignore
//! let mut browser = Browser::launch().await;
//! browser.set_viewport_phone().await;
//! browser.open(&format!("{base}/connect/tok")).await;
//! assert!(browser.wait_for("!!document.querySelector('#qr svg')", Duration::from_secs(5)).await);
//! ```
//!
//! Waits here are in wall time: they are about the browser getting on with its work, not
//! about business time, which tests move through the sandbox clock.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long Chromium may take to start or to answer one command before the test fails.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

/// A running headless Chromium with one page (tab) attached.
///
/// Dropping it kills the process and removes its throwaway profile directory.
pub struct Browser {
    child: Child,
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The flattened DevTools session of our page; page commands carry it.
    session: String,
    next_id: u64,
    /// `Page.loadEventFired` events seen so far, so `open` can wait for the next one.
    loads: u64,
    /// Chromium's stderr, for the failure message when it misbehaves.
    stderr: Arc<Mutex<String>>,
    /// Last field, so it is removed after the process is gone (see `Drop`).
    _profile: tempfile::TempDir,
}

/// Where Chromium is: `$WAGATE_CHROMIUM`, `/usr/bin/chromium`, or `chromium` on `PATH`.
fn chromium_path() -> PathBuf {
    if let Some(path) = std::env::var_os("WAGATE_CHROMIUM") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "WAGATE_CHROMIUM={} is not a file",
            path.display()
        );
        return path;
    }
    let usual = Path::new("/usr/bin/chromium");
    if usual.is_file() {
        return usual.to_path_buf();
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromium"))
            .find(|candidate| candidate.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!(
            "Chromium is needed for the browser tests and was not found \
             ($WAGATE_CHROMIUM, /usr/bin/chromium, `chromium` on PATH). \
             Run scripts/test, which installs Debian's chromium package, \
             or set WAGATE_CHROMIUM to a Chromium binary."
        )
    })
}

impl Browser {
    /// Starts headless Chromium with a fresh profile and opens one blank page.
    pub async fn launch() -> Browser {
        Self::launch_with(&[]).await
    }

    /// [`Browser::launch`] with extra Chromium flags (e.g. a fake microphone).
    pub async fn launch_with(extra: &[&str]) -> Browser {
        let profile = tempfile::tempdir().expect("a temp dir for the Chromium profile");
        let mut child = Command::new(chromium_path())
            .args([
                "--headless=new",
                // Tests run as root in CI, where Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                // Containers often have a tiny /dev/shm.
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--no-first-run",
                // Port 0: Chromium picks a free port and prints it, so tests can run in parallel.
                "--remote-debugging-port=0",
            ])
            .args(extra)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("Chromium starts");

        // Chromium announces its DevTools address on stderr. Keep reading after that so the
        // pipe never fills up and blocks it, and keep what it says for failure messages.
        let stderr = Arc::new(Mutex::new(String::new()));
        let (found, address) = mpsc::channel();
        let pipe = child.stderr.take().expect("piped stderr");
        let log = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if let Some(at) = line.find("ws://") {
                    if line.contains("DevTools listening on") {
                        let _ = found.send(line[at..].trim().to_owned());
                    }
                }
                let mut log = log.lock().unwrap();
                if log.len() < 64 * 1024 {
                    log.push_str(&line);
                    log.push('\n');
                }
            }
        });
        let url = tokio::task::spawn_blocking(move || address.recv_timeout(ANSWER_WITHIN))
            .await
            .unwrap();
        let url = match url {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "Chromium did not print its DevTools address within {ANSWER_WITHIN:?}; \
                     its stderr:\n{}",
                    stderr.lock().unwrap()
                );
            }
        };
        let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap_or_else(|e| panic!("connect to Chromium's DevTools at {url}: {e}"));

        let mut browser = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            loads: 0,
            stderr,
            _profile: profile,
        };
        // One page of our own, attached in "flatten" mode: its commands travel on this same
        // socket tagged with the session id, so no second connection or HTTP lookup is needed.
        let target = browser
            .browser_call("Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let target_id = target["targetId"].as_str().expect("a targetId").to_owned();
        let attached = browser
            .browser_call(
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
            )
            .await;
        browser.session = attached["sessionId"]
            .as_str()
            .expect("a sessionId")
            .to_owned();
        // Page events tell `open` when a navigation has loaded.
        browser.call("Page.enable", json!({})).await;
        browser
    }

    /// Navigates the page to `url` and waits until it has loaded.
    pub async fn open(&mut self, url: &str) {
        let loads_before = self.loads;
        let navigated = self.call("Page.navigate", json!({"url": url})).await;
        if let Some(error) = navigated["errorText"].as_str() {
            panic!("Chromium could not open {url}: {error}");
        }
        let deadline = Instant::now() + ANSWER_WITHIN;
        while self.loads == loads_before {
            let remaining = deadline.saturating_duration_since(Instant::now());
            assert!(
                !remaining.is_zero(),
                "{url} did not load within {ANSWER_WITHIN:?}"
            );
            self.read_one(remaining).await;
        }
    }

    /// Evaluates `js` in the page and returns its value (promises are awaited). A script
    /// error fails the test with Chromium's description of it.
    pub async fn eval(&mut self, js: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": js, "returnByValue": true, "awaitPromise": true, "userGesture": true}),
            )
            .await;
        if let Some(details) = result.get("exceptionDetails") {
            panic!("script failed: {js}\n{details:#}");
        }
        result["result"]
            .get("value")
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// Polls `js_condition` every 100 ms until it is `true`; false if `timeout` passes first.
    pub async fn wait_for(&mut self, js_condition: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.eval(js_condition).await == Value::Bool(true) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Makes the page a phone: 390×844 CSS pixels, mobile layout (the viewport meta tag
    /// counts), touch input. Call it before `open`.
    pub async fn set_viewport_phone(&mut self) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": true}),
        )
        .await;
        self.call(
            "Emulation.setTouchEmulationEnabled",
            json!({"enabled": true, "maxTouchPoints": 5}),
        )
        .await;
    }

    /// Evaluates `js` (a click on a submit button, a form's `submit()`), which navigates,
    /// and waits until the page it leads to has loaded.
    pub async fn eval_and_wait_load(&mut self, js: &str) {
        let loads_before = self.loads;
        self.eval(js).await;
        let deadline = Instant::now() + ANSWER_WITHIN;
        while self.loads == loads_before {
            let remaining = deadline.saturating_duration_since(Instant::now());
            assert!(
                !remaining.is_zero(),
                "no page loaded within {ANSWER_WITHIN:?} after {js}"
            );
            self.read_one(remaining).await;
        }
    }

    /// Sets the page's size in CSS pixels; `mobile` also turns on the phone layout rules
    /// (the viewport meta tag). Call it before `open`.
    pub async fn set_viewport(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        )
        .await;
    }

    /// Saves a PNG of the whole page (beyond the viewport too) at `path`.
    pub async fn screenshot(&mut self, path: &Path) {
        use base64::Engine as _;
        let shot = self
            .call(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true}),
            )
            .await;
        let data = shot["data"].as_str().expect("screenshot data");
        let png = base64::engine::general_purpose::STANDARD
            .decode(data)
            .expect("base64 screenshot");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// A command to our page.
    async fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(method, params, Some(&session)).await
    }

    /// A command to the browser itself (targets).
    async fn browser_call(&mut self, method: &str, params: Value) -> Value {
        self.send(method, params, None).await
    }

    async fn send(&mut self, method: &str, params: Value, session: Option<&str>) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        self.ws
            .send(Message::text(command.to_string()))
            .await
            .unwrap_or_else(|e| panic!("send {method} to Chromium: {e}"));
        let deadline = Instant::now() + ANSWER_WITHIN;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            assert!(
                !remaining.is_zero(),
                "Chromium did not answer {method} within {ANSWER_WITHIN:?}"
            );
            let message = self.read_one(remaining).await;
            if message["id"] == json!(id) {
                if let Some(error) = message.get("error") {
                    panic!("Chromium refused {method} {command}: {error}");
                }
                return message["result"].clone();
            }
        }
    }

    /// Reads one protocol message, noting the page loads among the events.
    async fn read_one(&mut self, within: Duration) -> Value {
        let frame = match tokio::time::timeout(within, self.ws.next()).await {
            Ok(Some(Ok(frame))) => frame,
            Ok(Some(Err(e))) => panic!("Chromium's DevTools socket failed: {e}"),
            Ok(None) => panic!(
                "Chromium closed its DevTools socket; its stderr:\n{}",
                self.stderr.lock().unwrap()
            ),
            Err(_) => return Value::Null,
        };
        let Ok(text) = frame.to_text() else {
            return Value::Null;
        };
        let message: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        if message["method"] == "Page.loadEventFired"
            && message["sessionId"] == self.session.as_str()
        {
            self.loads += 1;
        }
        message
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Kill and reap before the profile directory is removed (the last field), so Chromium
        // is not writing into it while it goes.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
