//! The page's HTML: askama structs bound to `templates/`, and the view models they show.
//!
//! Input: jobs as the API shows them ([`JobView`]), transcripts, and the installed models
//! and their languages. Output: plain structs of display text, so templates hold no logic beyond
//! `if` and `for`, and a field a template names but a struct lacks fails the build.
//! Escaping is askama's default for `.html` templates and stays on: file names and
//! transcript text are user data. Nothing here logs transcript text.

use askama::Template;

use super::assets::{AssetUrls, URLS};
use crate::engine::Segment;
use crate::errors::{DecodeError, UploadError};
use crate::formats::Format;
use crate::http::JobView;
use crate::jobs::Status;
use crate::upload::NOT_MEDIA_TYPES;

/// What every page's frame shows: asset links, the model in use, and who is logged in.
pub struct Layout {
    pub assets: &'static AssetUrls,
    pub model: String,
    /// The name of the key a browser session belongs to; `None` without a session.
    pub user: Option<String>,
}

impl Layout {
    pub fn new(model: &str, user: Option<String>) -> Layout {
        Layout { assets: &URLS, model: model.to_owned(), user }
    }
}

/// `GET /` without a session when authentication is on: trade an API key for a session.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    pub layout: Layout,
    pub error: Option<String>,
    /// No key exists yet: say how an administrator makes one.
    pub no_keys: bool,
    /// Where to go after logging in: the page a link named (a same-origin path).
    pub next: Option<String>,
    pub session_hours: u64,
}

/// `GET /`: the upload form, a blank job card for the script to copy, and the history.
#[derive(Template)]
#[template(path = "index.html")]
pub struct IndexPage {
    pub layout: Layout,
    /// The server's message after a failed no-JS upload.
    pub error: Option<String>,
    /// The model menu, shown when more than one model is installed.
    pub models: Vec<ModelOption>,
    pub languages: Vec<LanguageOption>,
    /// Some installed model knows other languages: the language menu and Translate are
    /// shown (the script hides them while an English-only model is chosen).
    pub multilingual: bool,
    /// The chosen model knows only English: the script starts with those fields hidden.
    pub english_only_chosen: bool,
    pub translate: bool,
    /// "Time each word", as the refused form asked.
    pub words: bool,
    /// The vocabulary prompt the refused form sent, to fill in again.
    pub prompt: String,
    pub checks: UploadChecks,
    /// The history's search words, as `GET /?q=` carries them.
    pub search: String,
    pub history: Vec<HistoryRow>,
    /// `/?before=...` for the next page of the history, when there is one.
    pub older_url: Option<String>,
    /// The markup the script clones for each file it uploads, so there is one card design.
    pub card: CardView,
    pub blank_row: HistoryRow,
}

/// What the script checks before uploading a file, with the server's own sentences, so the
/// page refuses exactly what the server would, in the same words, without sending it.
pub struct UploadChecks {
    pub max_upload_mb: u64,
    pub max_bytes: u64,
    pub too_large: String,
    /// The refusal of a file that is not audio, with `{type}` where its type goes.
    pub not_audio: String,
    /// Type prefixes that are plainly not a recording, space-separated.
    pub not_media: String,
}

impl UploadChecks {
    pub fn new(max_bytes: u64) -> UploadChecks {
        let max_upload_mb = max_bytes / 1_000_000;
        UploadChecks {
            max_upload_mb,
            max_bytes,
            too_large: sentence(&UploadError::TooLarge { limit_mb: max_upload_mb }.to_string()),
            not_audio: sentence(&DecodeError::NotAudio { found: "{type}".to_owned() }.to_string()),
            not_media: NOT_MEDIA_TYPES.join(" "),
        }
    }
}

/// The server's messages are clauses in lower case (API clients quote them mid-sentence);
/// the page shows them as sentences.
pub fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// `GET /jobs/{id}`: one job; refreshes itself without JS until it has ended.
#[derive(Template)]
#[template(path = "job.html")]
pub struct JobPage {
    pub layout: Layout,
    pub card: CardView,
}

/// A page for an error that has no form to show it beside (an unknown job, say).
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub layout: Layout,
    pub status: u16,
    pub message: String,
}

