#![allow(dead_code)]
//! `ssehub serve` as a child process on a free loopback port, killed on drop.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::http_support::{Remote, ADMIN};

/// A running `ssehub serve --listen 127.0.0.1:0 --admin-token <ADMIN> …`.
pub struct ServeProcess {
    pub child: Child,
    pub addr: SocketAddr,
    /// True if it logged `listening on https://`.
    pub tls: bool,
    lines: mpsc::Receiver<String>,
    pub log: Vec<String>,
}

impl ServeProcess {
    /// Spawns the binary with `args` and waits (20 s at most) for its
    /// "listening on" line.
    pub fn spawn(args: &[&str]) -> ServeProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ssehub"))
            .args(["serve", "--listen", "127.0.0.1:0", "--admin-token", ADMIN])
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ssehub serve");
        let stderr = child.stderr.take().expect("stderr");
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut log = Vec::new();
        let (addr, tls) = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("no 'listening on' line; log: {log:#?}"));
            let found = ["http://", "https://"].iter().find_map(|scheme| {
                let addr = line
                    .split(&format!("listening on {scheme}"))
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse::<SocketAddr>()
                    .ok()?;
                Some((addr, *scheme == "https://"))
            });
            log.push(line);
            if let Some(found) = found {
                break found;
            }
        };
        ServeProcess {
            child,
            addr,
            tls,
            lines,
            log,
        }
    }

    /// A plain HTTP/1.1 client for it.
    pub fn remote(&self) -> Remote {
        Remote::new(self.addr)
    }

    /// Sends a signal (`HUP`, `TERM`, …) with `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Log lines so far.
    pub fn log(&mut self) -> &[String] {
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
        &self.log
    }

    /// Waits up to `limit` for a log line containing `needle`.
    pub fn wait_for_log(&mut self, needle: &str, limit: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + limit;
        if let Some(line) = self.log().iter().find(|l| l.contains(needle)) {
            return Some(line.clone());
        }
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self.lines.recv_timeout(left).ok()?;
            self.log.push(line.clone());
            if line.contains(needle) {
                return Some(line);
            }
        }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
