//! The spool: uploads on disk between the request that brought them and the job that
//! transcribes them. `<id>.partial` while a body streams in, `<id>.upload` once its job is
//! queued, mode 0600 in a 0700 directory.
//!
//! A [`TempUpload`] deletes its file when dropped unless handed to a job, so a rejected
//! upload, an error or a client that disconnects mid-way leaves nothing behind. The job
//! queue finds, sizes and removes queued uploads through [`TempDir`]; start-up recovery
//! removes what no job owns. New job ids are minted here, as each upload starts.

use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use uuid::Uuid;

use crate::config::Node;

const UPLOAD_SUFFIX: &str = "upload";
const PARTIAL_SUFFIX: &str = "partial";

/// The directory holding uploads: `<id>.partial` while streaming, `<id>.upload` once queued.
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
    pub async fn create(&self) -> std::io::Result<(TempUpload, tokio::fs::File)> {
        let id = new_job_id(self.node);
        let upload = TempUpload { dir: self.path.clone(), id, size: 0, kept: false };
        let file =
            tokio::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(upload.partial_path()).await?;
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

    /// Counts bytes written to the file; returns the size so far.
    pub fn grow(&mut self, bytes: u64) -> u64 {
        self.size += bytes;
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
