//! What the end-to-end tests share: the real `device-login` binary, started against the
//! service, and read until it ends.

use std::process::Stdio;
use std::time::Duration;

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

/// Registers `id` (polling every second, to keep the test short) and starts a login.
pub async fn start(env: &TestEnv, base: &str, id: &str, confidential: bool) -> Login {
    let mut new = new_client(id, confidential);
    new.poll_interval = Some(Duration::from_secs(1));
    let (_, secret) = env.register(new).await;

    let mut command = Command::new(env!("CARGO_BIN_EXE_device-login"));
    command
        .args([
            "--issuer",
            base,
            "--client-id",
            id,
            "--scope",
            "read write",
            "--print-token",
            "--no-qr",
        ])
        .env_remove("DEVICE_LOGIN_CLIENT_SECRET")
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(secret) = &secret {
        command.env("DEVICE_LOGIN_CLIENT_SECRET", secret.expose());
    }
    let mut child = command.spawn().expect("the device-login binary starts");

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
        secret: secret.map(|s| s.expose().to_owned()),
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
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
    if let Some(secret) = &login.secret {
        assert!(
            !stderr.contains(secret) && !stdout.contains(secret),
            "the secret was echoed"
        );
    }
    (status.code().unwrap_or(-1), stdout, stderr)
}
