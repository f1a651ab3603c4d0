//! Filter log lines (`proxy_log`, WASI stdout/stderr), kept in memory for tests
//! and printed the way Envoy prints them (`wasm log <plugin> <root_id> <vm_id>: ...`).

use crate::spec::LogLevel;
use std::sync::Mutex;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
    /// Which VM instance wrote it (0-based).
    pub vm: usize,
}

pub(crate) struct LogSink {
    lines: Mutex<Vec<LogLine>>,
    threshold: LogLevel,
    print: bool,
    prefix: String,
}

/// Lines kept at most; older ones are dropped so a long run cannot grow without bound.
const MAX_LINES: usize = 100_000;

impl LogSink {
    pub(crate) fn new(threshold: LogLevel, print: bool, prefix: String) -> LogSink {
        LogSink {
            lines: Mutex::new(Vec::new()),
            threshold,
            print,
            prefix,
        }
    }

    pub(crate) fn threshold(&self) -> LogLevel {
        self.threshold
    }

    /// Records a filter line; below the threshold it is dropped, as Envoy's logger does.
    pub(crate) fn filter_line(&self, vm: usize, level: LogLevel, message: &str) {
        if level < self.threshold {
            return;
        }
        if self.print {
            eprintln!("[{level}] wasm log{}: {message}", self.prefix);
        }
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() >= MAX_LINES {
            lines.drain(..MAX_LINES / 10);
        }
        lines.push(LogLine {
            level,
            message: message.to_string(),
            vm,
        });
    }

    /// Records a line of the host's own about this plugin (traps, refusals).
    pub(crate) fn host_line(&self, vm: usize, level: LogLevel, message: &str) {
        if self.print {
            eprintln!("[{level}] wasm{}: {message}", self.prefix);
        }
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.push(LogLine {
            level,
            message: format!("host: {message}"),
            vm,
        });
    }

    pub(crate) fn snapshot(&self) -> Vec<LogLine> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
