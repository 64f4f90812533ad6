//! `<out>.partial`: where a model file is written before it may replace `<out>`.
//!
//! The importer and the quantizer write here, check the result with
//! [`inspect`](super::inspect), then [`PartialFile::commit`] syncs it and renames it over
//! `<out>`. Dropped uncommitted (an error or a panic), the partial file is removed, so
//! `<out>` is always either the old file or a complete new one.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::errors::ModelError;

/// `<out>.partial`, removed on drop unless committed.
pub struct PartialFile {
    /// The file being written.
    pub path: PathBuf,
    out: PathBuf,
    file: File,
    committed: bool,
}

impl PartialFile {
    pub fn create(out: &Path) -> Result<PartialFile, ModelError> {
        let write_error = |source| ModelError::Write { path: out.to_owned(), source };
        let mut name = out.file_name().ok_or_else(|| write_error(io::ErrorKind::InvalidInput.into()))?.to_owned();
        name.push(".partial");
        let path = out.with_file_name(name);
        let file = File::create(&path).map_err(write_error)?;
        Ok(PartialFile { path, out: out.to_owned(), file, committed: false })
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// Makes the file durable under its final name.
    pub fn commit(mut self) -> Result<(), ModelError> {
        let write_error = |source| ModelError::Write { path: self.out.clone(), source };
        self.file.sync_all().map_err(write_error)?;
        fs::rename(&self.path, &self.out).map_err(write_error)?;
        self.committed = true;
        // The rename itself is durable once the folder is synced.
        let folder = self.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        File::open(folder).and_then(|folder| folder.sync_all()).map_err(write_error)
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the error being reported matters more than a failed clean-up.
            let _ = fs::remove_file(&self.path);
        }
    }
}
