//! The example servers' command line: `--name value` pairs, nothing
//! else. A malformed value stops the program with the flag's usage.

use std::net::SocketAddr;

/// The process's arguments.
pub struct Args(Vec<String>);

impl Args {
    pub fn from_env() -> Args {
        Args(std::env::args().collect())
    }

    /// The value after `name`, if `name` is given.
    pub fn flag(&self, name: &str) -> Option<String> {
        let i = self.0.iter().position(|a| a == name)?;
        self.0.get(i + 1).cloned()
    }

    /// `--self-test N`: run N client connections against the server.
    pub fn self_test(&self) -> Option<usize> {
        self.flag("--self-test")
            .map(|n| n.parse().expect("--self-test N"))
    }

    /// The address after `name`, or an ephemeral port on loopback.
    pub fn addr(&self, name: &str) -> SocketAddr {
        self.flag(name)
            .unwrap_or_else(|| "127.0.0.1:0".into())
            .parse()
            .unwrap_or_else(|_| panic!("{name} HOST:PORT"))
    }
}
