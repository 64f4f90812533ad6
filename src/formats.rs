//! Transcripts rendered as txt, srt, vtt, json and tsv: pure functions of the segments.
//!
//! Input is an [`engine::Transcript`](crate::engine::Transcript); output is the whole file
//! as a `String`. Nothing here touches disk, HTTP or whisper.cpp, so every edge case
//! (hours past 99, millisecond rounding, cue text that looks like markup) is unit-tested.

use std::fmt::Write as _;
use std::str::FromStr;

use serde::Serialize;

use crate::engine::{Segment, Transcript};
use crate::errors::UnknownFormat;

/// An output format for a finished transcript.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Plain text, one segment per line.
    Txt,
    /// SubRip subtitles.
    Srt,
    /// WebVTT subtitles.
    Vtt,
    /// OpenAI's `verbose_json` shape: text, language, duration, segments with their words,
    /// and whether any speech was found.
    Json,
    /// Tab-separated `start`, `end` (milliseconds) and `text`, with a header line.
    Tsv,
}

impl Format {
    pub const ALL: &'static [Format] = &[Format::Txt, Format::Srt, Format::Vtt, Format::Json, Format::Tsv];

    /// The file extension, which is also the name used on the command line and in URLs.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Txt => "txt",
            Format::Srt => "srt",
            Format::Vtt => "vtt",
            Format::Json => "json",
            Format::Tsv => "tsv",
        }
    }

    /// The `Content-Type` to serve a rendered file with.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Txt => "text/plain; charset=utf-8",
            Format::Srt => "application/x-subrip; charset=utf-8",
            Format::Vtt => "text/vtt; charset=utf-8",
            Format::Json => "application/json",
            Format::Tsv => "text/tab-separated-values; charset=utf-8",
        }
    }

    /// Render a transcript in this format.
    pub fn render(self, transcript: &Transcript) -> String {
        match self {
            Format::Txt => txt(&transcript.segments),
            Format::Srt => srt(&transcript.segments),
            Format::Vtt => vtt(&transcript.segments),
            Format::Json => verbose_json(transcript, false),
            Format::Tsv => tsv(&transcript.segments),
        }
    }
}

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Format::ALL
            .iter()
            .copied()
            .find(|format| format.extension().eq_ignore_ascii_case(name))
            .ok_or_else(|| UnknownFormat(name.to_owned()))
    }
}

/// Segment texts as whisper gives them carry a leading space; subtitles and lines want none.
fn lines(segments: &[Segment]) -> impl Iterator<Item = (usize, &Segment, &str)> {
    segments
        .iter()
        .map(|segment| (segment, segment.text.trim()))
        .filter(|(_, text)| !text.is_empty())
        .enumerate()
        .map(|(index, (segment, text))| (index, segment, text))
}

fn txt(segments: &[Segment]) -> String {
    let mut out = String::new();
    for (_, _, text) in lines(segments) {
        out.push_str(text);
        out.push('\n');
    }
    out
}

/// `HH:MM:SS<sep>mmm`; hours keep growing past 99 rather than wrapping.
fn clock(ms: u64, separator: char) -> String {
    let (hours, rest) = (ms / 3_600_000, ms % 3_600_000);
    let (minutes, rest) = (rest / 60_000, rest % 60_000);
    let (seconds, millis) = (rest / 1000, rest % 1000);
    format!("{hours:02}:{minutes:02}:{seconds:02}{separator}{millis:03}")
}

fn srt(segments: &[Segment]) -> String {
    let mut out = String::new();
    for (index, segment, text) in lines(segments) {
        let _ = write!(
            out,
            "{}\n{} --> {}\n{}\n\n",
            index + 1,
            clock(segment.start_ms, ','),
            clock(segment.end_ms, ','),
            text
        );
    }
    out
}

/// WebVTT cue text is markup: `&` and `<` must be escaped and `-->` may not appear.
fn vtt_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace("-->", "--&gt;")
}

