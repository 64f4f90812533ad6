//! `model quantize` through the real binary on the real tiny.en: each type is written,
//! `model info` names it, whisper.cpp loads it and transcribes jfk.wav; wrong inputs are
//! refused with a message that says what to do, leaving nothing behind.

use std::path::Path;
use std::process::Output;

use crate::common::{audio, model, model_info, reference, run_binary, wer::wer};

fn quantize(kind: &str, input: &Path, out: &Path) -> Output {
    run_binary(&["model", "quantize", "--type", kind, input.to_str().unwrap(), out.to_str().unwrap()])
}

#[test]
fn each_type_is_written_loaded_and_transcribes_jfk() {
    let dir = tempfile::tempdir().unwrap();
    let f16_size = std::fs::metadata(model()).unwrap().len();
    // (type, ftype with the quantization version, WER bound on jfk's 22 words).
    for (kind, ftype, bound) in [("q8_0", "2007", 0.0), ("q5_1", "2009", 0.05), ("q4_0", "2002", 0.10)] {
        let out = dir.path().join(format!("tiny.en-{kind}.bin"));
        let output = quantize(kind, &model(), &out);
        assert!(output.status.success(), "{kind}: {}", String::from_utf8_lossy(&output.stderr));
        assert!(String::from_utf8_lossy(&output.stdout).contains(&format!("tiny.en, {kind} weights")), "{output:?}");

        let info = model_info(&out);
        assert_eq!(info["weights"], kind);
        assert_eq!(info["ftype"], ftype);
        // 65 weight matrices quantized; 2 conv kernels stay f16 and 100 vectors f32.
        assert_eq!(info["tensors"], format!("167 (f32: 100, f16: 2, {kind}: 65)"));
        assert!(std::fs::metadata(&out).unwrap().len() < f16_size * 6 / 10, "{kind} is smaller than f16");

        let output = run_binary(&["transcribe", "--model", out.to_str().unwrap(), audio("jfk.wav").to_str().unwrap()]);
        assert!(output.status.success(), "{kind}: {}", String::from_utf8_lossy(&output.stderr));
        let text = String::from_utf8_lossy(&output.stdout);
        let error = wer(&reference("jfk.wav"), &text);
        assert!(error <= bound, "{kind}: WER {error:.3} over {bound}: {text}");
    }
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 3, "no partial file is left: {names:?}");
}

#[test]
fn quantized_input_and_unknown_types_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let q8 = dir.path().join("q8.bin");
    assert!(quantize("q8_0", &model(), &q8).status.success());

    let again = dir.path().join("again.bin");
    let output = quantize("q4_0", &q8, &again);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(
            "q8.bin is already quantized (q8_0); quantize the f16 file that `whisper-appliance model import` writes"
        ),
        "{stderr}"
    );
    assert!(!again.exists() && !dir.path().join("again.bin.partial").exists());

    let output = quantize("q3_k", &model(), &again);
    assert_eq!(output.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid value 'q3_k'") && stderr.contains("[possible values: q8_0, q5_1, q4_0]"),
        "{stderr}"
    );
}
