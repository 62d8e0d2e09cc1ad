//! Making one attempt: an HTTP POST (signed for webhook channels) through a pooled client that
//! follows no redirects and reaches only allowed addresses, a text message per number through
//! the channel's SMS provider (the same client), or an email through the deployment's SMTP
//! server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::settings::{DeliveryConfig, SmtpConfig, SmtpTls};
use super::{Verdict, schedule};
use crate::channels::address::{AddressPolicy, GuardedResolver};
use crate::channels::payloads::{self, Renderer};
use crate::channels::render::{Payload, Request};
use crate::channels::signing;
use crate::channels::{Channel, Kind};
use crate::plugins::io::{DeliveryOutcome, HttpResponse};

/// The most of an answer kept with an attempt.
const EXCERPT_BYTES: usize = 1024;
/// The most of an answer a channel plugin is shown.
const PLUGIN_BODY_BYTES: usize = 64 * 1024;

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Sent {
    pub duration_ms: f64,
    pub status_code: Option<u16>,
    pub response: Option<String>,
    pub error: Option<String>,
    pub retry_after: Option<SignedDuration>,
    pub verdict: Verdict,
    /// Whether the channel's endpoint was tried (not so when rendering failed, say): only
    /// such attempts tell whether the endpoint is healthy.
    pub tried: bool,
}

impl Sent {
    /// An attempt at the endpoint, so far come to `verdict`.
    fn tried(verdict: Verdict) -> Sent {
        Sent {
            duration_ms: 0.0,
            status_code: None,
            response: None,
            error: None,
            retry_after: None,
            verdict,
            tried: true,
        }
    }

    /// A failure before anything was sent.
    pub fn refused(error: impl Into<String>) -> Sent {
        Sent {
            duration_ms: 0.0,
            status_code: None,
            response: None,
            error: Some(error.into()),
            retry_after: None,
            verdict: Verdict::Failed,
            tried: false,
        }
    }
}

pub struct Senders {
    http: reqwest::Client,
    smtp: Option<Smtp>,
    policy: Arc<AddressPolicy>,
}

struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Senders {
    pub fn new(delivery: &DeliveryConfig, smtp: Option<&SmtpConfig>) -> Result<Self, String> {
        let policy = Arc::new(AddressPolicy::new(&delivery.allow_private)?);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(delivery.timeout_ms))
            .connect_timeout(Duration::from_millis(delivery.timeout_ms.min(5000)))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver(policy.clone())))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("Klaxon/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let smtp = smtp.map(Smtp::new).transpose()?;
        Ok(Senders { http, smtp, policy })
    }

    pub fn policy(&self) -> &AddressPolicy {
        &self.policy
    }

    pub fn has_smtp(&self) -> bool {
        self.smtp.is_some()
    }

    /// One plain-text email of Klaxon's own (not a channel's), such as a confirmation link.
    pub async fn mail(&self, to: &str, subject: &str, text: &str) -> Sent {
        match &self.smtp {
            Some(smtp) => smtp.send(&[to.to_string()], &crate::ids::new_id("msg"), subject, text, None).await,
            None => Sent::refused("this deployment has no SMTP server configured ([smtp] in its config)"),
        }
    }

    /// Sends `payload` to `channel` once.
    pub async fn send(&self, channel: &Channel, message_id: &str, payload: &Payload, now: Timestamp) -> Sent {
        match payload {
            Payload::Http { content_type, headers, body } => {
                self.post(channel, message_id, content_type, headers, body, now).await
            }
            Payload::Email { to, subject, text, html } => {
                let to: Vec<String> = to.iter().filter(|address| channel.may_mail(address)).cloned().collect();
                match &self.smtp {
                    _ if to.is_empty() && channel.needs_confirmation() => {
                        Sent::refused("no address of this channel is confirmed yet: each must follow its link first")
                    }
                    Some(smtp) => smtp.send(&to, message_id, subject, text, html.as_deref()).await,
                    None => Sent::refused("this deployment has no SMTP server configured ([smtp] in its config)"),
                }
            }
            Payload::Sms { to, body, .. } => self.sms(channel, to, body, now).await,
            Payload::Requests { .. } => Sent::refused("a plugin channel's answers are judged by its plugin"),
        }
    }

    /// A plugin channel's requests, one after another, each answer judged by its plugin (through
    /// `renderer`): delivered when every one is; the first answer judged otherwise ends the
    /// attempt (retried whole, or failed). What is recorded has the channel's secrets redacted.
    pub async fn requests(&self, renderer: &Renderer, tenant: &str, channel: &Channel, requests: &[Request]) -> Sent {
        let started = Instant::now();
        let mut sent = Sent::tried(Verdict::Delivered);
        for (index, request) in requests.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            // The hosts allowed may have changed since the requests were made.
            let checked = payloads::allowed(channel, &request.url).and_then(|()| self.policy.check_url(&request.url));
            let url = match checked {
                Ok(url) => url,
                Err(refusal) => {
                    sent.error = Some(format!("request {index}: {refusal}"));
                    sent.verdict = Verdict::Failed;
                    break;
                }
            };
            let method = match reqwest::Method::from_bytes(request.method.to_ascii_uppercase().as_bytes()) {
                Ok(method) => method,
                Err(_) => {
                    sent.error = Some(format!("request {index}: `{}` is not an HTTP method", request.method));
                    sent.verdict = Verdict::Failed;
                    break;
                }
            };
            let mut call = self.http.request(method, url);
            for (name, value) in &request.headers {
                call = call.header(name.as_str(), value.as_str());
            }
            let response = match call.body(request.body.clone()).send().await {
                Ok(response) => read_whole(response).await,
                Err(e) => {
                    sent.error = Some(channel.redact(&format!("request {index}: {}", chain(&e))));
                    sent.verdict = Verdict::Retry;
                    break;
                }
            };
            sent.status_code = Some(response.status);
            sent.response = (!response.body.is_empty()).then(|| channel.redact(&excerpt(&response.body)));
            match renderer.classify(tenant, channel, index, &response).await {
                Ok(DeliveryOutcome::Delivered) => {}
                Ok(DeliveryOutcome::Retry(after)) => {
                    sent.retry_after = after.map(|seconds| SignedDuration::from_secs(i64::from(seconds)));
                    sent.error = Some(format!("request {index}: the plugin asked to try again ({})", response.status));
                    sent.verdict = Verdict::Retry;
                    break;
                }
                Ok(DeliveryOutcome::Failed(reason)) => {
                    sent.error = Some(channel.redact(&format!("request {index}: {reason}")));
                    sent.verdict = Verdict::Failed;
                    break;
                }
                // The plugin failed (a trap, its limits): this attempt only, tried again later.
                Err(e) => {
                    sent.error = Some(format!("request {index}: judging the answer: {e}"));
                    sent.verdict = Verdict::Retry;
                    break;
                }
            }
        }
        sent.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        sent
    }

    /// One text to each number through the provider's Messages resource. A 2xx is sent; 429, a
    /// 5xx or no answer is retried (the whole attempt: at least once per number); any other 4xx
    /// fails at once with the provider's error code and message.
    async fn sms(&self, channel: &Channel, to: &[String], body: &str, now: Timestamp) -> Sent {
        let (Some(provider), Some(token)) = (&channel.spec.sms, &channel.auth_token) else {
            return Sent::refused("the channel has no SMS provider or auth token");
        };
        if to.is_empty() {
            return Sent::refused("no recipient: the channel has no number or group, and no subscription gave one");
        }
        let base = provider.base_url.trim_end_matches('/');
        let url = format!("{base}/2010-04-01/Accounts/{}/Messages.json", provider.account_sid);
        let url = match self.policy.check_url(&url) {
            Ok(url) => url,
            Err(refusal) => return Sent::refused(refusal),
        };
        let sender = match (&provider.from, &provider.messaging_service_sid) {
            (Some(from), _) => ("From", from.as_str()),
            (None, Some(service)) => ("MessagingServiceSid", service.as_str()),
            (None, None) => return Sent::refused("the channel has neither `from` nor `messaging_service_sid`"),
        };
        let started = Instant::now();
        let mut sent = Sent::tried(Verdict::Delivered);
        let (mut answers, mut errors) = (Vec::new(), Vec::new());
        for number in to {
            let form = [("To", number.as_str()), sender, ("Body", body)];
            let request = self.http.post(url.clone()).basic_auth(&provider.account_sid, Some(token)).form(&form);
            let (verdict, answer) = match request.send().await {
                Ok(response) => {
                    let answer = Answer::read(response, now).await;
                    sent.status_code = sent.status_code.filter(|s| !(200..300).contains(s)).or(Some(answer.status));
                    sent.retry_after = sent.retry_after.or(answer.retry_after);
                    (answer.sms_verdict(), answer.provider_words())
                }
                Err(e) => (Verdict::Retry, chain(&e)),
            };
            if verdict == Verdict::Delivered {
                answers.push(format!("{number}: {answer}"));
            } else {
                errors.push(format!("{number}: {answer}"));
            }
            sent.verdict = worse(sent.verdict, verdict);
        }
        sent.response = (!answers.is_empty()).then(|| excerpt(answers.join("; ").as_bytes()));
        sent.error = (!errors.is_empty()).then(|| errors.join("; "));
        sent.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        sent
    }

    async fn post(
        &self,
        channel: &Channel,
        message_id: &str,
        content_type: &str,
        headers: &[(String, String)],
        body: &str,
        now: Timestamp,
    ) -> Sent {
        let Some(url) = &channel.spec.url else { return Sent::refused("the channel has no url") };
        // A literal address skips DNS, so the resolver's check does not see it.
        let url = match self.policy.check_url(url) {
            Ok(url) => url,
            Err(refusal) => return Sent::refused(refusal),
        };
        let mut request = self.http.post(url).header("content-type", content_type);
        for (name, value) in headers {
            request = request.header(name.as_str(), value.as_str());
        }
        if channel.spec.kind == Kind::Webhook {
            let timestamp = now.as_second();
            request =
                request.header("webhook-id", message_id).header("webhook-timestamp", timestamp.to_string()).header(
                    "webhook-signature",
                    signing::header(&channel.signing_keys(now), message_id, timestamp, body.as_bytes()),
                );
        }
        let started = Instant::now();
        let response = request.body(body.to_string()).send().await;
        let mut sent = Sent::tried(Verdict::Retry);
        match response {
            Ok(response) => {
                let answer = Answer::read(response, now).await;
                sent.status_code = Some(answer.status);
                sent.retry_after = answer.retry_after;
                sent.verdict = if (200..300).contains(&answer.status) {
                    Verdict::Delivered
                } else if answer.status == 410 {
                    sent.error = Some("the endpoint answered 410 Gone: no more attempts".into());
                    Verdict::Failed
                } else {
                    sent.error = Some(format!("the endpoint answered {}", answer.status));
                    Verdict::Retry
                };
                sent.response = answer.excerpt;
            }
            Err(e) => sent.error = Some(chain(&e)),
        }
        sent.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        sent
    }
}