/// One entry of the model menu.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelOption {
    pub name: String,
    /// What it is for: "tiny.en: English, fastest"; "base: 99 languages, translation".
    pub label: String,
    pub multilingual: bool,
    pub selected: bool,
}

/// What a model is for, in the menu: its languages, translation, whether it is the fastest
/// (the smallest) or how much slower than that one it has been here (measured on finished
/// jobs), and whether it is the default.
pub fn model_label(
    name: &str,
    languages: Option<usize>,
    fastest: bool,
    times_slower: Option<f64>,
    default: bool,
) -> String {
    let mut label = match languages {
        Some(count) => format!("{name}: {count} languages, translation"),
        None => format!("{name}: English"),
    };
    if fastest {
        label.push_str(", fastest");
    }
    match times_slower {
        Some(times) if times >= 1.5 => label.push_str(&format!(", about {} times slower here", round_times(times))),
        Some(_) => label.push_str(", about as fast here"),
        None => {}
    }
    if default {
        label.push_str(" (default)");
    }
    label
}

/// 1.5 -> "1.5", 2.26 -> "2.5", 3.4 -> "3": halves below 3, whole numbers from there, as
/// "about" allows.
fn round_times(times: f64) -> String {
    if times < 3.0 { format!("{}", (times * 2.0).round() / 2.0) } else { format!("{}", times.round()) }
}

/// `GET /admin`: the appliance's state for its operator (see `admin.rs`).
#[derive(Template)]
#[template(path = "admin.html")]
pub struct AdminPage {
    pub layout: Layout,
    pub version: &'static str,
    pub backend: &'static str,
    pub models: Vec<ModelRow>,
    pub uptime: String,
    pub workers: usize,
    pub waiting: usize,
    pub running: usize,
    pub queue: Vec<QueueRow>,
    pub last_hour: EndedCounts,
    pub last_day: EndedCounts,
    /// Over the jobs done in the last day; `None` before the first.
    pub median_rtf: Option<String>,
    pub audio_last_day: String,
    /// One bar per hour, oldest first.
    pub chart: Vec<ChartBar>,
    pub state_disk: String,
    pub temp_disk: String,
    pub rss: String,
    pub peak_rss: String,
    pub cpu_seconds: String,
    /// CPU time as a share of one core since start, in percent.
    pub cpu_share: String,
    /// Newest first.
    pub keys: Vec<KeyRow>,
    /// A key just made, shown this once.
    pub new_key: Option<NewKeyShown>,
    /// Why the last key form was refused.
    pub error: Option<String>,
}

pub struct ModelRow {
    pub name: String,
    /// "English", or "99 languages, translation".
    pub languages: String,
    pub size: String,
    pub loaded: bool,
    pub default: bool,
    pub jobs_last_day: usize,
    pub median_rtf: Option<String>,
}

pub struct QueueRow {
    pub owner: String,
    pub waiting: usize,
    pub running: usize,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct EndedCounts {
    pub done: usize,
    pub failed: usize,
    pub cancelled: usize,
}

/// An hour of the chart: its x position and bar heights in the SVG's units (0 to 100).
pub struct ChartBar {
    pub x: usize,
    pub done_height: usize,
    pub other_height: usize,
    pub done: usize,
    pub other: usize,
    pub hours_ago: usize,
}

pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub role: &'static str,
    pub created: String,
    pub last_used: String,
    pub revoked: Option<String>,
}

pub struct NewKeyShown {
    pub name: String,
    pub key: String,
}

/// One entry of the language menu.
#[derive(Debug, Clone, PartialEq)]
pub struct LanguageOption {
    pub code: &'static str,
    pub name: String,
    pub selected: bool,
}

