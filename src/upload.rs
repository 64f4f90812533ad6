//! Uploads: multipart bodies streamed chunk by chunk into the spool, limited while they
//! stream, then checked by content before a job may be queued.
//!
//! Input: a request body as a stream of byte chunks and its `Content-Type`.
//! Output: a [`TempUpload`] in the spool (see `spool.rs`) plus the form's text fields.
//! Nothing is held in memory beyond one chunk.
//!
//! SECURITY: the client's file name is kept as display text only; files on disk are named
//! by job id, so no name can reach outside the temp directory.

use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::io::AsyncWriteExt as _;

use crate::audio::{self, Sniffed, SourceInfo};
use crate::errors::{DecodeError, UploadError};
use crate::spool::{TempDir, TempUpload};

/// Bounds on what one multipart request may make the server do.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_file_bytes: u64,
    /// Parts in one form; a few are needed, thousands are an attack.
    pub max_parts: usize,
    /// Bytes in one text field (language, prompt, ...).
    pub max_field_bytes: usize,
    /// Longest wait for the next chunk of the body before the upload is abandoned.
    pub idle_timeout: Duration,
}

/// A complete multipart upload: the file on disk and the form's text fields.
#[derive(Debug)]
pub struct Received {
    pub upload: TempUpload,
    /// The client's file name, cleaned for display.
    pub file_name: String,
    /// The part's declared `Content-Type`.
    pub declared_type: Option<String>,
    pub fields: Vec<(String, String)>,
}

impl Received {
    /// The last value of a text field.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields.iter().rev().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// Every value of a repeated field such as `timestamp_granularities[]`.
    pub fn fields_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields.iter().filter(move |(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// Streams a `multipart/form-data` body: the part named `file` to disk, others as text.
pub async fn receive<S, E>(
    temp: &TempDir,
    content_type: Option<&str>,
    body: S,
    limits: &Limits,
) -> Result<Received, UploadError>
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>> + 'static,
{
    let boundary =
        content_type.and_then(|value| multer::parse_boundary(value).ok()).ok_or(UploadError::NotMultipart)?;
    let mut multipart = multer::Multipart::new(body, boundary);
    let mut file: Option<(TempUpload, String, Option<String>)> = None;
    let mut fields = Vec::new();
    let mut parts = 0;
    while let Some(mut field) = idle(limits, multipart.next_field()).await?.map_err(UploadError::Malformed)? {
        parts += 1;
        if parts > limits.max_parts {
            return Err(UploadError::TooManyParts { max: limits.max_parts });
        }
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            if file.is_some() {
                return Err(UploadError::SeveralFiles);
            }
            let file_name = display_name(field.file_name().unwrap_or("upload"));
            let declared = field.content_type().map(ToString::to_string);
            let (mut upload, mut out) = temp.create().await.map_err(UploadError::Write)?;
            while let Some(chunk) = idle(limits, field.chunk()).await?.map_err(UploadError::Malformed)? {
                if upload.grow(chunk.len() as u64) > limits.max_file_bytes {
                    return Err(UploadError::TooLarge { limit_mb: limits.max_file_bytes / 1_000_000 });
                }
                out.write_all(&chunk).await.map_err(UploadError::Write)?;
            }
            // Durable before the job is acknowledged: recovery trusts the file's size.
            out.sync_all().await.map_err(UploadError::Write)?;
            file = Some((upload, file_name, declared));
        } else {
            let mut value = Vec::new();
            while let Some(chunk) = idle(limits, field.chunk()).await?.map_err(UploadError::Malformed)? {
                if value.len() + chunk.len() > limits.max_field_bytes {
                    return Err(UploadError::FieldTooLarge { name, max: limits.max_field_bytes });
                }
                value.extend_from_slice(&chunk);
            }
            let value = String::from_utf8(value).map_err(|_| UploadError::FieldNotText { name: name.clone() })?;
            fields.push((name, value));
        }
    }
    let (upload, file_name, declared_type) = file.ok_or(UploadError::MissingFile)?;
    Ok(Received { upload, file_name, declared_type, fields })
}

async fn idle<T>(limits: &Limits, next: impl Future<Output = T>) -> Result<T, UploadError> {
    tokio::time::timeout(limits.idle_timeout, next)
        .await
        .map_err(|_| UploadError::Stalled { seconds: limits.idle_timeout.as_secs() })
}

/// A file name fit for display: its last path component, control and bidirectional
/// formatting characters removed, at most 200 characters.
pub fn display_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    let cleaned: String = last
        .chars()
        .filter(|c| {
            !c.is_control() && !matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .take(200)
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." { "upload".to_owned() } else { cleaned.to_owned() }
}

/// Checks an upload by content before it becomes a job: magic bytes first (a file that is
/// plainly something else is refused whatever its name), then, for content nobody
/// recognises, the declared type and the extension, and last the decoder, which must find
/// an audio track it can read. Blocking: run it off the async runtime.
pub fn check(path: &Path, file_name: &str, declared_type: Option<&str>) -> Result<SourceInfo, UploadError> {
    let mut head = Vec::with_capacity(8192);
    std::fs::File::open(path).and_then(|file| file.take(8192).read_to_end(&mut head)).map_err(UploadError::Write)?;
    match audio::sniff(&head) {
        Sniffed::NotMedia(found) => return Err(UploadError::Undecodable(DecodeError::NotAudio { found })),
        Sniffed::Media(_) => {}
        // Raw AAC, some MPEG streams and odd WAV variants have no magic infer knows, so the
        // name and declared type only refuse what is plainly something else.
        Sniffed::Unknown => {
            let guessed = mime_guess::from_path(file_name).first_raw();
            if let Some(claimed) = [declared_type, guessed].into_iter().flatten().find(|t| is_plainly_not_media(t)) {
                return Err(UploadError::Undecodable(DecodeError::NotAudio { found: claimed.to_owned() }));
            }
        }
    }
    audio::probe(path).map_err(UploadError::Undecodable)
}

fn is_plainly_not_media(mime: &str) -> bool {
    let mime = mime.to_ascii_lowercase();
    ["text/", "image/", "font/", "application/pdf", "application/json", "application/zip", "application/x-"]
        .iter()
        .any(|prefix| mime.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_lose_paths_controls_and_direction_marks() {
        assert_eq!(display_name("../../etc/passwd"), "passwd");
        assert_eq!(display_name("C:\\Users\\me\\talk.wav"), "talk.wav");
        assert_eq!(display_name("a\0b\u{202e}vaw.exe"), "abvaw.exe");
        assert_eq!(display_name(".."), "upload");
        assert_eq!(display_name(""), "upload");
        assert_eq!(display_name(&"x".repeat(5000)).chars().count(), 200);
    }

    #[test]
    fn plainly_not_media_types() {
        assert!(is_plainly_not_media("text/plain"));
        assert!(is_plainly_not_media("image/png"));
        assert!(!is_plainly_not_media("audio/mpeg"));
        assert!(!is_plainly_not_media("application/octet-stream"));
    }
}
