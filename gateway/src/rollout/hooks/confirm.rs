//! A confirmation asked of `confirm_step` before an automatic promotion: what was asked and
//! answered, shown in the status, and when it is asked again. Pure: the hooks service asks.

use serde::{Deserialize, Serialize};

/// The confirmation a rollout in `awaiting_confirmation` waits for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The step it would promote to (1-based).
    pub step: usize,
    /// Times asked so far.
    pub asks: u32,
    /// When it was last asked (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_asked: Option<String>,
    #[serde(default)]
    pub last_asked_ms: u64,
    /// The last answer: `HTTP 403`, or why there was none (`timed out after 2000 ms`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// A 2xx came: the step goes at the next judgement.
    pub confirmed: bool,
}

/// What an ask brought back.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Status(u16),
    /// No HTTP answer: connection refused, timeout, ...
    Failed(String),
}

impl Confirmation {
    pub fn new(step: usize) -> Confirmation {
        Confirmation {
            step,
            asks: 0,
            last_asked: None,
            last_asked_ms: 0,
            answer: None,
            confirmed: false,
        }
    }

    /// Whether to ask now: never asked yet, or the last ask (not confirmed) is `every_ms(step_ms)` old.
    pub fn due(&self, step_ms: u64, now_ms: u64) -> bool {
        !self.confirmed
            && (self.asks == 0 || now_ms.saturating_sub(self.last_asked_ms) >= every_ms(step_ms))
    }

    /// Records the answer of an ask sent at `asked_ms`.
    pub fn record(&mut self, answer: &Answer, asked_ms: u64, asked: String) {
        self.asks += 1;
        self.last_asked_ms = asked_ms;
        self.last_asked = Some(asked);
        let (text, ok) = match answer {
            Answer::Status(s) => (format!("HTTP {s}"), (200..300).contains(s)),
            Answer::Failed(why) => (why.clone(), false),
        };
        self.answer = Some(text);
        self.confirmed = ok;
    }
}

/// How often an unconfirmed step is asked again: a tenth of `step_ms`, from 1 s to 60 s.
pub fn every_ms(step_ms: u64) -> u64 {
    (step_ms / 10).clamp(1_000, 60_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asked_at_once_then_every_tenth_of_a_step_bounded() {
        let mut c = Confirmation::new(2);
        assert!(c.due(60_000, 0));
        c.record(&Answer::Status(403), 10_000, "t".into());
        assert!(!c.confirmed);
        assert_eq!(c.answer.as_deref(), Some("HTTP 403"));
        assert!(!c.due(60_000, 15_999));
        assert!(c.due(60_000, 16_000));
        assert_eq!(every_ms(1_000), 1_000);
        assert_eq!(every_ms(3_600_000), 60_000);
        c.record(
            &Answer::Failed("timed out after 2000 ms".into()),
            16_000,
            "t".into(),
        );
        assert_eq!((c.asks, c.confirmed), (2, false));
        c.record(&Answer::Status(204), 22_000, "t".into());
        assert!(c.confirmed);
        assert!(
            !c.due(60_000, 99_000),
            "a confirmed step is not asked again"
        );
    }
}
