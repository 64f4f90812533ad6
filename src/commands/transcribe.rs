//! The `transcribe` command: files in, transcripts out, one model load for all of them.
//! The model is a file, or a model's name in the models directory (as `serve` names them).
//!
//! One file prints to stdout; several need `--output-dir` (made if missing) and get one
//! output file each. A file that fails is reported on stderr (a line, then a `caused by:`
//! line per cause) and the others still run; the exit code says whether any failed. A
//! closed stdout ends the command with success. Progress bars go to stderr only when it is
//! a terminal, so piping stdout into another program stays clean.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::audio;
use crate::cli::TranscribeArgs;
use crate::engine::{
    CancelToken, Engine, EngineOptions, Observer, Request, Transcript, VadSettings, default_threads, scan, vad_for,
};
use crate::errors::{CommandError, EngineError, InputError, report};
use crate::formats::Format;

pub(super) fn run(args: TranscribeArgs) -> Result<(), CommandError> {
    if args.files.len() > 1 && args.output_dir.is_none() {
        return Err(CommandError::OutputDirRequired);
    }
    let request = Request::new(&args.language, args.translate)?;
    let model = model_file(&args.model, &args.models_dir)?;
    let options = EngineOptions {
        threads: args.threads.unwrap_or_else(default_threads),
        use_gpu: true,
        vad: if args.no_vad { None } else { vad_for(&model, args.vad_model.as_deref(), VadSettings::default()) },
    };
    let engine = Engine::load(&model, &options)?;
    engine.check(&request)?;
    // Made before any audio is read, so a mistyped folder is reported at once, not after hours.
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir).map_err(|source| CommandError::OutputDir { path: dir.clone(), source })?;
    }

    let outputs = output_paths(&args.files, args.output_dir.as_deref(), args.format);
    let mut failed = 0;
    for (input, output) in args.files.iter().zip(&outputs) {
        let transcript = transcribe_one(&engine, input, &request);
        let result = match (transcript, output) {
            (Ok(transcript), Some(path)) => std::fs::write(path, args.format.render(&transcript))
                .map_err(|source| InputError::Write { path: path.clone(), source }),
            // Only ever one input: stdout's errors (a closed pipe above all) end the command.
            (Ok(transcript), None) => return super::print(&args.format.render(&transcript)),
            (Err(error), _) => Err(error),
        };
        if let Err(error) = result {
            failed += 1;
            eprintln!("error: {}: {}", input.display(), report(&error));
        }
    }
    match failed {
        0 => Ok(()),
        failed => Err(CommandError::InputsFailed { failed, total: args.files.len() }),
    }
}

/// `--model` as a file, else as the name of a model in `dir` (a bare word that names no
/// file there is refused with the names that do). A path that does not exist is left for
/// the engine, whose error says how to get a model.
fn model_file(model: &Path, dir: &Path) -> Result<PathBuf, EngineError> {
    let text = model.to_string_lossy();
    if model.exists() || text.contains('/') || text.ends_with(".bin") {
        return Ok(model.to_owned());
    }
    let installed = scan(dir);
    match installed.iter().find(|found| found.name == text) {
        Some(found) => Ok(found.path.clone()),
        None => Err(EngineError::UnknownModel {
            model: text.into_owned(),
            installed: if installed.is_empty() {
                format!("none in {}", dir.display())
            } else {
                installed.iter().map(|found| found.name.as_str()).collect::<Vec<_>>().join(", ")
            },
        }),
    }
}

fn transcribe_one(engine: &Engine, input: &Path, request: &Request) -> Result<Transcript, InputError> {
    let bar = ProgressBar::new(100).with_message(display_name(input));
    bar.set_style(
        ProgressStyle::with_template("{msg:30!} [{bar:30}] {pos:>3}% {elapsed}")
            .expect("the template is a constant")
            .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(250));
    let decoded = audio::decode_file(input)?;
    let progress_bar = bar.clone();
    let observer = Observer {
        on_progress: Box::new(move |percent| progress_bar.set_position(u64::from(percent))),
        on_segment: Box::new(|_| {}),
    };
    let transcript = engine.transcribe(&decoded.samples, request, observer, &CancelToken::default());
    bar.finish_and_clear();
    Ok(transcript?)
}

fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |name| name.to_string_lossy().into_owned())
}

/// `<stem>.<ext>` per input, or `<file name>.<ext>` for all when two stems collide
/// (`talk.wav` and `talk.mp3`), so no output overwrites another.
fn output_paths(files: &[PathBuf], dir: Option<&Path>, format: Format) -> Vec<Option<PathBuf>> {
    let Some(dir) = dir else {
        return vec![None; files.len()];
    };
    let stems: Vec<_> = files.iter().map(|f| f.file_stem().unwrap_or_default()).collect();
    let unique = stems.iter().collect::<HashSet<_>>().len() == stems.len();
    files
        .iter()
        .zip(stems)
        .map(|(file, stem)| {
            let base = if unique { stem } else { file.file_name().unwrap_or_default() };
            let mut name = base.to_os_string();
            name.push(".");
            name.push(format.extension());
            Some(dir.join(name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_use_stems_unless_two_collide() {
        let dir = Path::new("/out");
        let files = [PathBuf::from("a/talk.wav"), PathBuf::from("b/other.mp3")];
        assert_eq!(
            output_paths(&files, Some(dir), Format::Srt),
            vec![Some(PathBuf::from("/out/talk.srt")), Some(PathBuf::from("/out/other.srt"))]
        );
        let files = [PathBuf::from("talk.wav"), PathBuf::from("talk.mp3")];
        assert_eq!(
            output_paths(&files, Some(dir), Format::Txt),
            vec![Some(PathBuf::from("/out/talk.wav.txt")), Some(PathBuf::from("/out/talk.mp3.txt"))]
        );
        assert_eq!(output_paths(&files[..1], None, Format::Txt), vec![None]);
    }
}
