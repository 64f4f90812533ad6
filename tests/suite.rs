//! The integration tests, one module per area, linked into one binary: the crate and
//! whisper.cpp are linked once rather than once per file, and the test harness runs any two
//! tests at a time across all areas. Each module's own paragraph says what it covers;
//! `cargo test --test suite <module>::` runs one area.

mod common;

mod admin;
mod audio_decode;
mod auth;
mod concurrency;
mod config;
mod crash_recovery;
mod formats;
mod headers;
mod hostile;
mod jobs;
mod keys;
mod languages;
mod layers;
mod lifecycle;
mod live;
mod model_import;
mod model_quantize;
mod models;
mod non_speech;
mod openai_api;
mod openapi;
mod queue;
mod routes;
mod service_start;
mod speech_detection;
mod transcribe;
mod ui;
mod upload;
