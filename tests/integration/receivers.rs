//! Real receivers for deliveries: an HTTP server on 127.0.0.1 that records every request and
//! answers from a script, an independent Standard Webhooks verifier, and an SMTP server
//! (Python's aiosmtpd) that reports each message it takes.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// How long a test waits for something to arrive.
const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Header names in lower case; repeated headers joined with `, `.
    pub headers: HashMap<String, String>,
    pub body: String,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// A form-encoded body's fields.
    pub fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(self.body.as_bytes()).into_owned().collect()
    }
}

/// An answer the receiver gives.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply { status, headers: Vec::new(), body: "ok".into() }
    }

    pub fn json(status: u16, body: Value) -> Reply {
        Reply { status, headers: vec![("content-type", "application/json".into())], body: body.to_string() }
    }
}

#[derive(Default)]
struct Log {
    requests: Vec<Received>,
    script: VecDeque<Reply>,
    delay: Duration,
}

/// An HTTP receiver on 127.0.0.1; after its script it answers 200.
pub struct Receiver {
    pub url: String,
    log: Arc<Mutex<Log>>,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Log::default()));
        let shared = log.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = shared.clone();
                std::thread::spawn(move || serve(stream, &log));
            }
        });
        Receiver { url, log }
    }

    /// The next answers, in order (replacing any left).
    pub fn script(&self, replies: Vec<Reply>) {
        self.log.lock().unwrap().script = replies.into();
    }

    /// Time taken before each answer.
    pub fn delay(&self, delay: Duration) {
        self.log.lock().unwrap().delay = delay;
    }

    pub fn requests(&self) -> Vec<Received> {
        self.log.lock().unwrap().requests.clone()
    }

    /// Waits until at least `n` requests came; answers them all.
    pub fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let requests = self.requests();
            if requests.len() >= n {
                return requests;
            }
            assert!(Instant::now() < deadline, "{} requests came, not {n}", requests.len());
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

fn serve(stream: TcpStream, log: &Mutex<Log>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut headers: HashMap<String, String> = HashMap::new();
    loop {
        line.clear();
        reader.read_line(&mut line).expect("header");
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').expect("a header");
        headers
            .entry(name.trim().to_ascii_lowercase())
            .and_modify(|v| *v = format!("{v}, {}", value.trim()))
            .or_insert_with(|| value.trim().to_string());
    }
    let length: usize = headers.get("content-length").map_or(0, |l| l.parse().expect("length"));
    let mut body = vec![0; length];
    reader.read_exact(&mut body).expect("body");
    let (reply, delay) = {
        let mut log = log.lock().unwrap();
        let body = String::from_utf8(body).expect("UTF-8");
        log.requests.push(Received { path, headers, body, at: Instant::now() });
        (log.script.pop_front().unwrap_or(Reply::status(200)), log.delay)
    };
    std::thread::sleep(delay);
    let mut answer =
        format!("HTTP/1.1 {} Scripted\r\nconnection: close\r\ncontent-length: {}\r\n", reply.status, reply.body.len());
    for (name, value) in &reply.headers {
        answer.push_str(&format!("{name}: {value}\r\n"));
    }
    answer.push_str("\r\n");
    answer.push_str(&reply.body);
    let mut stream = stream;
    let _ = stream.write_all(answer.as_bytes());
}

/// Standard Webhooks verification, written from the scheme's description: the signed content
/// is `id.timestamp.body`, the key is the base64 after `whsec_`, the header holds
/// space-separated `v1,<base64 HMAC-SHA256>` signatures.
pub fn signature_valid(secret: &str, request: &Received) -> bool {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").expect("whsec_ prefix")).expect("base64 secret");
    let content = format!("{}.{}.{}", request.header("webhook-id"), request.header("webhook-timestamp"), request.body);
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(content.as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    request.header("webhook-signature").split(' ').any(|s| s == expected)
}

/// An SMTP server on 127.0.0.1 (aiosmtpd, installed by `.ci/run`) reporting each message it
/// takes, decoded by Python's `email` package.
pub struct SmtpSink {
    pub port: u16,
    child: Child,
    messages: Arc<Mutex<Vec<Value>>>,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the SMTP sink");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("the sink starts").expect("a line");
        assert_eq!(first, "ready", "the SMTP sink did not start: {first}");
        let messages = Arc::new(Mutex::new(Vec::new()));
        let shared = messages.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                shared.lock().unwrap().push(serde_json::from_str(&line).expect("a JSON line"));
            }
        });
        SmtpSink { port, child, messages }
    }

    pub fn wait_for(&self, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let messages = self.messages.lock().unwrap().clone();
            if messages.len() >= n {
                return messages;
            }
            assert!(Instant::now() < deadline, "{} emails came, not {n}", messages.len());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
