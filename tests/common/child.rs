//! `sirena run` as a child process, as systemd or Docker run it: its log read line by
//! line as it comes (stderr piped, so not a terminal), signals by `kill`.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any wait on the child may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(60);

pub struct Sirena {
    child: Child,
    /// The child's stderr, a line at a time, from a reader thread.
    lines: mpsc::Receiver<String>,
    /// Every line read so far.
    pub log: Vec<String>,
}

impl Sirena {
    /// `sirena run --config CONFIG` with `env` set, and nothing of the test's own
    /// environment that would change what it does (tokens, state directory, log format).
    pub fn start(config: &Path, env: &[(&str, &str)]) -> Sirena {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sirena"));
        cmd.args(["run", "--config"]).arg(config);
        for var in [
            "STATE_DIRECTORY",
            "SIRENA_LOG_FORMAT",
            "NO_COLOR",
            "TELEGRAM_BOT_TOKEN",
            "ALERTS_IN_UA_TOKEN",
            "UKRAINEALARM_TOKEN",
        ] {
            cmd.env_remove(var);
        }
        cmd.env("RUST_LOG", "info").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("sirena starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Sirena { child, lines, log: Vec::new() }
    }

    /// Waits for the log line that says the daemon runs.
    pub fn running(&mut self) {
        self.wait_for("sirena running");
    }

    /// Waits for a log line containing `what`.
    pub fn wait_for(&mut self, what: &str) {
        self.wait_for_lines(what, 1);
    }

    /// Waits until `n` log lines contain `what`; fails if the process ends first or
    /// after [`WAIT`].
    pub fn wait_for_lines(&mut self, what: &str, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.log.iter().filter(|l| l.contains(what)).count() < n {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => self.log.push(line),
                Err(_) => {
                    let _ = self.child.kill();
                    let exit = self.child.wait();
                    panic!("{n} line(s) with `{what}` never came ({exit:?}); log:\n{}", self.log.join("\n"));
                }
            }
        }
    }

    pub fn still_running(&mut self) -> bool {
        self.child.try_wait().expect("wait").is_none()
    }

    pub fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args([&format!("-{name}"), &pid]).status().expect("kill runs").success());
    }

    /// Waits for the process to end on its own: its exit code, how long it took from
    /// now, and its whole log.
    pub fn exit(mut self) -> (Option<i32>, Duration, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // The reader thread ends when the process closes stderr, at exit.
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
                    self.log.push(line);
                }
                return (status.code(), started.elapsed(), self.log.join("\n"));
            }
            if started.elapsed() > WAIT {
                let _ = self.child.kill();
                panic!("sirena did not stop; log:\n{}", self.log.join("\n"));
            }
            while let Ok(line) = self.lines.try_recv() {
                self.log.push(line);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM; the exit status and the whole log.
    pub fn stop(mut self) -> (ExitStatus, Vec<String>) {
        self.signal("TERM");
        while let Ok(line) = self.lines.recv_timeout(WAIT) {
            self.log.push(line);
        }
        let exit = self.child.wait().expect("wait");
        (exit, self.log)
    }
}
