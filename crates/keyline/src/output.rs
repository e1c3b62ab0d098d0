//! Printing results: human text, or one JSON object per line with `--json`.

use std::io::Write;

use serde_json::Value;

/// Prints `value` as one JSON line, or `human` as text.
pub(crate) fn emit(json: bool, value: &Value, human: impl FnOnce() -> String) {
    if json {
        println!("{value}");
    } else {
        println!("{}", human());
    }
}

/// Prints one JSON line on stdout and flushes it at once (servers announce themselves so).
pub(crate) fn announce(value: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}
