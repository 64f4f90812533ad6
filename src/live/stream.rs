//! One live session's transcription: audio in as it arrives, utterances out as they end.
//!
//! Input: [`Input`]s in order (16 kHz samples, commit, clear, new settings, flush).
//! Output: [`Output`]s in order: speech started and stopped as the detector hears them, a
//! tentative delta now and then while someone speaks, and each utterance's final text
//! (with segments timed from the session's start) once it ends.
//!
//! Runs on its own OS thread (whisper.cpp computes for a good part of a second per pass).
//! Only the audio of the utterance in progress, plus the padding before it, is held; what
//! has been transcribed is dropped. Tentative passes run only when no input is waiting, so
//! a client that sends faster than real time gets its final texts without a backlog of
//! passes nobody will read; final passes are never skipped.
//!
//! Deltas only ever add text: a pass sends the words after those already sent, except its
//! last (which may be a word cut off mid-way), and only if it agrees with what was sent. The
//! completed event's transcript, from one pass over the whole utterance, is what counts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::mpsc;

use super::detector::{Detector, FRAME};
use crate::audio::SAMPLE_RATE;
use crate::engine::{Engine, Request, Segment};

/// What the client asked for; may change during a session.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSettings {
    /// Language and prompt for every pass.
    pub request: Request,
    /// `None`: the client cuts utterances itself with commits.
    pub turn_detection: Option<TurnDetection>,
}

/// OpenAI's `server_vad` settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TurnDetection {
    /// Speech probability from which a frame counts as speech.
    pub threshold: f32,
    /// Audio kept before the detected start of speech.
    pub prefix_padding_ms: u64,
    /// Silence that ends an utterance.
    pub silence_duration_ms: u64,
}

impl Default for TurnDetection {
    /// OpenAI's defaults.
    fn default() -> Self {
        TurnDetection { threshold: 0.5, prefix_padding_ms: 300, silence_duration_ms: 500 }
    }
}

pub enum Input {
    /// 16 kHz mono samples, continuing the session's audio.
    Audio(Vec<f32>),
    /// End the utterance in progress now.
    Commit,
    /// Drop the utterance in progress untranscribed.
    Clear,
    Configure(StreamSettings),
    /// End the utterance in progress, if any, and answer [`Output::Flushed`].
    Flush,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    SpeechStarted {
        item_id: String,
        audio_start_ms: u64,
    },
    SpeechStopped {
        item_id: String,
        audio_end_ms: u64,
    },
    Committed {
        item_id: String,
        previous_item_id: Option<String>,
    },
    Cleared,
    /// Words a tentative pass heard, to append to the utterance's tentative text.
    Delta {
        item_id: String,
        delta: String,
    },
    /// The utterance's final text; `segments` are timed from the session's start.
    Completed {
        item_id: String,
        transcript: String,
        segments: Vec<Segment>,
    },
    Failed {
        item_id: String,
        message: String,
    },
    /// A commit with no audio to commit.
    NothingToCommit,
    Flushed,
}

/// Consecutive speech frames that start an utterance (96 ms): a click is not speech.
const START_FRAMES: usize = 3;
/// Frames the detector is given at once (96 ms): each call reads half a second again.
const DETECT_FRAMES: usize = 3;
/// No tentative pass once this much silence follows the speech: no new words are coming,
/// and the final pass should not wait for one.
const QUIET_BEFORE_END_MS: u64 = 150;
/// Audio kept after the last speech frame, so a word's fading end is not clipped.
const END_PADDING_MS: u64 = 200;
/// An utterance is cut after this long, at its quietest moment in the last
/// [`CUT_SEARCH_MS`]: whisper reads 30 s at most, and shorter passes keep deltas quick.
const MAX_UTTERANCE_MS: u64 = 20_000;
const CUT_SEARCH_MS: u64 = 3_000;
/// A tentative pass needs this much audio, and this much more than the last one had (or,
/// once the utterance's first words are out, twice as long as the last pass took, whichever
/// is more: on a slow or busy machine tentative passes then take at most half the time, and
/// final passes keep up).
const FIRST_PARTIAL_MS: u64 = 700;
const PARTIAL_STEP_MS: u64 = 300;
/// Less audio than this is not worth a commit (OpenAI's own minimum).
const MIN_COMMIT_MS: u64 = 100;

