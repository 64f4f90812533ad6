//! Uploads: multipart bodies streamed chunk by chunk into the temp directory, limited
//! while they stream, then checked by content before a job may be queued.
//!
//! Input: a request body as a stream of byte chunks and its `Content-Type`.
//! Output: a [`TempUpload`] on disk (mode 0600 in a 0700 directory) plus the form's text
//! fields. Nothing is held in memory beyond one chunk. A [`TempUpload`] deletes its file
//! when dropped unless handed to a job, so a rejected upload, an error or a client that
//! disconnects mid-way leaves nothing behind.
//!
//! SECURITY: the client's file name is kept as display text only; files on disk are named
//! by job id, so no name can reach outside the temp directory.

use std::io::Read as _;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::io::AsyncWriteExt as _;
use uuid::Uuid;

use crate::audio::{self, Sniffed, SourceInfo};
use crate::config::Node;
use crate::errors::{DecodeError, UploadError};

const UPLOAD_SUFFIX: &str = "upload";
const PARTIAL_SUFFIX: &str = "partial";

/// The directory holding uploads: `<id>.partial` while streaming, `<id>.upload` once queued.
/// New job ids are minted here, as each upload starts.
#[derive(Debug, Clone)]
pub struct TempDir {
    path: PathBuf,
    node: Option<Node>,
}

impl TempDir {
    /// Creates the directory (mode 0700) if needed. Job ids carry `node`, if given.
    pub fn open(path: &Path, node: Option<Node>) -> std::io::Result<TempDir> {
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
        Ok(TempDir { path: path.to_owned(), node })
    }

    fn file(&self, id: Uuid, suffix: &str) -> PathBuf {
        self.path.join(format!("{}.{suffix}", id.simple()))
    }

    /// Where a queued job's upload lives.
    pub fn upload_path(&self, id: Uuid) -> PathBuf {
        self.file(id, UPLOAD_SUFFIX)
    }

    /// The size of a queued job's upload, if it is there.
    pub fn upload_size(&self, id: Uuid) -> Option<u64> {
        std::fs::metadata(self.upload_path(id)).ok().map(|meta| meta.len())
    }

    /// Deletes a job's upload; a file already gone is fine.
    pub fn remove_upload(&self, id: Uuid) {
        remove_quietly(&self.upload_path(id));
    }

    /// Deletes every file but the uploads of the given jobs; returns how many went.
    pub fn remove_all_except(&self, keep: &[Uuid]) -> usize {
        let keep: Vec<PathBuf> = keep.iter().map(|id| self.upload_path(*id)).collect();
        let Ok(entries) = std::fs::read_dir(&self.path) else { return 0 };
        let mut removed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            if !keep.contains(&path) {
                tracing::info!(file = %path.display(), "removing a temp file no job owns");
                remove_quietly(&path);
                removed += 1;
            }
        }
        removed
    }

    /// Writes and removes a probe file, for `/readyz`.
    pub fn check_writable(&self) -> std::io::Result<()> {
        let probe = self.path.join(".readyz");
        std::fs::write(&probe, b"")?;
        std::fs::remove_file(&probe)
    }

    /// Starts a new upload file for a new job id.
    async fn create(&self) -> Result<(TempUpload, tokio::fs::File), UploadError> {
        let id = new_job_id(self.node);
        let upload = TempUpload { dir: self.path.clone(), id, size: 0, kept: false };
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(upload.partial_path())
            .await
            .map_err(UploadError::Write)?;
        Ok((upload, file))
    }
}

/// A job id: a UUIDv7, so ids sort by creation time (the job list pages on that), whose last byte
/// is the node when the appliance is one of several behind nginx, so that nginx routes every request
/// for the job to the appliance holding it (nginx/cluster.conf.example).
///
/// SECURITY: ids must not be guessable from one another. A v7 id holds 48 bits of time, a 42-bit
/// counter seeded at random every millisecond, and 32 random bits; the node takes 8 of those 32, so
/// an id minted in the same millisecond as a known one still differs from it by 24 random bits (and
/// the caller must own the job, or be an admin, to see it at all).
fn new_job_id(node: Option<Node>) -> Uuid {
    let mut bytes = Uuid::now_v7().into_bytes();
    if let Some(Node(node)) = node {
        bytes[15] = node;
    }
    Uuid::from_bytes(bytes)
}

fn remove_quietly(path: &Path) {
    if let Err(error) = std::fs::remove_file(path)
        && error.kind() != std::io::ErrorKind::NotFound
    {
        tracing::error!(file = %path.display(), %error, "cannot remove a temp file");
    }
}

/// An upload on disk that is deleted when dropped, unless [`TempUpload::keep`] handed it on.
#[derive(Debug)]
pub struct TempUpload {
    dir: PathBuf,
    id: Uuid,
    size: u64,
    kept: bool,
}

impl TempUpload {
    /// The id of the job this upload will become.
    pub fn id(&self) -> Uuid {
        self.id
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    fn partial_path(&self) -> PathBuf {
        self.dir.join(format!("{}.{PARTIAL_SUFFIX}", self.id.simple()))
    }

    /// The file as it is now, for checks before it is kept.
    pub fn path(&self) -> PathBuf {
        self.partial_path()
    }

    /// Hands the file to a job: renamed to `<id>.upload`, where the job's worker and the
    /// start-up recovery look for it.
    pub fn keep(mut self) -> std::io::Result<()> {
        std::fs::rename(self.partial_path(), self.dir.join(format!("{}.{UPLOAD_SUFFIX}", self.id.simple())))?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for TempUpload {
    fn drop(&mut self) {
        if !self.kept {
            remove_quietly(&self.partial_path());
        }
    }
}

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
            let (mut upload, mut out) = temp.create().await?;
            while let Some(chunk) = idle(limits, field.chunk()).await?.map_err(UploadError::Malformed)? {
                upload.size += chunk.len() as u64;
                if upload.size > limits.max_file_bytes {
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
    fn job_ids_end_with_the_node_and_stay_time_ordered_v7_uuids() {
        let ids: Vec<Uuid> = (0..200).map(|_| new_job_id(Some(Node(0xa1)))).collect();
        for id in &ids {
            assert_eq!(id.get_version_num(), 7);
            assert!(id.hyphenated().to_string().ends_with("a1"), "{id}");
        }
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "ids sort by creation");
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        // Without a node the last byte stays random: 200 ids do not all share one.
        let last: std::collections::HashSet<u8> = (0..200).map(|_| new_job_id(None).as_bytes()[15]).collect();
        assert!(last.len() > 1);
    }

    #[test]
    fn plainly_not_media_types() {
        assert!(is_plainly_not_media("text/plain"));
        assert!(is_plainly_not_media("image/png"));
        assert!(!is_plainly_not_media("audio/mpeg"));
        assert!(!is_plainly_not_media("application/octet-stream"));
    }
}
