//! Downloads: a file of a snapshot, or a folder as a tar archive, streamed
//! as it is read, so that memory stays bounded whatever the size.

use super::pages::{blocking, located, node_at, Fail};
use super::{paths, App};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use cairn_engine::dump;
use std::io::Write;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Bytes gathered before they are handed to the response.
const PIECE: usize = 256 << 10;
/// Pieces waiting to be sent, at most.
const QUEUED: usize = 4;

/// Hands what is written to the response, a piece at a time, waiting
/// while the client is slower than the repository.
struct ToBody {
    piece: Vec<u8>,
    sender: mpsc::Sender<std::io::Result<Bytes>>,
}

impl ToBody {
    fn send(&mut self) -> std::io::Result<()> {
        let piece = std::mem::replace(&mut self.piece, Vec::with_capacity(PIECE));
        self.sender
            .blocking_send(Ok(Bytes::from(piece)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client left"))
    }
}

impl Write for ToBody {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(PIECE - self.piece.len());
        self.piece.extend_from_slice(&buf[..n]);
        if self.piece.len() == PIECE {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.piece.is_empty() {
            true => Ok(()),
            false => self.send(),
        }
    }
}

pub async fn download(State(app): State<Arc<App>>, uri: Uri) -> Response {
    blocking(app, move |app| {
        let (_, read, index, names) = located(app, &uri)?;
        let (id, snap) = &read.snapshots[index];
        let inner = paths::inner(&names);
        node_at(&read.repo, snap, &inner)?;
        let target = dump::resolve(&read.repo, snap, &inner).map_err(|e| match e {
            // A link or special file: there is nothing to download.
            cairn_engine::Error::Invalid(_) => Fail::NotFound(e.to_string()),
            e => Fail::Server(e.to_string()),
        })?;
        let base = names
            .last()
            .map_or_else(|| id.short(), |n| crate::output::text(n));
        let (name, kind) = match &target {
            dump::DumpTarget::Tree(..) => (format!("{base}.tar"), "application/x-tar"),
            dump::DumpTarget::File(_) => (base, "application/octet-stream"),
        };
        let length = match &target {
            dump::DumpTarget::File(node) => Some(node.size),
            dump::DumpTarget::Tree(..) => None,
        };
        let (sender, receiver) = mpsc::channel(QUEUED);
        let repo = read.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = ToBody {
                piece: Vec::with_capacity(PIECE),
                sender: sender.clone(),
            };
            // A failure part way ends the response early: the client sees
            // a short or broken download, never a complete-looking one.
            if let Err(e) = dump::write(&repo.repo, &target, &mut out) {
                let _ = sender.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        });
        let stream = futures_util::stream::unfold(receiver, |mut r| async move {
            r.recv().await.map(|piece| (piece, r))
        });
        let mut response = (
            [
                (header::CONTENT_TYPE, kind.to_string()),
                (header::CONTENT_DISPOSITION, disposition(&name)),
            ],
            Body::from_stream(stream),
        )
            .into_response();
        if let Some(n) = length {
            response
                .headers_mut()
                .insert(header::CONTENT_LENGTH, n.into());
        }
        Ok(response)
    })
    .await
}

/// `Content-Disposition` for a download named `name`: an ASCII stand-in,
/// and the name itself encoded (RFC 6266).
fn disposition(name: &str) -> String {
    let plain: String = name
        .chars()
        .map(|c| match c.is_ascii_graphic() && c != '"' && c != '\\' {
            true => c,
            false => '_',
        })
        .collect();
    format!(
        "attachment; filename=\"{plain}\"; filename*=UTF-8''{}",
        paths::encode(name.as_bytes())
    )
}
