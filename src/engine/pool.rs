//! The models a server offers: every ggml whisper model in its models directory, each named
//! by what `model info` reads, loaded on first use and kept while a memory budget allows.
//!
//! Input: the models directory, the default model's file (which is served even when it lies
//! elsewhere), the options every model loads with, and the budget in bytes. Output: the
//! catalogue ([`Installed`], read at start-up and again by [`Models::rescan`] on SIGHUP) and
//! loaded [`Engine`]s, shared as `Arc`s.
//!
//! A rescan offers new files at once and stops offering vanished ones; a loaded model whose
//! file vanished or changed (a package upgrade) is unloaded once no job holds it, and a changed
//! one loads afresh on its next use after that. The default model is always offered: if its
//! file vanished it keeps being served from memory, and is never unloaded for the budget.
//! A rescan that cannot read the directory keeps the catalogue it had.
//!
//! Names: the OpenAI model name the file's sizes belong to (`tiny.en`, `base`), with the
//! weights' type appended unless it is f16 (`base-q8_0`); a custom model is named by its
//! file (`ggml-mine.bin` -> `mine`). Two files of one name: the default model's wins, else
//! the first in file-name order, and the other is skipped with a warning. Files that are
//! not ggml whisper models (the Silero speech detector beside them, a wheel, a `.partial`
//! import) are skipped without failing.
//!
//! The budget counts each loaded model's file size (its weights; whisper.cpp's working
//! buffers per transcription come on top). Before a model loads, idle loaded models are
//! unloaded, least recently used first, until it fits; a model a job or live session holds
//! (an `Arc` besides this pool's own) is never unloaded. When the models in use alone
//! exceed the budget the new one loads anyway, with a warning, and [`Models::trim`] unloads
//! what has become idle once they are done. Each load and unload is logged and counted in
//! the metrics. Every clone of an engine is made under the pool's lock, so "no other `Arc`"
//! read under it means idle.
//!
//! Speed is measured here, not assumed: each finished job's real-time factor (wall time over
//! audio time) is kept per model, the last [`SPEED_SAMPLES`], so the page can say how much
//! slower a model is than the fastest (smallest) one on this machine.

use std::collections::{HashMap, VecDeque};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime};

use super::{Backend, Engine, EngineOptions, Request, check_request};
use crate::errors::{Causes, EngineError, ModelError};
use crate::metrics::Metrics;
use crate::model::{self, ModelSummary, TensorType};

/// The name OpenAI's clients send; it means the default model.
pub const OPENAI_MODEL: &str = "whisper-1";

/// Finished jobs per model whose speed is remembered.
const SPEED_SAMPLES: usize = 20;

/// One model file the server offers.
#[derive(Debug, Clone)]
pub struct Installed {
    /// What requests name it by: `tiny.en`, `base`, `base-q8_0`.
    pub name: String,
    pub path: PathBuf,
    pub summary: ModelSummary,
    /// Which file this was, to tell a replaced one (a package upgrade) on a rescan.
    stamp: FileStamp,
}

/// What tells one file from its replacement: dpkg writes a new file (a new inode) and keeps
/// the packaged modification time, so the inode, size and time together change on upgrade.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct FileStamp {
    inode: u64,
    size: u64,
    modified: Option<SystemTime>,
}

impl FileStamp {
    fn of(path: &Path) -> FileStamp {
        std::fs::metadata(path).map_or(FileStamp::default(), |metadata| FileStamp {
            inode: metadata.ino(),
            size: metadata.len(),
            modified: metadata.modified().ok(),
        })
    }
}

impl Installed {
    /// Reads a file's header; an error for anything not a whisper model.
    fn read(path: &Path) -> Result<Installed, ModelError> {
        // Stamped before reading, so a file replaced meanwhile reads as changed next time.
        let stamp = FileStamp::of(path);
        let summary = model::inspect(path)?;
        Ok(Installed { name: model_name(path, &summary), path: path.to_owned(), summary, stamp })
    }

