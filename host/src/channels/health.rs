//! A channel's health: how long its attempts have been failing, and disabling it once they
//! have failed for too long.

use jiff::{SignedDuration, Timestamp};

use super::{Channel, Channels};
use crate::duration::Duration;
use crate::records::system;
use crate::store::StoreResult;

impl Channels {
    /// Records how a real attempt went: a success clears the channel's failing streak; a
    /// failure starts one, or disables the channel once the streak has lasted `disable_after`,
    /// with a `channel.disabled` system event in the same transaction. Answers the channel when
    /// this attempt disabled it.
    pub fn record_attempt(
        &self,
        tenant: &str,
        channel: &str,
        ok: bool,
        error: Option<&str>,
        now: Timestamp,
        disable_after: SignedDuration,
    ) -> StoreResult<Option<Channel>> {
        let disabled_now = |c: &Channel| !c.spec.enabled && !ok;
        let report = |c: &Channel| {
            let properties = serde_json::json!({
                "channel_id": c.id, "name": c.spec.name, "kind": c.spec.kind, "reason": c.disabled_reason,
            });
            disabled_now(c).then(|| system::event(system::CHANNEL_DISABLED, None, properties, None, now))
        };
        let changed = self.store.update_reporting(&self.store.channels, tenant, channel, |c: &mut Channel| {
            if ok {
                return c.failing_since.take().is_some();
            }
            match c.failing_since {
                None => {
                    c.failing_since = Some(now);
                    true
                }
                Some(since) if c.spec.enabled && now.duration_since(since) >= disable_after => {
                    c.spec.enabled = false;
                    c.disabled_reason = Some(format!(
                        "disabled at {now}: every attempt since {since} failed (longer than delivery.disable_after, \
                         {}); the last: {}",
                        Duration(disable_after),
                        error.unwrap_or("no answer")
                    ));
                    true
                }
                Some(_) => false,
            }
        }, report)?;
        Ok(changed.filter(disabled_now))
    }
}
