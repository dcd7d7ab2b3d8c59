//! A real redis-server per test: on a free loopback port, in a temporary
//! directory, configured on its command line (no config file, nothing of
//! the machine's), and gone when the value is dropped.
//!
//! Tests need `redis-server` on PATH (Debian's package; `.ci/run` installs
//! it). Without it they fail loudly rather than skip, so a CI image that
//! lost the package cannot pass by testing nothing.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer after it is started (an
/// append-only file is replayed before it does).
const READY_WITHIN: Duration = Duration::from_secs(10);

/// How long `stop` waits after SIGTERM before it kills.
const STOP_WITHIN: Duration = Duration::from_secs(10);

/// How a test wants its server configured.
#[derive(Clone, Debug, Default)]
pub struct RedisOptions {
    password: Option<String>,
    append_only: bool,
    extra: Vec<String>,
}

impl RedisOptions {
    /// Clients must authenticate with this password (`--requirepass`).
    pub fn password(mut self, password: &str) -> Self {
        self.password = Some(password.to_owned());
        self
    }

    /// Append-only persistence, fsynced after every write: what survives a
    /// SIGKILL is everything that was acknowledged.
    pub fn append_only(mut self) -> Self {
        self.append_only = true;
        self
    }

    /// One more `--name value` setting.
    pub fn arg(mut self, name: &str, value: &str) -> Self {
        self.extra.push(format!("--{name}"));
        self.extra.push(value.to_owned());
        self
    }
}

/// A redis-server child process that lives as long as this value.
pub struct RedisServer {
    port: u16,
    options: RedisOptions,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl RedisServer {
    /// A server with Redis's defaults but no persistence at all.
    pub fn start() -> RedisServer {
        Self::start_with(RedisOptions::default())
    }

    /// A server configured by `options`.
    pub fn start_with(options: RedisOptions) -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            options,
            dir: tempfile::tempdir().expect("temp dir for redis-server"),
            child: None,
        };
        // Another process may take the free port between our probe and
        // the server's bind; a few tries make that race harmless.
        let mut log = String::new();
        for _ in 0..5 {
            match server.launch() {
                Ok(()) => return server,
                Err(text) => log = text,
            }
            server.port = free_port();
        }
        panic!("redis-server did not start in 5 tries; its log:\n{log}");
    }

    /// `redis://127.0.0.1:PORT/`, with the password when there is one.
    pub fn url(&self) -> String {
        match &self.options.password {
            Some(pw) => format!("redis://:{pw}@127.0.0.1:{}/", self.port),
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    /// The loopback port it listens on (the same after a restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's working directory (the append-only files are there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops it as an operator would: SIGTERM (Redis fsyncs and exits),
    /// then waits; killed if it has not gone within 10 s.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        super::signal(&child, libc::SIGTERM);
        // wait_within kills it if it has not gone in time.
        if super::wait_within(&mut child, STOP_WITHIN).is_none() {
            panic!("redis-server ignored SIGTERM for {STOP_WITHIN:?}");
        }
    }

    /// Kills it at once (SIGKILL), as a crash or an OOM kill would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory (so with what its
    /// append-only file kept); killed first if it still runs (call `stop`
    /// before for a clean shutdown).
    pub fn restart(&mut self) {
        self.kill();
        if let Err(log) = self.launch() {
            panic!(
                "redis-server did not restart on port {}; its log:\n{log}",
                self.port
            );
        }
    }

    /// Starts the process and waits until it answers, or returns its log.
    fn launch(&mut self) -> Result<(), String> {
        let log_path = self.dir.path().join("redis.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("redis log file");
        let mut cmd = Command::new("redis-server");
        cmd.arg("--port")
            .arg(self.port.to_string())
            .arg("--bind")
            .arg("127.0.0.1")
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--save", ""])
            .args([
                "--appendonly",
                if self.options.append_only {
                    "yes"
                } else {
                    "no"
                },
            ])
            .args(["--appendfsync", "always"])
            .args(["--daemonize", "no"]);
        if let Some(pw) = &self.options.password {
            cmd.arg("--requirepass").arg(pw);
        }
        cmd.args(&self.options.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log);
        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-server not found: install Debian's redis-server (.ci/run does); \
                 the Redis tests need a real server and are never skipped"
            ),
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        self.child = Some(child);
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if self.ready() {
                return Ok(());
            }
            // A server that exited (port taken, bad option) will not answer.
            let exited = match self.child.as_mut() {
                Some(child) => child.try_wait().ok().flatten().is_some(),
                None => true,
            };
            if exited || Instant::now() >= deadline {
                self.kill();
                return Err(std::fs::read_to_string(&log_path).unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the server answers and has finished loading its data: a raw
    /// RESP exchange, so tests need no client of their own for it.
    fn ready(&self) -> bool {
        let Ok(mut conn) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
        let mut request = Vec::new();
        if let Some(pw) = &self.options.password {
            request.extend(resp(&["AUTH", pw]));
        }
        request.extend(resp(&["INFO", "persistence"]));
        if conn.write_all(&request).is_err() {
            return false;
        }
        // Read (bounded) until the INFO reply is complete enough to judge.
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        for _ in 0..50 {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
            }
            let text = String::from_utf8_lossy(&reply);
            if text.contains("loading:") || text.starts_with('-') {
                break;
            }
        }
        String::from_utf8_lossy(&reply).contains("loading:0")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        // No server outlives its test, whatever the test did.
        self.kill();
    }
}

/// A command as a RESP array of bulk strings.
fn resp(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend(format!("${}\r\n{arg}\r\n", arg.len()).into_bytes());
    }
    out
}

/// A loopback port nothing listens on right now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}