/// `auto` first, then what the model knows: English only for `.en` models, else every
/// language whisper.cpp has, by name.
pub fn languages(multilingual: bool, selected: &str) -> Vec<LanguageOption> {
    let mut options = vec![("auto", "Detect automatically".to_owned())];
    if multilingual {
        let mut known: Vec<(&'static str, String)> = (0..=whisper_rs::get_lang_max_id())
            .filter_map(|id| Some((whisper_rs::get_lang_str(id)?, title_case(whisper_rs::get_lang_str_full(id)?))))
            .collect();
        known.sort_by(|a, b| a.1.cmp(&b.1));
        options.extend(known);
    } else {
        options.push(("en", "English (this model only knows English)".to_owned()));
    }
    let selected = if options.iter().any(|(code, _)| *code == selected) { selected } else { "auto" };
    options.into_iter().map(|(code, name)| LanguageOption { code, name, selected: code == selected }).collect()
}

/// whisper.cpp names languages in lower case ("haitian creole").
fn title_case(name: &str) -> String {
    name.split(' ')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map(|first| first.to_uppercase().chain(chars).collect::<String>()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A job as a card: the same markup on the job page, and cloned by the script per upload.
#[derive(Debug, Clone)]
pub struct CardView {
    pub id: String,
    pub file_name: String,
    /// `queued`, `running`, `done`, `failed`, `cancelled`, or `new` for the blank card.
    pub status: &'static str,
    pub status_text: String,
    /// The model that runs or ran the job; empty when unknown (the blank card, old jobs).
    pub model: String,
    pub finished: bool,
    pub running: bool,
    pub progress: u8,
    pub page_url: String,
    pub events_url: String,
    pub cancel_url: String,
    pub error: Option<String>,
    pub segments: Vec<SegmentRow>,
    /// Every format, with an empty URL until the job is done.
    pub downloads: Vec<Download>,
    /// The card's heading level: 2 alone on the job page, 3 in the list of uploads.
    pub heading: u8,
}

/// One line of a transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRow {
    /// Index in the job's segments, as the event stream numbers them, so the script can
    /// tell a segment it already shows from a new one.
    pub id: usize,
    /// `mm:ss`, or `h:mm:ss` past the first hour.
    pub start: String,
    /// Start and end in seconds, for the player the script adds.
    pub start_seconds: f64,
    pub end_seconds: f64,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct Download {
    pub format: &'static str,
    pub label: &'static str,
    pub url: String,
}

fn format_label(format: Format) -> &'static str {
    match format {
        Format::Txt => "Text (.txt)",
        Format::Srt => "SubRip subtitles (.srt)",
        Format::Vtt => "WebVTT subtitles (.vtt)",
        Format::Json => "JSON with timings (.json)",
        Format::Tsv => "Table (.tsv)",
    }
}

impl CardView {
    /// The card the script fills in for a file it is about to upload.
    pub fn blank() -> CardView {
        CardView {
            id: String::new(),
            file_name: String::new(),
            status: "new",
            status_text: "Waiting to upload".to_owned(),
            model: String::new(),
            finished: false,
            running: false,
            progress: 0,
            page_url: String::new(),
            events_url: String::new(),
            cancel_url: String::new(),
            error: None,
            segments: Vec::new(),
            downloads: Format::ALL
                .iter()
                .map(|format| Download { format: format.extension(), label: format_label(*format), url: String::new() })
                .collect(),
            heading: 3,
        }
    }

    /// A job with the segments known so far (a running job's) or its transcript's.
    pub fn new(job: &JobView, segments: &[Segment]) -> CardView {
        let downloads = Format::ALL
            .iter()
            .map(|format| Download {
                format: format.extension(),
                label: format_label(*format),
                url: job.links.results.get(format.extension()).cloned().unwrap_or_default(),
            })
            .collect();
        CardView {
            id: job.id.to_string(),
            file_name: job.file_name.clone(),
            status: job.status.name(),
            status_text: status_text(job),
            model: job.model.clone().unwrap_or_default(),
            finished: job.status.is_finished(),
            running: job.status == Status::Running,
            progress: job.progress,
            page_url: job.links.page.clone(),
            events_url: job.links.events.clone(),
            cancel_url: job.links.cancel.clone(),
            error: job.error.clone().map(|error| sentence(&error)),
            segments: segment_rows(segments),
            downloads,
            heading: 2,
        }
    }

    pub fn done(&self) -> bool {
        self.status == Status::Done.name()
    }
}

/// The one-line status a card shows, in an `aria-live` region, so it changes only when the
/// job's state does; `static/app.js` words its live updates the same way.
pub fn status_text(job: &JobView) -> String {
    match job.status {
        Status::Queued => match job.queue_position {
            Some(1) => "Queued: next in line".to_owned(),
            Some(position) => format!("Queued: number {position} in line"),
            None => "Queued".to_owned(),
        },
        // The percentage is beside the progress bar: in this live region it would be read
        // out at every step.
        Status::Running => "Transcribing".to_owned(),
        Status::Done => match (job.language.as_deref(), job.duration_seconds) {
            (_, Some(seconds)) if job.no_speech == Some(true) => {
                format!("No speech found in {} of audio", clock((seconds * 1000.0) as u64))
            }
            (Some(language), Some(seconds)) => {
                let speech = job
                    .speech_seconds
                    .map(|speech| format!("{} of speech in ", clock((speech * 1000.0) as u64)))
                    .unwrap_or_default();
                format!("Done: {speech}{} of audio, {}", clock((seconds * 1000.0) as u64), language_name(language))
            }
            _ => "Done".to_owned(),
        },
        Status::Failed => "Failed".to_owned(),
        Status::Cancelled => "Cancelled".to_owned(),
    }
}

fn language_name(code: &str) -> String {
    whisper_rs::get_lang_id(code).and_then(whisper_rs::get_lang_str_full).map_or_else(|| code.to_owned(), title_case)
}

/// Segments with text, as the downloads list them.
fn segment_rows(segments: &[Segment]) -> Vec<SegmentRow> {
    segments
        .iter()
        .enumerate()
        .map(|(id, segment)| SegmentRow {
            id,
            start: clock(segment.start_ms),
            start_seconds: segment.start_ms as f64 / 1000.0,
            end_seconds: segment.end_ms as f64 / 1000.0,
            text: segment.text.trim().to_owned(),
        })
        .filter(|row| !row.text.is_empty())
        .collect()
}

/// `mm:ss` under an hour, `h:mm:ss` from then on; `static/app.js` has the same function.
pub fn clock(ms: u64) -> String {
    let seconds = ms / 1000;
    let (hours, minutes, seconds) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    if hours > 0 { format!("{hours}:{minutes:02}:{seconds:02}") } else { format!("{minutes:02}:{seconds:02}") }
}

/// One past job in the history list.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    pub id: String,
    pub file_name: String,
    pub status: &'static str,
    pub status_label: &'static str,
    /// RFC 3339, for `<time datetime>`; the script shows it in local time.
    pub created_at: String,
    pub created_label: String,
    /// The model that runs or ran the job; empty when unknown.
    pub model: String,
    pub page_url: String,
    pub delete_url: String,
    /// Ended (done, failed, cancelled): it may be deleted; until then it may be cancelled.
    pub finished: bool,
    /// The transcript as text, once done; empty until then.
    pub text_url: String,
}

impl HistoryRow {
    pub fn new(job: &JobView) -> HistoryRow {
        HistoryRow {
            id: job.id.to_string(),
            file_name: job.file_name.clone(),
            status: job.status.name(),
            status_label: status_label(job.status),
            created_label: utc_label(&job.created_at),
            created_at: job.created_at.clone(),
            model: job.model.clone().unwrap_or_default(),
            page_url: job.links.page.clone(),
            delete_url: format!("{}/delete", job.links.page),
            finished: job.status.is_finished(),
            text_url: job.links.results.get("txt").cloned().unwrap_or_default(),
        }
    }

    /// The row the script copies when it redraws the history.
    pub fn blank() -> HistoryRow {
        HistoryRow {
            id: String::new(),
            file_name: String::new(),
            status: "new",
            status_label: "",
            created_at: String::new(),
            created_label: String::new(),
            model: String::new(),
            page_url: String::new(),
            delete_url: String::new(),
            finished: true,
            text_url: String::new(),
        }
    }
}

pub fn status_label(status: Status) -> &'static str {
    match status {
        Status::Queued => "Queued",
        Status::Running => "Running",
        Status::Done => "Done",
        Status::Failed => "Failed",
        Status::Cancelled => "Cancelled",
    }
}

