//! The backend a repository location names, with what the environment says
//! about reaching it: S3 credentials and region come from the variables the
//! AWS tools use, the SSH command from `CAIRN_SSH_COMMAND`. Every backend
//! repeats requests that fail for a passing reason, and counts them.

use crate::or_env;
use cairn_engine::backend::{
    Backend, LocalBackend, Location, RetryPolicy, Retrying, S3Backend, S3Config, S3Credentials,
    S3Location, SftpBackend, SftpConfig, SftpLocation,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The region S3 requests are signed for when the environment names none.
const DEFAULT_REGION: &str = "us-east-1";

/// A backend as the commands use it.
type Storage = Arc<Retrying<Arc<dyn Backend>>>;

/// How to reach remote storage, and the backends opened so far (for the
/// count of repeated requests at the end).
#[derive(Clone)]
pub struct Reach {
    /// How long one request may take.
    pub timeout: Duration,
    /// `--ssh-command`, split into words.
    pub ssh_command: Option<String>,
    /// Requests to keep in flight to remote storage.
    pub connections: usize,
    opened: Arc<Mutex<Vec<Storage>>>,
}

impl Reach {
    /// Settings from the options.
    pub fn new(timeout: Duration, ssh_command: Option<String>, connections: usize) -> Reach {
        Reach {
            timeout,
            ssh_command,
            connections,
            opened: Arc::default(),
        }
    }

    /// The backend for the location `text`.
    pub fn backend(&self, text: &str) -> anyhow::Result<Arc<dyn Backend>> {
        let inner: Arc<dyn Backend> = match Location::parse(text)? {
            Location::Local(path) => Arc::new(LocalBackend::new(path)),
            Location::S3(location) => Arc::new(S3Backend::new(self.s3_config(location)?)?),
            Location::Sftp(location) => Arc::new(SftpBackend::new(self.sftp_config(location)?)?),
        };
        let storage = Arc::new(Retrying::new(inner, RetryPolicy::default()));
        self.opened.lock().unwrap().push(storage.clone());
        Ok(storage)
    }

    /// One line per backend whose requests had to be repeated: how many,
    /// and the last failure.
    pub fn retry_report(&self) -> Vec<String> {
        let opened = self.opened.lock().unwrap();
        opened
            .iter()
            .filter(|s| s.retries() > 0)
            .map(|s| {
                format!(
                    "{}: {} repeated after failures that passed (last: {})",
                    s.location(),
                    crate::output::plural(s.retries(), "request"),
                    s.last_failure().unwrap_or_default()
                )
            })
            .collect()
    }

    /// What the S3 backend needs besides the location, from the environment.
    fn s3_config(&self, location: S3Location) -> anyhow::Result<S3Config> {
        let required = |var: &str| -> anyhow::Result<String> {
            or_env(None, var)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "{location} needs S3 credentials: set AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY ({var} is not set)"
                )
            })
        };
        let credentials = S3Credentials {
            access_key_id: required("AWS_ACCESS_KEY_ID")?,
            secret_access_key: required("AWS_SECRET_ACCESS_KEY")?,
            session_token: or_env(None, "AWS_SESSION_TOKEN")?,
        };
        let region = match or_env(None, "AWS_REGION")? {
            Some(region) => region,
            None => or_env(None, "AWS_DEFAULT_REGION")?.unwrap_or_else(|| DEFAULT_REGION.into()),
        };
        Ok(S3Config {
            location,
            region,
            credentials,
            timeout: self.timeout,
            connections: self.connections,
        })
    }

    /// What the SFTP backend needs besides the location.
    fn sftp_config(&self, location: SftpLocation) -> anyhow::Result<SftpConfig> {
        let command = or_env(self.ssh_command.clone(), "CAIRN_SSH_COMMAND")?;
        let ssh_command: Vec<String> = match command {
            Some(c) => c.split_whitespace().map(str::to_string).collect(),
            None => vec!["ssh".into()],
        };
        Ok(SftpConfig {
            location,
            ssh_command,
            timeout: self.timeout,
            connections: self.connections,
        })
    }
}