fn samples(ms: u64) -> usize {
    (ms * u64::from(SAMPLE_RATE) / 1000) as usize
}

fn ms(samples: usize) -> u64 {
    samples as u64 * 1000 / u64::from(SAMPLE_RATE)
}

struct Utterance {
    item_id: String,
    /// Session sample where its audio starts (padding included).
    start: usize,
    /// Whether the detector started it (and so announces the end it hears).
    detected: bool,
    /// Speech probability of each analysed frame since `start`'s frame, for cutting.
    frames: Vec<f32>,
    /// The words sent as deltas so far.
    sent: Vec<String>,
    /// Session samples received when the last tentative pass ran.
    partial_at: usize,
}

pub struct Stream<'a> {
    engine: &'a Engine,
    settings: StreamSettings,
    detector: Box<dyn Detector>,
    out: mpsc::UnboundedSender<Output>,
    /// Held audio; `audio[0]` is session sample `held_from`.
    audio: Vec<f32>,
    held_from: usize,
    /// Session samples received, and analysed by the detector (whole frames).
    received: usize,
    analysed: usize,
    voiced_run: usize,
    silent_run: usize,
    /// How long the last tentative pass took, in samples of audio.
    last_pass: usize,
    items: u64,
    session_tag: String,
    last_item: Option<String>,
    utterance: Option<Utterance>,
}