/// What an HTTP endpoint answered: its status, `Retry-After` and the start of its body.
struct Answer {
    status: u16,
    retry_after: Option<SignedDuration>,
    excerpt: Option<String>,
}

impl Answer {
    async fn read(mut response: reqwest::Response, now: Timestamp) -> Answer {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| schedule::parse_retry_after(v, now));
        let body = read_at_most(&mut response, EXCERPT_BYTES).await;
        Answer { status, retry_after, excerpt: (!body.is_empty()).then(|| excerpt(&body)) }
    }

    /// An SMS provider's answer: 2xx sent, 429 and 5xx again later, any other refusal final.
    fn sms_verdict(&self) -> Verdict {
        match self.status {
            200..=299 => Verdict::Delivered,
            429 | 500..=599 => Verdict::Retry,
            _ => Verdict::Failed,
        }
    }

    /// In the provider's words: the message's `sid`, or its error's `code` and `message`
    /// (Twilio's error body), or the status and the start of the body.
    fn provider_words(&self) -> String {
        let json: serde_json::Value =
            self.excerpt.as_deref().and_then(|e| serde_json::from_str(e).ok()).unwrap_or_default();
        let text = |key: &str| json.get(key).map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned));
        match (self.status, text("sid"), text("code"), text("message")) {
            (200..=299, Some(sid), ..) => format!("{} {sid}", self.status),
            (status, _, Some(code), Some(message)) => format!("{status}, provider error {code}: {message}"),
            (status, ..) => format!("{status} {}", self.excerpt.as_deref().unwrap_or_default()).trim_end().to_string(),
        }
    }
}

