//! Which form an answer is printed in: tables and short text for a person at a terminal, the
//! admin API's JSON for scripts (also what a pipe or a file gets unless `-o table` asks).

/// `-o` / `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The admin API's answer as it came (pretty-printed JSON).
    Json,
    /// Tables and short text.
    Table,
}

/// The form to print: the one asked for, else a table on a terminal and JSON otherwise.
pub fn choose(asked: Option<Format>, stdout_is_terminal: bool) -> Format {
    match (asked, stdout_is_terminal) {
        (Some(f), _) => f,
        (None, true) => Format::Table,
        (None, false) => Format::Json,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_terminal_gets_tables_a_pipe_json_unless_asked() {
        assert_eq!(choose(None, true), Format::Table);
        assert_eq!(choose(None, false), Format::Json);
        assert_eq!(choose(Some(Format::Table), false), Format::Table);
        assert_eq!(choose(Some(Format::Json), true), Format::Json);
    }
}
