//! Telling people: a failed step, a recovery point objective that stopped
//! holding, and one that holds again. Each goes to the policy's webhook (a
//! JSON POST whose `text` field chat services show) and by email.
//!
//! A breach is announced once when it starts and once when it clears: the
//! breaches announced are kept in a small state file between commands.

use crate::metrics::write_atomically;
use crate::policy::Notify;
use crate::status::{State, Status};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// How long a notification may take to deliver.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(15);

/// Something to tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A step of a run failed (`message` says which and why).
    Failure { source: String, message: String },
    /// The source's RPO stopped holding in the repository.
    Breach {
        source: String,
        repository: String,
        why: String,
    },
    /// It holds again.
    Cleared { source: String, repository: String },
}

impl Event {
    /// One line for people.
    pub fn text(&self) -> String {
        match self {
            Event::Failure { source, message } => {
                format!("cairn: {source} failed: {message}")
            }
            Event::Breach {
                source,
                repository,
                why,
            } => format!("cairn: RPO BREACH of {source} in {repository}: {why}"),
            Event::Cleared { source, repository } => {
                format!("cairn: RPO of {source} in {repository} holds again")
            }
        }
    }

    fn json(&self) -> serde_json::Value {
        let (event, source, repository) = match self {
            Event::Failure { source, .. } => ("failure", source, None),
            Event::Breach {
                source, repository, ..
            } => ("breach", source, Some(repository)),
            Event::Cleared { source, repository } => ("cleared", source, Some(repository)),
        };
        serde_json::json!({
            "text": self.text(),
            "event": event,
            "source": source,
            "repository": repository,
        })
    }
}

/// The events of `status` against the breaches announced before, kept in
/// the file `state` (which is updated), with `failures` (source and
/// message) first. Commands take turns reading and writing it.
pub fn events(
    status: &Status,
    failures: &[(String, String)],
    state: &Path,
) -> Result<Vec<Event>, String> {
    // Not the state file itself: it is replaced by a rename.
    let _turn = crate::run::lock_file(&state.with_extension("lock"), true)?;
    let announced: BTreeSet<(String, String)> = match std::fs::read(state) {
        Ok(bytes) if bytes.is_empty() => BTreeSet::new(),
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| format!("state file {} is damaged: {e}", state.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeSet::new(),
        Err(e) => return Err(format!("cannot read state file {}: {e}", state.display())),
    };
    let mut out: Vec<Event> = failures
        .iter()
        .map(|(source, message)| Event::Failure {
            source: source.clone(),
            message: message.clone(),
        })
        .collect();
    let mut now = announced.clone();
    for source in &status.sources {
        for repo in &source.repositories {
            let key = (source.source.clone(), repo.repository.clone());
            let breached = repo.state != State::Ok;
            if breached && now.insert(key.clone()) {
                let why = match (&repo.error, &repo.newest) {
                    (Some(e), _) => format!("cannot be read: {e}"),
                    (None, Some(n)) => format!(
                        "newest snapshot is {} s old, the RPO {} s",
                        n.age_seconds, source.rpo_seconds
                    ),
                    (None, None) => "no snapshot".into(),
                };
                out.push(Event::Breach {
                    source: key.0,
                    repository: key.1,
                    why,
                });
            } else if !breached && now.remove(&key) {
                out.push(Event::Cleared {
                    source: key.0,
                    repository: key.1,
                });
            }
        }
    }
    if now != announced {
        let text = serde_json::to_string(&now).expect("a set of strings serializes");
        write_atomically(state, &text)
            .map_err(|e| format!("cannot write state file {}: {e}", state.display()))?;
    }
    Ok(out)
}

/// Sends `event` everywhere `notify` says; what could not be delivered,
/// one line each (never with a secret).
pub fn deliver(notify: &Notify, event: &Event) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(url) = &notify.webhook {
        if let Err(e) = post(url, event) {
            problems.push(format!("webhook {}: {e}", origin(url)));
        }
    }
    if let Some(email) = &notify.email {
        if let Err(e) = mail(email, event) {
            problems.push(format!("email to {}: {e}", email.to));
        }
    }
    problems
}

fn post(url: &str, event: &Event) -> Result<(), String> {
    let client = reqwest::blocking::Client::builder()
        .timeout(DELIVERY_TIMEOUT)
        .build()
        .map_err(|e| e.to_string())?;
    let answer = client
        .post(url)
        .header("content-type", "application/json")
        .body(event.json().to_string())
        .send()
        .map_err(|e| e.without_url().to_string())?;
    match answer.status().is_success() {
        true => Ok(()),
        false => Err(format!("answered {}", answer.status())),
    }
}

fn mail(email: &crate::policy::Email, event: &Event) -> Result<(), String> {
    use lettre::{Message, SmtpTransport, Transport};
    let text = event.text();
    let message = Message::builder()
        .from(
            email
                .from
                .parse()
                .map_err(|e| format!("from address: {e}"))?,
        )
        .to(email.to.parse().map_err(|e| format!("to address: {e}"))?)
        .subject(text.clone())
        .body(text)
        .map_err(|e| e.to_string())?;
    let mailer = SmtpTransport::from_url(&email.smtp)
        .map_err(|e| format!("smtp {}: {e}", origin(&email.smtp)))?
        .timeout(Some(DELIVERY_TIMEOUT))
        .build();
    mailer.send(&message).map(drop).map_err(|e| e.to_string())
}

/// The scheme, host and port of `url`: its user information, path and
/// query may hold secrets (a chat webhook's path is its token).
fn origin(url: &str) -> String {
    let Some(scheme) = url.find("://") else {
        return "(not a URL)".into();
    };
    let rest = &url[scheme + 3..];
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host = authority.rsplit('@').next().unwrap_or(authority);
    format!("{}{host}", &url[..scheme + 3])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_origin_of_a_url_is_shown() {
        assert_eq!(
            origin("smtps://me:s3cret@mail.example.com:465"),
            "smtps://mail.example.com:465"
        );
        assert_eq!(
            origin("https://hooks.example.com/T0/B0/token"),
            "https://hooks.example.com"
        );
        assert_eq!(
            origin("http://u:p@127.0.0.1:8080?key=k"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(origin("smtp.example.com"), "(not a URL)");
    }
}