fn vtt(segments: &[Segment]) -> String {
    let mut out = String::from("WEBVTT\n\n");
    for (_, segment, text) in lines(segments) {
        let _ = write!(
            out,
            "{} --> {}\n{}\n\n",
            clock(segment.start_ms, '.'),
            clock(segment.end_ms, '.'),
            vtt_escape(text)
        );
    }
    out
}

fn tsv(segments: &[Segment]) -> String {
    let mut out = String::from("start\tend\ttext\n");
    for (_, segment, text) in lines(segments) {
        let text = text.replace(['\t', '\n', '\r'], " ");
        let _ = writeln!(out, "{}\t{}\t{}", segment.start_ms, segment.end_ms, text);
    }
    out
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct VerboseJson<'a> {
    task: &'static str,
    language: &'a str,
    duration: f64,
    text: String,
    /// True when nothing was said, so an empty text is never a silent failure.
    no_speech: bool,
    /// Seconds the speech detector found to be speech; null when detection was off.
    speech_duration: Option<f64>,
    segments: Vec<VerboseSegment<'a>>,
    /// Every word of the transcript, as OpenAI's `timestamp_granularities[]=word` gives it.
    #[serde(skip_serializing_if = "Option::is_none")]
    words: Option<Vec<VerboseWord<'a>>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct VerboseSegment<'a> {
    id: usize,
    start: f64,
    end: f64,
    text: &'a str,
    /// Left out unless words were asked for (whisper.cpp timed none then).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    words: Vec<VerboseWord<'a>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct VerboseWord<'a> {
    word: &'a str,
    start: f64,
    end: f64,
}

fn verbose_words(segment: &Segment) -> impl Iterator<Item = VerboseWord<'_>> {
    segment.words.iter().map(|word| VerboseWord {
        word: &word.text,
        start: seconds(word.start_ms),
        end: seconds(word.end_ms),
    })
}

