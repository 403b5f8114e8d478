//! A private PostgreSQL cluster that a test starts, stops, crashes and starts again: `initdb`
//! and `pg_ctl` run as the `postgres` OS user in a temporary directory, listening on a free
//! loopback port. The shared server on 5432 is never touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tempfile::TempDir;

/// How the cluster goes down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Down {
    /// `pg_ctl stop -m fast`: sessions are ended, then a clean shutdown.
    Fast,
    /// `pg_ctl stop -m immediate`: every process quits at once; crash recovery on start.
    Immediate,
    /// SIGKILL to the postmaster and all its processes, as an OOM killer or a lost container.
    Kill,
}

pub struct PgCluster {
    port: u16,
    bin: PathBuf,
    data: PathBuf,
    /// Holds the data directory, the socket directory and the server log.
    dir: TempDir,
    running: bool,
}

/// The newest installed PostgreSQL's `bin` directory (Debian: /usr/lib/postgresql/N/bin).
fn postgres_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL server binaries in /usr/lib/postgresql")
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .expect("an initdb under /usr/lib/postgresql")
        .1
}

/// Runs `program args` as the postgres user and fails the test, with its output, if it fails.
fn as_postgres(program: &Path, args: &[&str]) -> Output {
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{}{}",
        program.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PgCluster {
    /// A new cluster, running (callers check `root_or_skip` first).
    pub fn start() -> Self {
        let bin = postgres_bin();
        let dir = TempDir::new().unwrap();
        let status = Command::new("chown")
            .args(["-R", "postgres:postgres"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "chown the cluster directory to postgres");
        let data = dir.path().join("data");
        as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "--no-instructions",
                "-E",
                "UTF8",
            ],
        );
        let mut cluster = Self {
            port: free_port(),
            bin,
            data,
            dir,
            running: false,
        };
        cluster.up();
        cluster
    }

    /// The cluster's `postgres` database, as brine's `database_url` takes it.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the (stopped) cluster on its port and waits until it accepts connections.
    pub fn up(&mut self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let log_text = || std::fs::read_to_string(self.dir.path().join("server.log"));
        let started = std::panic::catch_unwind(|| {
            as_postgres(
                &self.bin.join("pg_ctl"),
                &[
                    "-D",
                    self.data.to_str().unwrap(),
                    "-o",
                    &options,
                    "-l",
                    log.to_str().unwrap(),
                    "-w",
                    "-t",
                    "60",
                    "start",
                ],
            )
        });
        assert!(
            started.is_ok(),
            "the cluster did not start:\n{log_text:?}",
            log_text = log_text()
        );
        self.running = true;
    }

    /// Takes the cluster down the way `how` says.
    pub fn down(&mut self, how: Down) {
        match how {
            Down::Fast => self.pg_ctl_stop("fast"),
            Down::Immediate => self.pg_ctl_stop("immediate"),
            Down::Kill => self.kill_all(),
        }
        self.running = false;
    }

    /// Down and up again on the same port.
    pub fn restart(&mut self, how: Down) {
        self.down(how);
        self.up();
    }

    fn pg_ctl_stop(&self, mode: &str) {
        as_postgres(
            &self.bin.join("pg_ctl"),
            &[
                "-D",
                self.data.to_str().unwrap(),
                "-m",
                mode,
                "-w",
                "-t",
                "60",
                "stop",
            ],
        );
    }

    /// SIGKILL to the postmaster and every process it started, at once: killing the
    /// postmaster alone leaves its backends holding the shared memory, and a new postmaster
    /// refuses to start until they are gone. The postmaster is stopped (SIGSTOP) first, so
    /// that it starts no process after its children are listed.
    fn kill_all(&self) {
        let pid_file = std::fs::read_to_string(self.data.join("postmaster.pid")).unwrap();
        let postmaster = pid_file.lines().next().unwrap().trim().to_owned();
        let stopped = Command::new("kill")
            .args(["-STOP", &postmaster])
            .status()
            .unwrap();
        assert!(stopped.success(), "SIGSTOP the postmaster {postmaster}");
        let mut pids = children_of(&postmaster);
        pids.push(postmaster);
        // A backend may have ended since it was listed: `kill` then says so and fails; the
        // check below is what counts.
        let _ = Command::new("kill")
            .arg("-KILL")
            .args(&pids)
            .stderr(std::process::Stdio::null())
            .status();
        // Gone once /proc no longer lists the postmaster and none of its processes.
        for _ in 0..600 {
            if !pids.iter().any(|p| alive(p)) {
                // The lock files of a dead postmaster (data directory and socket): PostgreSQL
                // takes an unreaped one (a zombie keeps its pid) for a running server.
                let _ = std::fs::remove_file(self.data.join("postmaster.pid"));
                let socket = format!(".s.PGSQL.{}", self.port);
                let _ = std::fs::remove_file(self.dir.path().join(format!("{socket}.lock")));
                let _ = std::fs::remove_file(self.dir.path().join(socket));
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("the cluster's processes outlived SIGKILL: {pids:?}");
    }

    /// The server's own log, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

/// Whether `pid` is still running (a zombie, dead but not yet reaped, holds nothing).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat
            .rfind(')')
            .and_then(|end| stat[end + 1..].split_whitespace().next());
        state != Some("Z")
    })
}

/// The process ids whose parent is `parent` (from /proc/PID/stat's fourth field).
fn children_of(parent: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{name}/stat")).ok()?;
            // The command name is in parentheses and may hold spaces: fields follow the last ')'.
            let after = &stat[stat.rfind(')')? + 1..];
            let ppid = after.split_whitespace().nth(1)?;
            (ppid == parent).then_some(name)
        })
        .collect()
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.running {
            let _ = Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"))
                .args([
                    "-D",
                    self.data.to_str().unwrap_or(""),
                    "-m",
                    "immediate",
                    "-w",
                ])
                .arg("stop")
                .output();
        }
    }
}
