//! The delivery section of the configuration, and the SMTP server email goes through.

use serde::Deserialize;

use crate::duration::Duration;

/// How notifications are delivered.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// No retry later than this after the notification was made.
    pub give_up_after: Duration,
    /// A channel whose every attempt failed for this long is disabled.
    pub disable_after: Duration,
    /// The time one HTTP attempt may take.
    pub timeout_ms: u64,
    /// Attempts in flight at once, over all channels.
    pub max_in_flight: usize,
    /// CIDR blocks of private, loopback or link-local addresses channels may reach anyway.
    pub allow_private: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP (a relay on the same host or network).
    None,
    /// STARTTLS, required.
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// The sender of every email, e.g. `Klaxon <alerts@example.com>`.
    pub from: String,
    #[serde(default = "smtp_timeout_ms")]
    pub timeout_ms: u64,
}

fn smtp_timeout_ms() -> u64 {
    10_000
}
