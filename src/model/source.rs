//! Where `model import` finds a CTranslate2 model: in wheels (zip files) and folders.
//!
//! Each `--from` is searched whole for `model.bin`, or for `model.bin.partN` when a model
//! is split over several wheels (the parts are joined in the order of N, whatever the
//! order of `--from`). vocabulary.txt is taken from beside model.bin or the first part
//! that has one. Opening the model yields one sequential reader over all parts; nothing
//! here reads the model's contents, and nothing is extracted to disk.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use zip::ZipArchive;

use crate::errors::ModelError;

const MODEL: &str = "model.bin";
const PART_PREFIX: &str = "model.bin.part";
const VOCABULARY: &str = "vocabulary.txt";

/// How deep a folder is searched; wheels nest the model two or three folders down.
const MAX_DEPTH: usize = 8;

/// A file in a folder or inside a wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    File(PathBuf),
    /// A wheel and an entry name inside it ("pkg/model/model.bin").
    Entry(PathBuf, String),
}

impl Location {
    /// A path that shows the user where the file is: `wheel.whl/pkg/model/model.bin`.
    fn display_path(&self) -> PathBuf {
        match self {
            Location::File(path) => path.clone(),
            Location::Entry(wheel, entry) => wheel.join(entry),
        }
    }

    /// The vocabulary.txt beside this file, if one exists.
    fn sibling_vocabulary(&self) -> Option<Location> {
        match self {
            Location::File(path) => {
                let vocabulary = path.with_file_name(VOCABULARY);
                vocabulary.is_file().then_some(Location::File(vocabulary))
            }
            Location::Entry(wheel, entry) => {
                let folder = entry.rsplit_once('/').map_or("", |(folder, _)| folder);
                let name = if folder.is_empty() { VOCABULARY.to_owned() } else { format!("{folder}/{VOCABULARY}") };
                let archive = open_wheel(wheel).ok()?;
                archive.index_for_name(&name).map(|_| Location::Entry(wheel.clone(), name))
            }
        }
    }

    fn open(&self) -> Result<OpenFile, ModelError> {
        let read_error = |source| ModelError::Read { path: self.display_path(), source };
        Ok(match self {
            Location::File(path) => OpenFile::File(File::open(path).map_err(read_error)?),
            Location::Entry(wheel, entry) => OpenFile::Entry(open_wheel(wheel)?, self.display_path(), entry.clone()),
        })
    }
}

/// An opened location, ready to hand out a reader.
enum OpenFile {
    File(File),
    /// The wheel, the path to show for the entry, the entry's name.
    Entry(ZipArchive<File>, PathBuf, String),
}

/// The model's parts, in order, and its vocabulary.
#[derive(Debug)]
pub struct ModelSource {
    parts: Vec<Location>,
    vocabulary: Location,
}

impl ModelSource {
    /// Finds the model in the `--from` wheels and folders.
    pub fn find(sources: &[PathBuf]) -> Result<ModelSource, ModelError> {
        let mut whole: Vec<Location> = Vec::new();
        let mut parts: Vec<(u32, Location)> = Vec::new();
        for source in sources {
            let found = candidates(source)?;
            if found.is_empty() {
                return Err(ModelError::NoModelBin { path: source.clone() });
            }
            for (part, location) in found {
                match part {
                    None => whole.push(location),
                    Some(n) => parts.push((n, location)),
                }
            }
        }
        // A whole model.bin must be the only model file given.
        if !whole.is_empty() && whole.len() + parts.len() > 1 {
            let mut all = whole.iter().chain(parts.iter().map(|(_, location)| location)).map(Location::display_path);
            let (first, second) = (all.next().unwrap_or_default(), all.next().unwrap_or_default());
            return Err(ModelError::TwoModels { first, second });
        }
        let parts = match whole.pop() {
            Some(model) => vec![model],
            None if parts.is_empty() => return Err(ModelError::NoModelBin { path: PathBuf::from("--from") }),
            None => ordered_parts(parts)?,
        };
        let vocabulary = parts
            .iter()
            .find_map(Location::sibling_vocabulary)
            .ok_or_else(|| ModelError::NoVocabulary { model: parts[0].display_path() })?;
        Ok(ModelSource { parts, vocabulary })
    }

    /// The path error messages use for the model: model.bin or its first part.
    pub fn model_path(&self) -> PathBuf {
        self.parts[0].display_path()
    }

    pub fn vocabulary_path(&self) -> PathBuf {
        self.vocabulary.display_path()
    }

    pub fn read_vocabulary(&self) -> Result<Vec<u8>, ModelError> {
        let mut file = self.vocabulary.open()?;
        let mut text = Vec::new();
        let read = file.reader()?.read_to_end(&mut text);
        read.map_err(|source| ModelError::Read { path: self.vocabulary_path(), source })?;
        Ok(text)
    }

    /// Opens every part; [`ModelParts::reader`] then reads them as one stream.
    pub fn open(&self) -> Result<ModelParts, ModelError> {
        let files = self.parts.iter().map(Location::open).collect::<Result<_, _>>()?;
        Ok(ModelParts { files })
    }
}

/// The opened parts of a model.
pub struct ModelParts {
    files: Vec<OpenFile>,
}