fn seconds(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

/// The `json` format; `all_words` adds OpenAI's top-level `words` list as well.
pub fn verbose_json(transcript: &Transcript, all_words: bool) -> String {
    let body = VerboseJson {
        task: if transcript.translated { "translate" } else { "transcribe" },
        language: transcript.language_name(),
        duration: seconds(transcript.duration_ms),
        text: transcript.text(),
        no_speech: transcript.no_speech(),
        speech_duration: transcript.speech_ms.map(seconds),
        segments: lines(&transcript.segments)
            .map(|(id, segment, text)| VerboseSegment {
                id,
                start: seconds(segment.start_ms),
                end: seconds(segment.end_ms),
                text,
                words: verbose_words(segment).collect(),
            })
            .collect(),
        words: all_words.then(|| transcript.segments.iter().flat_map(verbose_words).collect()),
    };
    serde_json::to_string_pretty(&body).expect("a struct of strings and numbers always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(start_ms: u64, end_ms: u64, text: &str) -> Segment {
        Segment { start_ms, end_ms, text: text.to_owned(), words: vec![] }
    }

    fn transcript(segments: Vec<Segment>) -> Transcript {
        Transcript { language: "en".to_owned(), translated: false, duration_ms: 11_000, speech_ms: None, segments }
    }

    fn jfk() -> Transcript {
        transcript(vec![
            segment(0, 7_600, " And so my fellow Americans, ask not what your country can do for you,"),
            segment(7_600, 11_000, " ask what you can do for your country."),
        ])
    }

    #[test]
    fn txt_has_one_trimmed_line_per_segment() {
        assert_eq!(
            Format::Txt.render(&jfk()),
            "And so my fellow Americans, ask not what your country can do for you,\n\
             ask what you can do for your country.\n"
        );
    }

    #[test]
    fn srt_numbers_cues_from_one_with_comma_milliseconds() {
        assert_eq!(
            Format::Srt.render(&jfk()),
            "1\n00:00:00,000 --> 00:00:07,600\nAnd so my fellow Americans, ask not what your country can do for you,\n\n\
             2\n00:00:07,600 --> 00:00:11,000\nask what you can do for your country.\n\n"
        );
    }

    #[test]
    fn vtt_has_header_and_dot_milliseconds() {
        assert_eq!(
            Format::Vtt.render(&jfk()),
            "WEBVTT\n\n00:00:00.000 --> 00:00:07.600\nAnd so my fellow Americans, ask not what your country can do for you,\n\n\
             00:00:07.600 --> 00:00:11.000\nask what you can do for your country.\n\n"
        );
    }

    #[test]
    fn clock_handles_hours_past_one_and_past_ninety_nine() {
        assert_eq!(clock(3_600_000, ','), "01:00:00,000");
        assert_eq!(clock(3_661_001, ','), "01:01:01,001");
        assert_eq!(clock(10 * 3_600_000 + 59 * 60_000 + 59_999, '.'), "10:59:59.999");
        assert_eq!(clock(100 * 3_600_000, '.'), "100:00:00.000");
    }

    #[test]
    fn clock_keeps_milliseconds_exact() {
        // 10 ms steps from whisper's centiseconds must never drift by one.
        assert_eq!(clock(1_010, ','), "00:00:01,010");
        assert_eq!(clock(59_990, ','), "00:00:59,990");
        assert_eq!(clock(60_000, ','), "00:01:00,000");
    }

    #[test]
    fn empty_segments_are_skipped_and_numbering_stays_dense() {
        let t = transcript(vec![segment(0, 1_000, " one"), segment(1_000, 2_000, "  "), segment(2_000, 3_000, " two")]);
        assert_eq!(
            Format::Srt.render(&t),
            "1\n00:00:00,000 --> 00:00:01,000\none\n\n2\n00:00:02,000 --> 00:00:03,000\ntwo\n\n"
        );
    }

    #[test]
    fn an_empty_transcript_renders_as_empty_files() {
        let t = transcript(vec![]);
        assert_eq!(Format::Txt.render(&t), "");
        assert_eq!(Format::Srt.render(&t), "");
        assert_eq!(Format::Vtt.render(&t), "WEBVTT\n\n");
        assert_eq!(Format::Tsv.render(&t), "start\tend\ttext\n");
        let json: serde_json::Value = serde_json::from_str(&Format::Json.render(&t)).unwrap();
        assert_eq!(json["text"], "");
        assert_eq!(json["segments"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn vtt_escapes_markup_in_cue_text() {
        let t = transcript(vec![segment(0, 1_000, " a <b> & c --> d")]);
        assert!(Format::Vtt.render(&t).contains("a &lt;b> &amp; c --&gt; d\n"));
    }

    #[test]
    fn tsv_uses_milliseconds_and_flattens_tabs() {
        let t = transcript(vec![segment(1_230, 4_560, " a\tb")]);
        assert_eq!(Format::Tsv.render(&t), "start\tend\ttext\n1230\t4560\ta b\n");
    }

    #[test]
    fn json_has_the_openai_verbose_shape() {
        let json: serde_json::Value = serde_json::from_str(&Format::Json.render(&jfk())).unwrap();
        assert_eq!(json["task"], "transcribe");
        assert_eq!(json["language"], "english");
        assert_eq!(json["duration"], 11.0);
        assert_eq!(
            json["text"],
            "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
        );
        let segments = json["segments"].as_array().unwrap();
        assert_eq!(segments.len(), 2);
        assert_eq!(segments[1]["id"], 1);
        assert_eq!(segments[1]["start"], 7.6);
        assert_eq!(segments[1]["end"], 11.0);
        assert_eq!(segments[1]["text"], "ask what you can do for your country.");
    }

    #[test]
    fn format_names_parse_case_insensitively() {
        assert_eq!("SRT".parse::<Format>().unwrap(), Format::Srt);
        assert_eq!(
            "docx".parse::<Format>().unwrap_err().to_string(),
            "unknown format \"docx\"; use one of txt, srt, vtt, json, tsv"
        );
    }
}
