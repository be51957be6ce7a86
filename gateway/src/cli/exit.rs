//! The CLI's exit codes: 0 success, 1 an operation that failed (a rejected reload, a refused
//! rollback, an unreachable gateway), 2 a command used wrongly (what clap reports, and the
//! same kind of mistake found after parsing: an unusable `--admin`, an unreadable
//! `--token-file`).

use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Success,
    Failed,
    Usage,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        match e {
            Exit::Success => ExitCode::SUCCESS,
            Exit::Failed => ExitCode::FAILURE,
            Exit::Usage => ExitCode::from(2),
        }
    }
}

/// A command that could not be carried out: the message for stderr and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub exit: Exit,
    pub message: String,
    /// Printed as `dyegate: MESSAGE`; `false` for lines that carry their own location
    /// (`FILE:LINE:COL: ...`), printed as they are.
    pub prefixed: bool,
}

impl Failure {
    pub fn failed(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Failed,
            message: message.into(),
            prefixed: true,
        }
    }

    /// Located lines (config errors), printed as they are.
    pub fn lines(lines: &[String]) -> Failure {
        Failure {
            exit: Exit::Failed,
            message: lines.join("\n"),
            prefixed: false,
        }
    }

    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            exit: Exit::Usage,
            message: message.into(),
            prefixed: true,
        }
    }
}

impl Failure {
    /// Prints it to stderr and gives its exit code.
    pub fn report(&self) -> Exit {
        if self.prefixed {
            eprintln!("dyegate: {}", self.message);
        } else {
            eprintln!("{}", self.message);
        }
        self.exit
    }
}