impl<'a> Stream<'a> {
    pub fn new(
        engine: &'a Engine,
        settings: StreamSettings,
        detector: Box<dyn Detector>,
        out: mpsc::UnboundedSender<Output>,
    ) -> Stream<'a> {
        Stream {
            engine,
            settings,
            detector,
            out,
            audio: Vec::new(),
            held_from: 0,
            received: 0,
            analysed: 0,
            voiced_run: 0,
            silent_run: 0,
            last_pass: 0,
            items: 0,
            session_tag: uuid::Uuid::now_v7().simple().to_string()[20..].to_owned(),
            last_item: None,
            utterance: None,
        }
    }

    /// Runs until the input closes; the utterance in progress then still gets its final pass.
    /// `waiting` counts the samples queued in `input`; taking audio out lowers it.
    pub fn run(mut self, input: &mut mpsc::UnboundedReceiver<Input>, waiting: &AtomicUsize) {
        let take = |input: Input| {
            if let Input::Audio(piece) = &input {
                waiting.fetch_sub(piece.len(), Ordering::Relaxed);
            }
            input
        };
        while let Some(first) = input.blocking_recv() {
            self.handle(take(first));
            while let Ok(next) = input.try_recv() {
                self.handle(take(next));
            }
            if input.is_empty() {
                self.tentative_pass();
            }
        }
        self.end_utterance(self.received, false);
    }

    fn send(&self, output: Output) {
        // The session's socket task may be gone already; then nobody is listening.
        let _ = self.out.send(output);
    }

    fn handle(&mut self, input: Input) {
        match input {
            Input::Audio(piece) => {
                self.received += piece.len();
                self.audio.extend_from_slice(&piece);
                if self.settings.turn_detection.is_some() {
                    self.detect();
                } else {
                    match &self.utterance {
                        None => self.open_utterance(self.received - piece.len(), false),
                        // Without commits the client still gets its text, in pieces.
                        Some(utterance) if self.received - utterance.start >= samples(MAX_UTTERANCE_MS) => {
                            self.end_utterance(self.received, false);
                        }
                        Some(_) => {}
                    }
                }
            }
            Input::Commit => {
                let has_audio = self
                    .utterance
                    .as_ref()
                    .is_some_and(|utterance| self.received.saturating_sub(utterance.start) >= samples(MIN_COMMIT_MS));
                if has_audio {
                    self.end_utterance(self.received, false);
                } else {
                    self.utterance = None;
                    self.send(Output::NothingToCommit);
                }
            }
            Input::Clear => {
                self.utterance = None;
                self.voiced_run = 0;
                self.silent_run = 0;
                self.send(Output::Cleared);
            }
            Input::Configure(settings) => self.settings = settings,
            Input::Flush => {
                self.end_utterance(self.received, false);
                self.send(Output::Flushed);
            }
        }
        self.trim();
    }

    fn open_utterance(&mut self, start: usize, detected: bool) {
        self.items += 1;
        let item_id = format!("item_{}{:04}", self.session_tag, self.items);
        if detected {
            self.send(Output::SpeechStarted { item_id: item_id.clone(), audio_start_ms: ms(start) });
        }
        self.utterance =
            Some(Utterance { item_id, start, detected, frames: Vec::new(), sent: Vec::new(), partial_at: start });
    }

    /// Feeds whole frames to the detector and opens and ends utterances as it hears them.
    fn detect(&mut self) {
        let Some(turn) = self.settings.turn_detection else { return };
        // Detection may have been off for a while (manual commits): start at what is held.
        self.analysed = self.analysed.max(self.held_from);
        let whole = (self.received - self.analysed) / FRAME;
        if whole < DETECT_FRAMES {
            return;
        }
        let offset = self.analysed - self.held_from;
        let probabilities = self.detector.speech_probabilities(&self.audio[offset..offset + whole * FRAME]);
        for probability in probabilities {
            self.analysed += FRAME;
            let speech = probability >= turn.threshold;
            let Some(utterance) = &mut self.utterance else {
                self.voiced_run = if speech { self.voiced_run + 1 } else { 0 };
                if self.voiced_run >= START_FRAMES {
                    let onset = self.analysed - self.voiced_run * FRAME;
                    let start = onset.saturating_sub(samples(turn.prefix_padding_ms)).max(self.held_from);
                    self.voiced_run = 0;
                    self.silent_run = 0;
                    self.open_utterance(start, true);
                }
                continue;
            };
            utterance.frames.push(probability);
            self.silent_run = if speech { 0 } else { self.silent_run + 1 };
            if self.silent_run * FRAME >= samples(turn.silence_duration_ms) {
                let speech_end = self.analysed - self.silent_run * FRAME;
                self.end_utterance(speech_end + samples(END_PADDING_MS.min(turn.silence_duration_ms)), true);
            } else if self.analysed - utterance.start >= samples(MAX_UTTERANCE_MS) {
                // Still speaking: cut at the quietest frame lately, and go on at once.
                let frames = &utterance.frames;
                let from = frames.len().saturating_sub(samples(CUT_SEARCH_MS) / FRAME);
                let quietest =
                    (from..frames.len()).min_by(|&a, &b| frames[a].total_cmp(&frames[b])).unwrap_or(frames.len());
                let cut = self.analysed - (frames.len() - quietest) * FRAME;
                self.end_utterance(cut, true);
                self.open_utterance(cut, true);
            }
        }
    }

    /// Drops audio no utterance needs: all but the padding a next one may start with.
    fn trim(&mut self) {
        let keep_from = match &self.utterance {
            Some(utterance) => utterance.start,
            None => {
                let padding = self.settings.turn_detection.map_or(0, |turn| samples(turn.prefix_padding_ms));
                self.analysed.min(self.received).saturating_sub(padding + START_FRAMES * FRAME)
            }
        };
        if keep_from > self.held_from {
            self.audio.drain(..keep_from - self.held_from);
            self.held_from = keep_from;
        }
    }

    /// Ends the utterance in progress at session sample `end` with its final pass. Only an end
    /// the detector heard (`heard`) is announced as speech stopped; a commit, a flush or the
    /// end of the session is not one.
    fn end_utterance(&mut self, end: usize, heard: bool) {
        let Some(utterance) = self.utterance.take() else { return };
        self.silent_run = 0;
        self.voiced_run = 0;
        let end = end.clamp(utterance.start, self.received);
        if utterance.detected && heard {
            self.send(Output::SpeechStopped { item_id: utterance.item_id.clone(), audio_end_ms: ms(end) });
        }
        let previous_item_id = self.last_item.replace(utterance.item_id.clone());
        self.send(Output::Committed { item_id: utterance.item_id.clone(), previous_item_id });
        let audio = &self.audio[utterance.start - self.held_from..end - self.held_from];
        let started = Instant::now();
        let offset = ms(utterance.start);
        match self.engine.transcribe_utterance(audio, &self.settings.request) {
            Ok(mut transcript) => {
                tracing::debug!(
                    audio_ms = ms(audio.len()),
                    millis = started.elapsed().as_millis() as u64,
                    "final pass"
                );
                // Times on the session's clock: the utterance starts `offset` into it.
                for segment in &mut transcript.segments {
                    segment.start_ms += offset;
                    segment.end_ms += offset;
                    for word in &mut segment.words {
                        word.start_ms += offset;
                        word.end_ms += offset;
                    }
                }
                self.send(Output::Completed {
                    item_id: utterance.item_id,
                    transcript: transcript.text(),
                    segments: transcript.segments,
                });
            }
            Err(error) => {
                tracing::warn!(%error, "a live utterance could not be transcribed");
                self.send(Output::Failed { item_id: utterance.item_id, message: error.to_string() });
            }
        }
    }

    /// A pass over the utterance so far, sending the words it adds to those sent.
    fn tentative_pass(&mut self) {
        let received = self.received;
        let quiet = self.silent_run * FRAME >= samples(QUIET_BEFORE_END_MS);
        let Some(utterance) = &mut self.utterance else { return };
        // Until its first words are out, an utterance's passes follow each other closely.
        let step = if utterance.sent.is_empty() { 0 } else { 2 * self.last_pass };
        if quiet
            || received - utterance.start < samples(FIRST_PARTIAL_MS)
            || received - utterance.partial_at < samples(PARTIAL_STEP_MS).max(step)
        {
            return;
        }
        utterance.partial_at = received;
        let audio = &self.audio[utterance.start - self.held_from..];
        let started = Instant::now();
        let pass = self.engine.draft(audio, &self.settings.request);
        self.last_pass = samples(started.elapsed().as_millis() as u64);
        tracing::debug!(audio_ms = ms(audio.len()), millis = started.elapsed().as_millis() as u64, "tentative pass");
        let Ok(text) = pass else { return };
        let words: Vec<String> = text.split_whitespace().map(str::to_owned).collect();
        let sent = utterance.sent.len();
        let agrees = words.len() > sent && words.iter().zip(&utterance.sent).all(|(new, old)| same_word(new, old));
        if !agrees || words.len() - 1 == sent {
            return;
        }
        let mut delta = words[sent..words.len() - 1].join(" ");
        if sent > 0 {
            delta.insert(0, ' ');
        }
        utterance.sent.extend_from_slice(&words[sent..words.len() - 1]);
        let item_id = utterance.item_id.clone();
        self.send(Output::Delta { item_id, delta });
    }
}

/// Two passes' spellings of a word agree if they differ only in case and punctuation.
fn same_word(a: &str, b: &str) -> bool {
    let letters =
        |word: &str| word.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>();
    letters(a) == letters(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_agree_across_case_and_punctuation() {
        assert!(same_word("Country.", "country"));
        assert!(same_word("ask,", "Ask"));
        assert!(!same_word("ask", "asked"));
    }
}
