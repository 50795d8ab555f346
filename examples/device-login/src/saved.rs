//! The saved sign-ins: one refresh token per authorization server and client, in a JSON
//! file that only the current user can read, so that the next run refreshes instead of
//! asking the person for a code again.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One saved sign-in.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct Session {
    pub issuer: String,
    pub client_id: String,
    pub refresh_token: String,
    /// The scope the server granted, space separated.
    #[serde(default)]
    pub scope: String,
}

#[derive(Debug, Default, Deserialize, Serialize)]
struct File {
    #[serde(default)]
    sessions: Vec<Session>,
}

/// The file of saved sign-ins.
#[derive(Debug)]
pub struct Saved {
    path: PathBuf,
}

impl Saved {
    pub fn at(path: PathBuf) -> Self {
        Self { path }
    }

    /// Where sign-ins are kept when `--credentials` does not say:
    /// `$XDG_CONFIG_HOME/device-login/credentials.json`, else under `~/.config`.
    pub fn default_path() -> Option<PathBuf> {
        let non_empty = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        non_empty("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| non_empty("HOME").map(|home| PathBuf::from(home).join(".config")))
            .map(|dir| dir.join("device-login").join("credentials.json"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved sign-in for this server and client, if there is one. An unreadable
    /// file counts as empty: the worst outcome is that the person signs in again.
    pub fn get(&self, issuer: &str, client_id: &str) -> Option<Session> {
        self.read()
            .sessions
            .into_iter()
            .find(|s| s.issuer == issuer && s.client_id == client_id)
    }

    /// Saves `session`, replacing any earlier one for the same server and client.
    pub fn put(&self, session: Session) -> std::io::Result<()> {
        let mut file = self.read();
        file.sessions
            .retain(|s| !(s.issuer == session.issuer && s.client_id == session.client_id));
        file.sessions.push(session);
        self.write(&file)
    }

    /// Forgets the sign-in for this server and client (only if it holds `token`, when
    /// given); true if there was one.
    pub fn remove(
        &self,
        issuer: &str,
        client_id: &str,
        token: Option<&str>,
    ) -> std::io::Result<bool> {
        let mut file = self.read();
        let before = file.sessions.len();
        file.sessions.retain(|s| {
            let ours = s.issuer == issuer && s.client_id == client_id;
            !(ours && token.is_none_or(|t| t == s.refresh_token))
        });
        if file.sessions.len() == before {
            return Ok(false);
        }
        self.write(&file)?;
        Ok(true)
    }

    fn read(&self) -> File {
        std::fs::read(&self.path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// Replaces the file in one step (a private temporary file renamed over it), so a
    /// crash never leaves half a token behind.
    fn write(&self, file: &File) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(file).map_err(std::io::Error::other)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir)?;
        }
        let mut temporary = self.path.clone().into_os_string();
        temporary.push(format!(".{}.tmp", std::process::id()));
        let temporary = PathBuf::from(temporary);
        write_private(&temporary, &json)?;
        std::fs::rename(&temporary, &self.path).inspect_err(|_| {
            let _ = std::fs::remove_file(&temporary);
        })
    }
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Writes `contents` to a new or truncated file that only the current user can read.
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        options.mode(0o600);
        let mut file = options.open(path)?;
        // An existing file keeps its old mode on open: tighten it as well.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(contents.as_bytes())?;
        file.write_all(b"\n")
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path)?;
        file.write_all(contents.as_bytes())
    }
}