    pub fn is_multilingual(&self) -> bool {
        self.summary.is_multilingual()
    }

    /// How many languages the model knows: 1 (English), 99, or 100 from large-v3 on, whose
    /// vocabulary adds Cantonese.
    pub fn language_count(&self) -> usize {
        match self.summary.hparams.n_vocab {
            51866.. => 100,
            51865 => 99,
            _ => 1,
        }
    }

    /// Bytes the model's weights take loaded: its file's size.
    pub fn size_bytes(&self) -> u64 {
        self.summary.file_size
    }

    /// Refuses requests this model cannot serve (a language it does not know, translation
    /// with an English-only model) without loading it.
    pub fn check(&self, request: &Request) -> Result<(), EngineError> {
        check_request(&self.summary, request)
    }
}

/// `tiny.en`, `base-q8_0`; a custom model by its file name without `ggml-` and `.bin`.
fn model_name(path: &Path, summary: &ModelSummary) -> String {
    let known = summary.name();
    if known.starts_with("custom") {
        let stem = path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
        return stem.strip_prefix("ggml-").map(str::to_owned).unwrap_or(stem);
    }
    if summary.weights == TensorType::F16 { known.to_owned() } else { format!("{known}-{}", summary.weights) }
}

/// The models in `dir` (not descending into folders; symbolic links followed), smallest
/// (fastest) first; skipped files are logged.
pub fn scan(dir: &Path) -> Vec<Installed> {
    scan_beside(dir, None)
}

/// As [`scan`], with the default model (already read) first.
fn scan_beside(dir: &Path, default: Option<Installed>) -> Vec<Installed> {
    let files = list_dir(dir).unwrap_or_else(|error| {
        tracing::warn!(dir = %dir.display(), %error, cause = %Causes(&error), "no model in the models directory is offered");
        Vec::new()
    });
    read_models(files, default)
}