/// `2025-01-31T09:05:00Z` -> `2025-01-31 09:05 UTC`, for readers without JS.
fn utc_label(rfc3339: &str) -> String {
    match (rfc3339.get(..10), rfc3339.get(11..16)) {
        (Some(date), Some(time)) => format!("{date} {time} UTC"),
        _ => rfc3339.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_shows_minutes_then_hours() {
        assert_eq!(clock(0), "00:00");
        assert_eq!(clock(7_999), "00:07");
        assert_eq!(clock(61_000), "01:01");
        assert_eq!(clock(3_599_999), "59:59");
        assert_eq!(clock(3_600_000), "1:00:00");
        assert_eq!(clock(36_061_000), "10:01:01");
    }

    #[test]
    fn english_only_models_offer_auto_and_english() {
        let options = languages(false, "en");
        let codes: Vec<&str> = options.iter().map(|o| o.code).collect();
        assert_eq!(codes, ["auto", "en"]);
        assert!(options[1].selected && !options[0].selected);
        assert!(options[1].name.contains("only knows English"));
        // A code the model lacks falls back to detection rather than selecting nothing.
        assert!(languages(false, "de")[0].selected);
    }

    #[test]
    fn multilingual_models_offer_every_language_by_name() {
        let options = languages(true, "de");
        assert_eq!(options[0].code, "auto");
        assert!(options.len() > 90, "{}", options.len());
        let german = options.iter().find(|o| o.code == "de").unwrap();
        assert_eq!(german.name, "German");
        assert!(german.selected);
        assert!(options[1..].windows(2).all(|pair| pair[0].name <= pair[1].name));
    }

    #[test]
    fn model_labels_say_what_each_model_is_for() {
        assert_eq!(model_label("tiny.en", None, true, None, true), "tiny.en: English, fastest (default)");
        assert_eq!(model_label("base", Some(99), false, None, false), "base: 99 languages, translation");
        assert_eq!(
            model_label("base", Some(99), false, Some(3.4), false),
            "base: 99 languages, translation, about 3 times slower here"
        );
        assert_eq!(
            model_label("base", Some(99), false, Some(2.26), false),
            "base: 99 languages, translation, about 2.5 times slower here"
        );
        assert_eq!(
            model_label("tiny.en-q8_0", None, false, Some(1.1), false),
            "tiny.en-q8_0: English, about as fast here"
        );
    }

    #[test]
    fn title_case_capitalises_each_word() {
        assert_eq!(title_case("haitian creole"), "Haitian Creole");
        assert_eq!(title_case("english"), "English");
    }

    #[test]
    fn messages_become_sentences() {
        assert_eq!(sentence("the file is over the limit"), "The file is over the limit");
        assert_eq!(sentence(""), "");
        let checks = UploadChecks::new(500_000_000);
        assert!(checks.too_large.starts_with("The file is over the 500 MB limit"), "{}", checks.too_large);
        assert!(checks.not_audio.contains("(looks like {type})"), "{}", checks.not_audio);
    }

    #[test]
    fn utc_labels_drop_seconds() {
        assert_eq!(utc_label("2025-01-31T09:05:07Z"), "2025-01-31 09:05 UTC");
        assert_eq!(utc_label("garbage"), "garbage");
    }

    #[test]
    fn segment_rows_keep_stream_ids_and_skip_empty_text() {
        let segments = [
            Segment { start_ms: 0, end_ms: 1000, text: " Hello".to_owned(), words: vec![] },
            Segment { start_ms: 1000, end_ms: 2000, text: "  ".to_owned(), words: vec![] },
            Segment { start_ms: 62_000, end_ms: 63_000, text: " <b>world</b>".to_owned(), words: vec![] },
        ];
        let rows = segment_rows(&segments);
        assert_eq!(
            rows,
            [
                SegmentRow {
                    id: 0,
                    start: "00:00".to_owned(),
                    start_seconds: 0.0,
                    end_seconds: 1.0,
                    text: "Hello".to_owned()
                },
                SegmentRow {
                    id: 2,
                    start: "01:02".to_owned(),
                    start_seconds: 62.0,
                    end_seconds: 63.0,
                    text: "<b>world</b>".to_owned()
                },
            ]
        );
    }

    #[test]
    fn templates_escape_user_text() {
        let mut card = CardView::blank();
        card.file_name = "<script>alert(1)</script>.wav".to_owned();
        card.segments = vec![SegmentRow {
            id: 0,
            start: "00:00".to_owned(),
            start_seconds: 0.0,
            end_seconds: 1.0,
            text: "a & <b>".to_owned(),
        }];
        let html = JobPage { layout: Layout::new("tiny.en", None), card }.render().unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;.wav"), "{html}");
        assert!(html.contains("a &#38; &#60;b&#62;"), "{html}");
    }
}
