//! What started a change of the routing table. Typed all the way into history and audit;
//! serialised only at the edge (`history.json`, the audit log, `/status`, metric labels).

use super::version_id::VersionId;
use crate::telemetry::labels::TriggerLabel;
use serde::{Deserialize, Serialize};

/// Every way the routing table changes. Serialised as `"trigger": "<kind>"` followed by the
/// variant's fields, flattened into the record that carries it (the on-disk formats of
/// `history.json` and the audit log: `{"trigger": "rollback", "rollback_to": 3, ...}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "trigger", rename_all = "lowercase")]
pub enum Trigger {
    /// The routes file as loaded when the process started.
    Startup,
    /// A change of the routes file seen by the watcher.
    File,
    /// SIGHUP.
    Sighup,
    /// `POST /reload` (`dyegate reload`).
    Api,
    /// `POST /rollback` (`dyegate rollback`): a kept version applied again.
    Rollback {
        #[serde(rename = "rollback_to")]
        to: VersionId,
    },
    /// A step of a progressive rollout.
    Rollout { route: String, step: usize },
    /// A revision of the table in etcd.
    Etcd { revision: u64 },
}

impl Trigger {
    /// The kind as a metric label.
    pub fn label(&self) -> TriggerLabel {
        match self {
            Trigger::Startup => TriggerLabel::Startup,
            Trigger::File => TriggerLabel::File,
            Trigger::Sighup => TriggerLabel::Sighup,
            Trigger::Api => TriggerLabel::Api,
            Trigger::Rollback { .. } => TriggerLabel::Rollback,
            Trigger::Rollout { .. } => TriggerLabel::Rollout,
            Trigger::Etcd { .. } => TriggerLabel::Etcd,
        }
    }

    /// The kind, as in metric labels and logs.
    pub fn kind(&self) -> &'static str {
        self.label().as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialised_as_kind_and_fields() {
        let j = |t: &Trigger| serde_json::to_string(t).unwrap_or_default();
        assert_eq!(j(&Trigger::File), r#"{"trigger":"file"}"#);
        assert_eq!(
            j(&Trigger::Rollback { to: 3.into() }),
            r#"{"trigger":"rollback","rollback_to":3}"#
        );
        assert_eq!(
            j(&Trigger::Rollout {
                route: "shop".into(),
                step: 2
            }),
            r#"{"trigger":"rollout","route":"shop","step":2}"#
        );
        for t in [
            Trigger::Startup,
            Trigger::Sighup,
            Trigger::Api,
            Trigger::Rollback { to: 7.into() },
            Trigger::Rollback {
                to: VersionId::local(7, 2),
            },
            Trigger::Etcd { revision: 42 },
        ] {
            assert_eq!(serde_json::from_str::<Trigger>(&j(&t)).ok(), Some(t));
        }
    }
}
