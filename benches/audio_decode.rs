//! Decode speed: `cargo bench --bench audio_decode [-- FILE...]`.
//!
//! Decodes the shared speech clips (`$WHISPER_APPLIANCE_TEST_AUDIO`, default
//! `../shared/audio`), or the files given, five times each and prints the median wall time
//! and its ratio to the audio's length. Decoding runs before whisper on every job, so it
//! should stay a small fraction of whisper's own real-time factor (about 0.05 on tiny.en).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use whisper_appliance::audio;

const RUNS: usize = 5;

fn main() {
    let args: Vec<PathBuf> = std::env::args().skip(1).filter(|arg| !arg.starts_with("--")).map(PathBuf::from).collect();
    let files = if args.is_empty() { shared_clips() } else { args };
    println!("{:<32} {:>9} {:>11} {:>9}", "file", "audio s", "decode ms", "ratio");
    for file in files {
        let mut times: Vec<Duration> = Vec::with_capacity(RUNS);
        let mut length = Duration::ZERO;
        for _ in 0..RUNS {
            let started = Instant::now();
            let decoded = audio::decode_file(&file).unwrap_or_else(|error| panic!("{}: {error}", file.display()));
            times.push(started.elapsed());
            length = decoded.duration();
        }
        times.sort();
        let median = times[RUNS / 2];
        let name = file.file_name().map_or_else(|| file.display().to_string(), |n| n.to_string_lossy().into_owned());
        println!(
            "{name:<32} {:>9.1} {:>11.1} {:>9.5}",
            length.as_secs_f64(),
            median.as_secs_f64() * 1000.0,
            median.as_secs_f64() / length.as_secs_f64()
        );
    }
}

fn shared_clips() -> Vec<PathBuf> {
    let dir = std::env::var_os("WHISPER_APPLIANCE_TEST_AUDIO")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/audio"));
    ["jfk.wav", "jfk.mp3", "tale_of_two_cities_ch1.mp3", "columbia_address_2003.flac"]
        .iter()
        .map(|name| dir.join(name))
        .collect()
}
