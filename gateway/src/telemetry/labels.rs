//! The label values of the process-wide families that other modules count into
//! (`dyegate_reloads_total{trigger,result}`, `dyegate_state_write_errors_total{what}`): typed,
//! so a caller cannot invent a value, and every series exists (at 0) from the start.

/// `trigger` of `dyegate_reloads_total`: what started an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerLabel {
    Startup,
    File,
    Sighup,
    Api,
    Rollback,
    Rollout,
    Etcd,
}

impl TriggerLabel {
    pub const ALL: [TriggerLabel; 7] = [
        TriggerLabel::Startup,
        TriggerLabel::File,
        TriggerLabel::Sighup,
        TriggerLabel::Api,
        TriggerLabel::Rollback,
        TriggerLabel::Rollout,
        TriggerLabel::Etcd,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TriggerLabel::Startup => "startup",
            TriggerLabel::File => "file",
            TriggerLabel::Sighup => "sighup",
            TriggerLabel::Api => "api",
            TriggerLabel::Rollback => "rollback",
            TriggerLabel::Rollout => "rollout",
            TriggerLabel::Etcd => "etcd",
        }
    }
}

/// `result` of `dyegate_reloads_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultLabel {
    Applied,
    NoOp,
    Failed,
    Rollback,
}

impl ResultLabel {
    pub const ALL: [ResultLabel; 4] = [
        ResultLabel::Applied,
        ResultLabel::NoOp,
        ResultLabel::Failed,
        ResultLabel::Rollback,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResultLabel::Applied => "applied",
            ResultLabel::NoOp => "no_op",
            ResultLabel::Failed => "failed",
            ResultLabel::Rollback => "rollback",
        }
    }
}

/// `what` of `dyegate_state_write_errors_total`: which write of state failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StateWrite {
    /// `state_dir/history.json`.
    History,
    /// `state_dir/versions/N.yaml`.
    Version,
    /// A line of the audit log.
    Audit,
    /// `state_dir/rollouts.json`.
    Rollouts,
}

impl StateWrite {
    pub const ALL: [StateWrite; 4] = [
        StateWrite::History,
        StateWrite::Version,
        StateWrite::Audit,
        StateWrite::Rollouts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StateWrite::History => "history",
            StateWrite::Version => "version",
            StateWrite::Audit => "audit",
            StateWrite::Rollouts => "rollouts",
        }
    }
}
