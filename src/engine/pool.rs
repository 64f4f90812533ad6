//! The models a server offers: every ggml whisper model in its models directory, each named
//! by what `model info` reads, loaded on first use and kept while a memory budget allows.
//!
//! Input: the models directory, the default model's file (which is served even when it lies
//! elsewhere), the options every model loads with, and the budget in bytes. Output: the
//! catalogue ([`Installed`], fixed at start-up) and loaded [`Engine`]s, shared as `Arc`s.
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
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use super::{Backend, Engine, EngineOptions, Request, check_request};
use crate::errors::{EngineError, ModelError};
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
}

impl Installed {
    /// Reads a file's header; an error for anything not a whisper model.
    fn read(path: &Path) -> Result<Installed, ModelError> {
        let summary = model::inspect(path)?;
        Ok(Installed { name: model_name(path, &summary), path: path.to_owned(), summary })
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
    let mut found: Vec<Installed> = Vec::new();
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => entries.filter_map(|entry| entry.ok().map(|entry| entry.path())).collect(),
        Err(error) => {
            tracing::warn!(dir = %dir.display(), %error, "cannot read the models directory; no model in it is offered");
            Vec::new()
        }
    };
    files.sort();
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

/// A model's place in the pool.
enum Slot {
    /// Being loaded by one thread; others wanting it wait.
    Loading,
    Loaded {
        engine: Arc<Engine>,
        last_used: u64,
    },
}

struct Slots {
    by_name: HashMap<String, Slot>,
    /// A use counter, for least-recently-used order.
    uses: u64,
}

/// The catalogue and the loaded models.
pub struct Models {
    installed: Vec<Installed>,
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
        let installed = scan_beside(dir, Some(Installed::read(default)?));
        let names: Vec<&str> = installed.iter().map(|model| model.name.as_str()).collect();
        tracing::info!(dir = %dir.display(), models = ?names, default = names[0], budget_mb = budget_bytes / 1_000_000, "models found");
        let models = Models {
            installed,
            options,
            budget_bytes,
            metrics,
            slots: Mutex::new(Slots { by_name: HashMap::new(), uses: 0 }),
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

    /// Every model offered, the default first, then smallest first.
    pub fn installed(&self) -> &[Installed] {
        &self.installed
    }

    pub fn names(&self) -> Vec<&str> {
        self.installed.iter().map(|model| model.name.as_str()).collect()
    }

    /// The model requests get unless they name another.
    pub fn default_model(&self) -> &Installed {
        &self.installed[0]
    }

    /// The model a request names: nothing, `""` or `whisper-1` mean the default.
    pub fn resolve(&self, requested: Option<&str>) -> Result<&Installed, EngineError> {
        match requested.map(str::trim) {
            None | Some("") | Some(OPENAI_MODEL) => Ok(self.default_model()),
            Some(name) => self.installed.iter().find(|model| model.name == name).ok_or_else(|| {
                EngineError::UnknownModel { model: name.to_owned(), installed: self.names().join(", ") }
            }),
        }
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
        let fastest = self.installed.iter().min_by_key(|model| model.size_bytes())?;
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
            match slots.by_name.get_mut(&installed.name) {
                Some(Slot::Loaded { engine, last_used }) => {
                    *last_used = now;
                    return Ok(Arc::clone(engine));
                }
                Some(Slot::Loading) => {
                    slots = self.changed.wait(slots).unwrap_or_else(|poisoned| poisoned.into_inner());
                }
                None => break,
            }
        }
        self.make_room(&mut slots, installed.size_bytes());
        slots.by_name.insert(installed.name.clone(), Slot::Loading);
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
                slots.by_name.insert(installed.name.clone(), Slot::Loaded { engine: Arc::clone(&engine), last_used });
                let total = loaded_bytes(&slots, &self.installed);
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

    /// Unloads idle models, least recently used first, while the loaded ones exceed the
    /// budget; called when a job ends.
    pub fn trim(&self) {
        let mut slots = self.lock();
        self.make_room(&mut slots, 0);
    }

    /// Unloads idle models until `need` more bytes fit in the budget, or none idle is left.
    fn make_room(&self, slots: &mut Slots, need: u64) {
        loop {
            let used = reserved_bytes(slots, &self.installed);
            if used + need <= self.budget_bytes {
                return;
            }
            let idle = slots
                .by_name
                .iter()
                .filter_map(|(name, slot)| match slot {
                    Slot::Loaded { engine, last_used } if Arc::strong_count(engine) == 1 => {
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
            slots.by_name.remove(&name);
            let total = loaded_bytes(slots, &self.installed);
            self.metrics.model_unloaded(&name, total);
            tracing::info!(
                model = name,
                loaded_mb = total / 1_000_000,
                budget_mb = self.budget_bytes / 1_000_000,
                "model unloaded to stay within the memory budget"
            );
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

fn size_of(installed: &[Installed], name: &str) -> u64 {
    installed.iter().find(|model| model.name == name).map_or(0, Installed::size_bytes)
}

/// Bytes of the models loaded.
fn loaded_bytes(slots: &Slots, installed: &[Installed]) -> u64 {
    slots
        .by_name
        .iter()
        .filter(|(_, slot)| matches!(slot, Slot::Loaded { .. }))
        .map(|(name, _)| size_of(installed, name))
        .sum()
}

/// Bytes of the models loaded or loading.
fn reserved_bytes(slots: &Slots, installed: &[Installed]) -> u64 {
    slots.by_name.keys().map(|name| size_of(installed, name)).sum()
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
        };
        assert_eq!(installed(51864).language_count(), 1);
        assert_eq!(installed(51865).language_count(), 99);
        assert_eq!(installed(51866).language_count(), 100);
    }
}