/// The paths in `dir`, sorted.
fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, ModelError> {
    let read = |source| ModelError::ReadDir { path: dir.to_owned(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read)? {
        files.push(entry.map_err(read)?.path());
    }
    files.sort();
    Ok(files)
}

/// The models among `files` (sorted), smallest first, with `default` before them.
fn read_models(files: Vec<PathBuf>, default: Option<Installed>) -> Vec<Installed> {
    let mut found: Vec<Installed> = Vec::new();
    for path in files {
        if !path.is_file() || default.as_ref().is_some_and(|default| same_file(&default.path, &path)) {
            continue;
        }
        let file_name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        if file_name == model::VAD_MODEL_FILE || file_name.ends_with(".partial") {
            continue;
        }
        match Installed::read(&path) {
            Ok(installed) => {
                let taken = default.iter().chain(&found).find(|other| other.name == installed.name);
                match taken {
                    Some(other) => tracing::warn!(
                        path = %path.display(),
                        name = installed.name,
                        served = %other.path.display(),
                        "another file of the same model is served under this name; skipped"
                    ),
                    None => found.push(installed),
                }
            }
            // A `.bin` file looks like a model: say why it is not served. Anything else
            // (wheels, notes) is plainly not one.
            Err(error) if file_name.ends_with(".bin") => {
                tracing::warn!(path = %path.display(), %error, "not a ggml whisper model; skipped")
            }
            Err(error) => tracing::debug!(path = %path.display(), %error, "not a ggml whisper model; skipped"),
        }
    }
    found.sort_by_key(Installed::size_bytes);
    default.into_iter().chain(found).collect()
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// A model's place in the pool. Each slot carries its own size, so a model that left the
/// catalogue while a job held it still counts against the budget until it is unloaded.
enum Slot {
    /// Being loaded by one thread; others wanting it wait. `stale`: a rescan found its file
    /// changed meanwhile, so what loads may be the old file's model.
    Loading { bytes: u64, stale: bool },
    Loaded {
        engine: Arc<Engine>,
        last_used: u64,
        bytes: u64,
        /// Its file vanished or changed since it loaded: unloaded once idle, and a changed one
        /// is loaded afresh by the next use after that.
        stale: bool,
    },
}

impl Slot {
    fn bytes(&self) -> u64 {
        match self {
            Slot::Loading { bytes, .. } | Slot::Loaded { bytes, .. } => *bytes,
        }
    }
}

struct Slots {
    by_name: HashMap<String, Slot>,
    /// A use counter, for least-recently-used order.
    uses: u64,
    /// The default model while its file is missing: memory is the only copy left, so the
    /// budget never unloads it.
    pinned: Option<String>,
}

/// What a rescan found different, by model name.
#[derive(Debug, Default, PartialEq, Eq)]
struct Changes {
    added: Vec<String>,
    removed: Vec<String>,
    /// Same name, another file (a package upgrade) or another file under the name.
    changed: Vec<String>,
}

impl Changes {
    fn between(before: &[Installed], after: &[Installed]) -> Changes {
        let find = |models: &[Installed], name: &str| models.iter().position(|model| model.name == name);
        let mut changes = Changes::default();
        for model in after {
            match find(before, &model.name).map(|at| &before[at]) {
                None => changes.added.push(model.name.clone()),
                Some(old) if old.path != model.path || old.stamp != model.stamp => {
                    changes.changed.push(model.name.clone())
                }
                Some(_) => {}
            }
        }
        changes.removed =
            before.iter().filter(|model| find(after, &model.name).is_none()).map(|model| model.name.clone()).collect();
        changes
    }

    fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// The catalogue and the loaded models.
pub struct Models {
    dir: PathBuf,
    /// The default model as read at start-up: its name and path never change.
    default: Installed,
    /// Every model offered, the default first; replaced whole by a rescan.
    installed: RwLock<Arc<Vec<Installed>>>,
    options: EngineOptions,
    budget_bytes: u64,
    metrics: Arc<Metrics>,
    slots: Mutex<Slots>,
    changed: Condvar,
    backend: OnceLock<Backend>,
    /// Real-time factors of recent jobs, by model name.
    speeds: Mutex<HashMap<String, VecDeque<f64>>>,
}

impl std::fmt::Debug for Models {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Models").field("installed", &self.names()).finish_non_exhaustive()
    }
}

impl Models {
    /// Finds the models in `dir` and loads the default one, which must load: a server that
    /// cannot serve its default model must not start.
    pub fn open(
        dir: &Path,
        default: &Path,
        options: EngineOptions,
        budget_bytes: u64,
        metrics: Arc<Metrics>,
    ) -> Result<Models, EngineError> {
        if !default.exists() {
            return Err(EngineError::NoModel { path: default.to_owned() });
        }
        // A default model that is no whisper model fails start-up with its own error.
        let default = Installed::read(default)?;
        let installed = scan_beside(dir, Some(default.clone()));
        let names: Vec<&str> = installed.iter().map(|model| model.name.as_str()).collect();
        tracing::info!(dir = %dir.display(), models = ?names, default = names[0], budget_mb = budget_bytes / 1_000_000, "models found");
        let models = Models {
            dir: dir.to_owned(),
            default,
            installed: RwLock::new(Arc::new(installed)),
            options,
            budget_bytes,
            metrics,
            slots: Mutex::new(Slots { by_name: HashMap::new(), uses: 0, pinned: None }),
            changed: Condvar::new(),
            backend: OnceLock::new(),
            speeds: Mutex::new(HashMap::new()),
        };
        let default_name = models.default_model().name.clone();
        models.get(&default_name)?;
        Ok(models)
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Every model offered now, the default first, then smallest first.
    pub fn installed(&self) -> Arc<Vec<Installed>> {
        Arc::clone(&self.installed.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    pub fn names(&self) -> Vec<String> {
        self.installed().iter().map(|model| model.name.clone()).collect()
    }

    /// The model requests get unless they name another.
    pub fn default_model(&self) -> &Installed {
        &self.default
    }

    /// The model a request names: nothing, `""` or `whisper-1` mean the default.
    pub fn resolve(&self, requested: Option<&str>) -> Result<Installed, EngineError> {
        let installed = self.installed();
        let name = match requested.map(str::trim) {
            None | Some("") | Some(OPENAI_MODEL) => self.default.name.as_str(),
            Some(name) => name,
        };
        installed.iter().find(|model| model.name == name).cloned().ok_or_else(|| EngineError::UnknownModel {
            model: name.to_owned(),
            installed: installed.iter().map(|model| model.name.as_str()).collect::<Vec<_>>().join(", "),
        })
    }

    /// Reads the models directory again (on SIGHUP): new models are offered at once, vanished
    /// ones no longer, and loaded ones whose file vanished or changed are unloaded once idle.
    /// Jobs already holding a model finish on it. Jobs queued for a model that vanished fail
    /// with the unknown-model refusal, which lists what is installed: the administrator removed
    /// it on purpose, and whether a queued job could still run would otherwise depend on
    /// whether the model happened to be in memory. On an unreadable directory nothing changes.
    pub fn rescan(&self) -> Result<(), ModelError> {
        let files = list_dir(&self.dir)?;
        let before = self.installed();
        let default = match Installed::read(&self.default.path) {
            Ok(read) if read.name == self.default.name => read,
            Ok(read) => {
                tracing::error!(path = %self.default.path.display(), found = read.name, serving = self.default.name,
                    "the default model's file now holds another model; serving the one loaded until restart");
                before[0].clone()
            }
            Err(error) => {
                tracing::error!(path = %self.default.path.display(), %error, cause = %Causes(&error),
                    model = self.default.name, "cannot read the default model's file; serving it from memory until restart");
                before[0].clone()
            }
        };
        let default_missing = !self.default.path.exists();
        let after = read_models(files, Some(default));
        let changes = Changes::between(&before, &after);
        {
            let mut slots = self.lock();
            slots.pinned = default_missing.then(|| self.default.name.clone());
            for name in changes.removed.iter().chain(&changes.changed) {
                if let Some(Slot::Loaded { stale, .. } | Slot::Loading { stale, .. }) = slots.by_name.get_mut(name) {
                    *stale = true;
                }
            }
            *self.installed.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(after);
            self.unload_stale(&mut slots);
        }
        if changes.is_empty() {
            tracing::info!(dir = %self.dir.display(), "models rescanned; nothing changed");
        } else {
            tracing::info!(dir = %self.dir.display(), added = ?changes.added, removed = ?changes.removed,
                changed = ?changes.changed, "models rescanned");
        }
        Ok(())
    }

    /// Unloads the idle models whose file vanished or changed.
    fn unload_stale(&self, slots: &mut Slots) {
        let idle: Vec<String> = slots
            .by_name
            .iter()
            .filter(|(name, slot)| {
                matches!(slot, Slot::Loaded { engine, stale: true, .. } if Arc::strong_count(engine) == 1)
                    && slots.pinned.as_ref() != Some(*name)
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in idle {
            self.unload(slots, &name, "model unloaded: its file vanished or changed");
        }
    }

    fn unload(&self, slots: &mut Slots, name: &str, why: &'static str) {
        slots.by_name.remove(name);
        let total = loaded_bytes(slots);
        self.metrics.model_unloaded(name, total);
        tracing::info!(model = name, loaded_mb = total / 1_000_000, budget_mb = self.budget_bytes / 1_000_000, "{why}");
    }

    /// The compute device the models run on, once one has loaded.
    pub fn backend(&self) -> Option<Backend> {
        self.backend.get().copied()
    }

    /// Records a finished job's speed: `wall` to transcribe `audio_ms` of audio on `name`.
    pub fn record_speed(&self, name: &str, audio_ms: u64, wall: Duration) {
        if audio_ms == 0 {
            return;
        }
        let rtf = wall.as_secs_f64() * 1000.0 / audio_ms as f64;
        let mut speeds = self.speeds.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let samples = speeds.entry(name.to_owned()).or_default();
        if samples.len() == SPEED_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(rtf);
    }

    /// How many times slower `name` has been than the smallest installed model, over their
    /// recent jobs (medians of the real-time factors); `None` until both have finished a
    /// job, and for the smallest model itself.
    pub fn times_slower(&self, name: &str) -> Option<f64> {
        let installed = self.installed();
        let fastest = installed.iter().min_by_key(|model| model.size_bytes())?;
        if fastest.name == name {
            return None;
        }
        let speeds = self.speeds.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let median = |name: &str| speeds.get(name).and_then(|samples| median(samples.iter().copied().collect()));
        Some(median(name)? / median(&fastest.name)?)
    }

    /// The names of the models loaded now.
    pub fn loaded(&self) -> Vec<String> {
        let slots = self.lock();
        let mut names: Vec<String> = slots
            .by_name
            .iter()
            .filter(|(_, slot)| matches!(slot, Slot::Loaded { .. }))
            .map(|(name, _)| name.clone())
            .collect();
        names.sort();
        names
    }

    /// The engine of an installed model, loading it if needed (seconds for a large model;
    /// call from a thread that may block). Holding the `Arc` keeps the model loaded.
    pub fn get(&self, name: &str) -> Result<Arc<Engine>, EngineError> {
        let installed = self.resolve(Some(name))?;
        let mut slots = self.lock();
        loop {
            slots.uses += 1;
            let now = slots.uses;
            let pinned = slots.pinned.as_ref() == Some(&installed.name);
            match slots.by_name.get_mut(&installed.name) {
                // A changed file loads afresh once no job holds the old one; until then the old
                // one serves, rather than a second copy of the model filling memory.
                Some(Slot::Loaded { engine, stale: true, .. }) if Arc::strong_count(engine) == 1 && !pinned => {
                    self.unload(&mut slots, &installed.name, "model unloaded: its file changed; loading it again");
                    break;
                }
                Some(Slot::Loaded { engine, last_used, .. }) => {
                    *last_used = now;
                    return Ok(Arc::clone(engine));
                }
                Some(Slot::Loading { .. }) => {
                    slots = self.changed.wait(slots).unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                None => break,
            }
        }
        self.make_room(&mut slots, installed.size_bytes());
        slots.by_name.insert(installed.name.clone(), Slot::Loading { bytes: installed.size_bytes(), stale: false });
        drop(slots);

        let started = Instant::now();
        let loaded = Engine::load(&installed.path, &self.options);
        let mut slots = self.lock();
        let outcome = match loaded {
            Ok(engine) => {
                let engine = Arc::new(engine);
                let _ = self.backend.set(engine.backend());
                slots.uses += 1;
                let last_used = slots.uses;
                let stale = matches!(slots.by_name.get(&installed.name), Some(Slot::Loading { stale: true, .. }));
                let slot =
                    Slot::Loaded { engine: Arc::clone(&engine), last_used, bytes: installed.size_bytes(), stale };
                slots.by_name.insert(installed.name.clone(), slot);
                let total = loaded_bytes(&slots);
                self.metrics.model_loaded(&installed.name, total);
                tracing::info!(
                    model = installed.name,
                    seconds = started.elapsed().as_secs_f64(),
                    loaded_mb = total / 1_000_000,
                    budget_mb = self.budget_bytes / 1_000_000,
                    "model loaded into memory"
                );
                Ok(engine)
            }
            Err(error) => {
                slots.by_name.remove(&installed.name);
                Err(error)
            }
        };
        drop(slots);
        self.changed.notify_all();
        outcome
    }

    /// Unloads idle models whose file vanished or changed, then idle ones least recently used
    /// first while the loaded ones exceed the budget; called when a job ends.
    pub fn trim(&self) {
        let mut slots = self.lock();
        self.unload_stale(&mut slots);
        self.make_room(&mut slots, 0);
    }

    /// Unloads idle models until `need` more bytes fit in the budget, or none idle is left.
    fn make_room(&self, slots: &mut Slots, need: u64) {
        loop {
            let used = reserved_bytes(slots);
            if used + need <= self.budget_bytes {
                return;
            }
            let idle = slots
                .by_name
                .iter()
                .filter_map(|(name, slot)| match slot {
                    Slot::Loaded { engine, last_used, .. }
                        if Arc::strong_count(engine) == 1 && slots.pinned.as_ref() != Some(name) =>
                    {
                        Some((*last_used, name.clone()))
                    }
                    _ => None,
                })
                .min();
            let Some((_, name)) = idle else {
                if need > 0 {
                    tracing::warn!(
                        needed_mb = need / 1_000_000,
                        loaded_mb = used / 1_000_000,
                        budget_mb = self.budget_bytes / 1_000_000,
                        "the models in use leave no room in the memory budget; loading over it (raise model_memory_mb)"
                    );
                }
                return;
            };
            self.unload(slots, &name, "model unloaded to stay within the memory budget");
        }
    }
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    match values.len() {
        0 => None,
        len if len % 2 == 1 => Some(values[middle]),
        _ => Some((values[middle - 1] + values[middle]) / 2.0),
    }
}

/// Bytes of the models loaded.
fn loaded_bytes(slots: &Slots) -> u64 {
    slots.by_name.values().filter(|slot| matches!(slot, Slot::Loaded { .. })).map(Slot::bytes).sum()
}

/// Bytes of the models loaded or loading.
fn reserved_bytes(slots: &Slots) -> u64 {
    slots.by_name.values().map(Slot::bytes).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Hparams;

    fn summary(values: [i32; 11], weights: TensorType) -> ModelSummary {
        ModelSummary {
            hparams: Hparams::from_values(values),
            tensor_count: 0,
            weights,
            tensor_types: Vec::new(),
            token_count: 0,
            file_size: 0,
        }
    }

    #[test]
    fn models_are_named_as_model_info_reads_them() {
        let base = [51865, 1500, 512, 8, 6, 448, 512, 8, 6, 80, 1];
        let path = Path::new("/models/ggml-whatever.bin");
        assert_eq!(model_name(path, &summary(base, TensorType::F16)), "base");
        assert_eq!(model_name(path, &summary(base, TensorType::Q8_0)), "base-q8_0");
        let tiny_en = [51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1];
        assert_eq!(model_name(path, &summary(tiny_en, TensorType::Q5_1)), "tiny.en-q5_1");
        // Sizes no OpenAI model has: the file names it.
        let odd = [51864, 1500, 384, 6, 5, 448, 384, 6, 5, 80, 1];
        assert_eq!(model_name(Path::new("/models/ggml-mine.bin"), &summary(odd, TensorType::F16)), "mine");
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }

    #[test]
    fn languages_are_counted_from_the_vocabulary() {
        let installed = |n_vocab| Installed {
            name: String::new(),
            path: PathBuf::new(),
            summary: summary([n_vocab, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1], TensorType::F16),
            stamp: FileStamp::default(),
        };
        assert_eq!(installed(51864).language_count(), 1);
        assert_eq!(installed(51865).language_count(), 99);
        assert_eq!(installed(51866).language_count(), 100);
    }

    #[test]
    fn a_rescan_tells_added_removed_and_replaced_models_apart() {
        let model = |name: &str, inode| Installed {
            name: name.to_owned(),
            path: PathBuf::from(format!("/models/ggml-{name}.bin")),
            summary: summary([51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1], TensorType::F16),
            stamp: FileStamp { inode, size: 1, modified: None },
        };
        let before = [model("tiny.en", 1), model("base", 2), model("small", 3)];
        let after = [model("tiny.en", 1), model("base", 20), model("tiny.en-q8_0", 4)];
        let changes = Changes::between(&before, &after);
        assert_eq!(
            changes,
            Changes {
                added: vec!["tiny.en-q8_0".to_owned()],
                removed: vec!["small".to_owned()],
                changed: vec!["base".to_owned()],
            }
        );
        assert!(Changes::between(&after, &after).is_empty());
    }
}
