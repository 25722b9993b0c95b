//! The backend a repository location names, with what the environment says
//! about reaching it: S3 credentials and region come from the variables the
//! AWS tools use.

use crate::or_env;
use cairn_engine::backend::{
    Backend, LocalBackend, Location, S3Backend, S3Config, S3Credentials, S3Location,
};
use std::sync::Arc;

/// The region S3 requests are signed for when the environment names none.
const DEFAULT_REGION: &str = "us-east-1";

/// The backend for the location `text`.
pub fn backend(text: &str) -> anyhow::Result<Arc<dyn Backend>> {
    Ok(match Location::parse(text)? {
        Location::Local(path) => Arc::new(LocalBackend::new(path)),
        Location::S3(location) => Arc::new(S3Backend::new(s3_config(location)?)?),
    })
}

/// What the S3 backend needs besides the location, from the environment.
fn s3_config(location: S3Location) -> anyhow::Result<S3Config> {
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
    })
}
