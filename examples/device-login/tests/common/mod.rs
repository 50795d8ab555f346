//! What the end-to-end tests share: the real `device-login` binary, started against the
//! service, and read until it ends. Each test file uses part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use device_flow::domain::NewClient;
use integration_tests::{TestEnv, new_client};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

pub const PATIENCE: Duration = Duration::from_secs(60);

/// A login in progress: the child process and the user code it showed.
pub struct Login {
    pub child: Child,
    pub user_code: String,
    pub stderr: tokio::task::JoinHandle<String>,
    /// A confidential client's secret, which must never be echoed.
    pub secret: Option<String>,
}

/// A registered device client and the file its sign-ins are saved in.
pub struct Device {
    pub base: String,
    pub id: String,
    pub secret: Option<String>,
    pub credentials: PathBuf,
}

impl Device {
    /// Registers `new` (polling every second, to keep the test short), with a fresh file
    /// for saved sign-ins.
    pub async fn register(env: &TestEnv, base: &str, mut new: NewClient) -> Self {
        static RUNS: AtomicUsize = AtomicUsize::new(0);
        new.overrides.poll_interval = Some(Duration::from_secs(1));
        let id = new.id.as_str().to_owned();
        let (_, secret) = env.register(new).await;
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let credentials = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("device-login-{}-{run}-{id}", std::process::id()))
            .join("credentials.json");
        Self {
            base: base.to_owned(),
            id,
            secret: secret.map(|s| s.expose().to_owned()),
            credentials,
        }
    }

    /// The `device-login` command for this client, with `args` after the common ones.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_device-login"));
        command
            .args(["--issuer", &self.base, "--client-id", &self.id])
            .args(["--print-token", "--no-qr"])
            .args(args)
            .env("DEVICE_LOGIN_CREDENTIALS", &self.credentials)
            .env_remove("DEVICE_LOGIN_CLIENT_SECRET")
            .env_remove("RUST_BACKTRACE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(secret) = &self.secret {
            command.env("DEVICE_LOGIN_CLIENT_SECRET", secret);
        }
        command
    }

    /// Runs `device-login` to its end without anyone deciding anything (a refresh, a
    /// logout); returns its exit code, standard output and standard error.
    pub async fn run(&self, args: &[&str]) -> (i32, String, String) {
        let output = tokio::time::timeout(PATIENCE, self.command(args).output())
            .await
            .expect("device-login ends within a minute")
            .expect("the device-login binary runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_clean(&stdout, &stderr, self.secret.as_deref());
        (output.status.code().unwrap_or(-1), stdout, stderr)
    }

    /// Starts a login that shows a code, and reads until it does.
    pub async fn start(&self, args: &[&str]) -> Login {
        let child = self
            .command(args)
            .spawn()
            .expect("the device-login binary starts");
        read_code(child, self.secret.clone()).await
    }
}

/// Registers `id` allowed `read write` and starts a login for that scope.
pub async fn start(env: &TestEnv, base: &str, id: &str, confidential: bool) -> Login {
    let device = Device::register(env, base, new_client(id, confidential)).await;
    device.start(&["--scope", "read write"]).await
}

async fn read_code(mut child: Child, secret: Option<String>) -> Login {
    // Read what the person would see until the code appears; keep the rest.
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = String::new();
    let user_code = tokio::time::timeout(PATIENCE, async {
        while let Ok(Some(line)) = lines.next_line().await {
            seen.push_str(&line);
            seen.push('\n');
            if let Some(code) = line.trim().strip_prefix("user code: ") {
                return code.to_owned();
            }
        }
        panic!("device-login ended without showing a code:\n{seen}");
    })
    .await
    .expect("a user code within a minute");
    let stderr = tokio::spawn(async move {
        let mut rest = seen;
        while let Ok(Some(line)) = lines.next_line().await {
            rest.push_str(&line);
            rest.push('\n');
        }
        rest
    });
    Login {
        child,
        user_code,
        stderr,
        secret,
    }
}

/// Waits for the login to end; returns its exit code, standard output and standard error.
pub async fn finish(mut login: Login) -> (i32, String, String) {
    let status = tokio::time::timeout(PATIENCE, login.child.wait())
        .await
        .expect("device-login ends within a minute")
        .expect("an exit status");
    let mut stdout = String::new();
    if let Some(mut out) = login.child.stdout.take() {
        out.read_to_string(&mut stdout).await.expect("stdout");
    }
    let stderr = login.stderr.await.expect("stderr");
    assert_clean(&stdout, &stderr, login.secret.as_deref());
    (status.code().unwrap_or(-1), stdout, stderr)
}

/// No panic, no backtrace, and a confidential client's secret never echoed.
fn assert_clean(stdout: &str, stderr: &str, secret: Option<&str>) {
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    if let Some(secret) = secret {
        assert!(
            !stderr.contains(secret) && !stdout.contains(secret),
            "the secret was echoed"
        );
    }
}