impl ModelParts {
    /// All parts, one after the other, as a single stream.
    pub fn reader(&mut self) -> Result<Box<dyn Read + '_>, ModelError> {
        let mut stream: Box<dyn Read + '_> = Box::new(io::empty());
        for file in &mut self.files {
            stream = Box::new(stream.chain(file.reader()?));
        }
        Ok(stream)
    }
}

impl OpenFile {
    fn reader(&mut self) -> Result<Box<dyn Read + '_>, ModelError> {
        match self {
            OpenFile::File(file) => Ok(Box::new(file)),
            OpenFile::Entry(archive, path, entry) => {
                let file = archive
                    .by_name(entry)
                    .map_err(|source| ModelError::BadWheelEntry { path: path.clone(), source })?;
                Ok(Box::new(file))
            }
        }
    }
}

fn open_wheel(path: &Path) -> Result<ZipArchive<File>, ModelError> {
    let file = File::open(path).map_err(|source| ModelError::Read { path: path.to_owned(), source })?;
    ZipArchive::new(file).map_err(|source| ModelError::NotWheelOrFolder { path: path.to_owned(), source })
}

/// What a file name says: `Some(None)` for model.bin, `Some(Some(n))` for part n.
fn model_file_kind(file_name: &str) -> Option<Option<u32>> {
    if file_name == MODEL {
        return Some(None);
    }
    let number = file_name.strip_prefix(PART_PREFIX)?;
    let digits_only = !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit());
    number.parse().ok().filter(|&n| digits_only && n > 0).map(Some)
}

/// Every model.bin and model.bin.partN inside one `--from`, sorted by path.
fn candidates(source: &Path) -> Result<Vec<(Option<u32>, Location)>, ModelError> {
    let metadata = fs::metadata(source).map_err(|error| ModelError::Read { path: source.to_owned(), source: error })?;
    let mut found = Vec::new();
    if metadata.is_dir() {
        walk(source, 0, &mut found)?;
    } else {
        let archive = open_wheel(source)?;
        for entry in archive.file_names() {
            let Ok(entry) = entry else { continue };
            let file_name = entry.rsplit('/').next().unwrap_or(&entry);
            if let Some(part) = model_file_kind(file_name) {
                found.push((part, Location::Entry(source.to_owned(), entry.clone().into_owned())));
            }
        }
    }
    found.sort_by_key(|(_, location)| location.display_path());
    Ok(found)
}

fn walk(folder: &Path, depth: usize, found: &mut Vec<(Option<u32>, Location)>) -> Result<(), ModelError> {
    let read_error = |source| ModelError::Read { path: folder.to_owned(), source };
    for entry in fs::read_dir(folder).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        if path.is_dir() {
            if depth < MAX_DEPTH {
                walk(&path, depth + 1, found)?;
            }
        } else if let Some(part) = path.file_name().and_then(|name| name.to_str()).and_then(model_file_kind) {
            found.push((part, Location::File(path)));
        }
    }
    Ok(())
}

/// Parts 1 to N, each exactly once.
fn ordered_parts(mut parts: Vec<(u32, Location)>) -> Result<Vec<Location>, ModelError> {
    parts.sort_by_key(|(n, _)| *n);
    for pair in parts.windows(2) {
        if pair[0].0 == pair[1].0 {
            let (first, second) = (pair[0].1.display_path(), pair[1].1.display_path());
            return Err(ModelError::DuplicatePart { part: pair[0].0, first, second });
        }
    }
    let numbers: Vec<u32> = parts.iter().map(|(n, _)| *n).collect();
    if let Some(missing) = (1..).zip(&numbers).find(|(expected, n)| expected != *n).map(|(expected, _)| expected) {
        let found = numbers.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
        return Err(ModelError::MissingPart { missing, found });
    }
    Ok(parts.into_iter().map(|(_, location)| location).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_say_whole_model_or_part() {
        assert_eq!(model_file_kind("model.bin"), Some(None));
        assert_eq!(model_file_kind("model.bin.part1"), Some(Some(1)));
        assert_eq!(model_file_kind("model.bin.part12"), Some(Some(12)));
        for other in ["model.bin.part0", "model.bin.part", "model.bin.part+1", "model.bin.partx", "model.bin.gz", "x"] {
            assert_eq!(model_file_kind(other), None, "{other}");
        }
    }

    fn part(n: u32) -> (u32, Location) {
        (n, Location::File(PathBuf::from(format!("w{n}/model.bin.part{n}"))))
    }

    #[test]
    fn parts_are_ordered_by_number() {
        let ordered = ordered_parts(vec![part(2), part(1), part(3)]).unwrap();
        assert_eq!(ordered, [part(1).1, part(2).1, part(3).1]);
    }

    #[test]
    fn missing_and_duplicate_parts_are_named() {
        let error = ordered_parts(vec![part(1), part(3)]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "model.bin.part2 is missing (found part 1, 3); pass every part's wheel with its own --from"
        );
        let error = ordered_parts(vec![part(2)]).unwrap_err();
        assert!(matches!(error, ModelError::MissingPart { missing: 1, .. }));
        let error = ordered_parts(vec![part(1), part(2), part(2)]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "model.bin.part2 was given twice (w2/model.bin.part2 and w2/model.bin.part2); pass each part once"
        );
    }
}