/// An answer for a plugin to judge: its status, headers and up to `PLUGIN_BODY_BYTES` of body.
async fn read_whole(mut response: reqwest::Response) -> HttpResponse {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.to_string(), value.to_str().ok()?.to_string())))
        .collect();
    let mut body = read_at_most(&mut response, PLUGIN_BODY_BYTES).await;
    body.truncate(PLUGIN_BODY_BYTES);
    HttpResponse { status, headers, body }
}

/// The body's chunks until `limit` bytes are read (the last chunk may pass it), or the body
/// ends or fails.
async fn read_at_most(response: &mut reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body
}

/// The first `EXCERPT_BYTES` of a body, as text.
fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(EXCERPT_BYTES)]).into_owned()
}

/// The verdict of an attempt that went `a` for some numbers and `b` for another: one to retry
/// is retried, else one that failed fails it.
fn worse(a: Verdict, b: Verdict) -> Verdict {
    match (a, b) {
        (Verdict::Retry, _) | (_, Verdict::Retry) => Verdict::Retry,
        (Verdict::Failed, _) | (_, Verdict::Failed) => Verdict::Failed,
        _ => Verdict::Delivered,
    }
}

impl Smtp {
    fn new(config: &SmtpConfig) -> Result<Smtp, String> {
        let from: Mailbox = config.from.parse().map_err(|e| format!("smtp.from `{}`: {e}", config.from))?;
        let tls = |required: bool| -> Result<Tls, String> {
            let parameters = TlsParameters::new(config.host.clone()).map_err(|e| format!("smtp TLS: {e}"))?;
            Ok(if required { Tls::Required(parameters) } else { Tls::Wrapper(parameters) })
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&config.host)
            .port(config.port)
            .timeout(Some(Duration::from_millis(config.timeout_ms)));
        builder = match config.tls {
            SmtpTls::None => builder.tls(Tls::None),
            SmtpTls::Starttls => builder.tls(tls(true)?),
            SmtpTls::Tls => builder.tls(tls(false)?),
        };
        if let (Some(user), Some(password)) = (&config.username, &config.password) {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        Ok(Smtp { transport: builder.build(), from })
    }

    async fn send(
        &self,
        recipients: &[String],
        message_id: &str,
        subject: &str,
        text: &str,
        html: Option<&str>,
    ) -> Sent {
        if recipients.is_empty() {
            return Sent::refused("no recipient: the channel has no address or group, and no subscription gave one");
        }
        let mut message = Message::builder().from(self.from.clone()).subject(subject);
        for to in recipients {
            match to.parse::<Mailbox>() {
                Ok(mailbox) => message = message.to(mailbox),
                Err(e) => return Sent::refused(format!("`{to}` is not an email address: {e}")),
            }
        }
        let message = message.message_id(Some(format!("<{message_id}@klaxon>")));
        let built = match html {
            Some(html) => message.multipart(MultiPart::alternative_plain_html(text.to_string(), html.to_string())),
            None => message.singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(text.to_string())),
        };
        let message = match built {
            Ok(message) => message,
            Err(e) => return Sent::refused(format!("the email cannot be built: {e}")),
        };
        let started = Instant::now();
        let result = self.transport.send(message).await;
        let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        let (status_code, response, error, verdict) = match result {
            Ok(answer) => {
                let code = answer.code().to_string().parse().ok();
                (code, Some(answer.message().collect::<Vec<_>>().join(" ")), None, Verdict::Delivered)
            }
            Err(e) => {
                let verdict = if e.is_permanent() { Verdict::Failed } else { Verdict::Retry };
                (e.status().and_then(|c| c.to_string().parse().ok()), None, Some(chain(&e)), verdict)
            }
        };
        Sent { duration_ms, status_code, response, error, retry_after: None, verdict, tried: true }
    }
}

/// An error and its causes, on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
