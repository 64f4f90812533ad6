//! Several models side by side: a models directory with tiny.en and the multilingual base
//! (imported from its wheels, see `tests/common/models.rs`), beside the Silero speech
//! detector and a file that is no model, both of which are skipped. A request picks its
//! model by name (job API, OpenAI API, the page's form, the `transcribe` command); a job
//! records which model ran it; an unknown name is refused with the installed names; and a
//! memory budget that fits one model unloads the idle one, with a log line and a metric.
//! SIGHUP rescans the directory: a model copied in is offered, a removed one no longer; an
//! unreadable directory or a vanished default model leaves what is served as it was.

use std::path::{Path, PathBuf};
use std::time::Duration;

use fantoccini::Locator;
use serde_json::Value;

use crate::common::browser::Browser;
use crate::common::html::{one, select, text};
use crate::common::wer::{wer, words};
use crate::common::{Appliance, assert_error, audio, fixture, long_wav, model, models, poll, reference, run_binary};

/// What espeak-ng says in german.wav (tests/languages.rs has the same text and says why).
const GERMAN: &str = "Guten Morgen, wie geht es Ihnen heute? Ich trinke gerne eine Tasse Kaffee mit Milch. \
                      Am Abend gehen wir nach Hause.";

/// A models directory as the packages make one: tiny.en, base and the speech detector, plus
/// a `.bin` that is not a model. Returns the folder and the tiny.en file in it (the default).
fn models_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("ggml-tiny.en.bin");
    std::os::unix::fs::symlink(model(), &tiny).unwrap();
    std::os::unix::fs::symlink(models::base(), dir.path().join("ggml-base.bin")).unwrap();
    let vad = model().with_file_name("ggml-silero-v6.2.0.bin");
    if vad.is_file() {
        std::os::unix::fs::symlink(vad, dir.path().join("ggml-silero-v6.2.0.bin")).unwrap();
    }
    std::fs::write(dir.path().join("ggml-notes.bin"), b"not a model at all").unwrap();
    (dir, tiny)
}

fn start(dir: &Path, tiny: &Path, extra: &[&str]) -> Appliance {
    let dir = dir.to_str().unwrap();
    let mut args = vec!["--models-dir", dir];
    args.extend_from_slice(extra);
    Appliance::start_with_model(tiny, &args)
}

fn get_json(appliance: &Appliance, path: &str) -> Value {
    appliance.client().get(format!("{}{path}", appliance.url)).send().unwrap().json().unwrap()
}

fn metrics(appliance: &Appliance) -> String {
    appliance.client().get(format!("{}/metrics", appliance.url)).send().unwrap().text().unwrap()
}

/// The server's JSON log lines with this message.
fn log_lines(appliance: &Appliance, message: &str) -> Vec<Value> {
    appliance
        .logs()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["message"] == message)
        .collect()
}

#[test]
fn base_translates_german_while_tiny_en_transcribes_and_both_are_listed() {
    let (dir, tiny) = models_dir();
    let appliance = start(dir.path(), &tiny, &["--workers", "2"]);

    // Both models, by the names `model info` gives them; the detector and the junk skipped.
    let listed = get_json(&appliance, "/v1/models");
    let ids: Vec<&str> = listed["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["whisper-1", "tiny.en", "base"], "{listed}");
    assert!(listed["data"].as_array().unwrap().iter().all(|m| m["object"] == "model"), "{listed}");
    let ready = get_json(&appliance, "/readyz");
    assert_eq!((&ready["model"], &ready["model_loaded"]), (&"tiny.en".into(), &true.into()), "{ready}");
    assert_eq!(ready["models"], serde_json::json!(["tiny.en", "base"]), "{ready}");

    // A long English job on the default model, and German on base while it runs.
    let scratch = tempfile::tempdir().unwrap();
    let english = appliance.submit(&long_wav(scratch.path(), 8), &[]);
    appliance.wait_running(&english, Duration::from_secs(120));
    let german = fixture("german.wav");
    let translate = appliance.submit(&german, &[("model", "base"), ("translate", "true")]);
    poll("the base job runs while the tiny.en job does", Duration::from_secs(120), || {
        let (tiny_job, base_job) = (appliance.job(&english), appliance.job(&translate));
        assert_eq!(tiny_job["status"], "running", "the tiny.en job ended before the base job started: {tiny_job}");
        (base_job["status"] == "running").then_some(())
    });
    let detect = appliance.submit(&german, &[("model", "base")]);

    let wait = Duration::from_secs(600);
    let job = appliance.wait_finished(&translate, wait);
    assert_eq!(
        (&job["status"], &job["model"], &job["translate"], &job["language"]),
        (&"done".into(), &"base".into(), &true.into(), &"de".into()),
        "{job}"
    );
    let english_text = words(&appliance.result(&translate, "txt"));
    for key in ["good", "morning", "coffee", "milk"] {
        assert!(english_text.iter().any(|w| w == key), "no {key:?} in the translation: {english_text:?}");
    }
    let job = appliance.wait_finished(&detect, wait);
    assert_eq!(
        (&job["status"], &job["model"], &job["language"]),
        (&"done".into(), &"base".into(), &"de".into()),
        "{job}"
    );
    let text = appliance.result(&detect, "txt");
    assert!(wer(GERMAN, &text) <= 0.25, "{text}");

    // The default model ran the job that named none, and the record says so.
    let job = appliance.wait_finished(&english, wait);
    assert_eq!(
        (&job["status"], &job["model"], &job["language"]),
        (&"done".into(), &"tiny.en".into(), &"en".into()),
        "{job}"
    );
    let metrics = metrics(&appliance);
    assert!(metrics.contains("whisper_appliance_model_loads_total{model=\"base\"} 1"), "{metrics}");
    assert!(metrics.contains("whisper_appliance_model_loads_total{model=\"tiny.en\"} 1"), "{metrics}");
    appliance.assert_temp_empty();
}

#[test]
fn unknown_names_and_what_a_model_cannot_do_are_refused() {
    let (dir, tiny) = models_dir();
    let appliance = start(dir.path(), &tiny, &[]);
    let jfk = audio("jfk.wav");

    let message = assert_error(appliance.upload(&jfk, &[("model", "large-v3")]), 400, "model_not_found");
    assert!(message.contains("\"large-v3\"") && message.contains("tiny.en, base"), "{message}");
    let form = reqwest::blocking::multipart::Form::new().file("file", &jfk).unwrap().text("model", "whisper-9");
    let response =
        appliance.client().post(format!("{}/v1/audio/transcriptions", appliance.url)).multipart(form).send().unwrap();
    let message = assert_error(response, 400, "model_not_found");
    assert!(message.contains("tiny.en, base"), "{message}");
    // Checked per model: tiny.en cannot translate though base can.
    assert_error(
        appliance.upload(&jfk, &[("model", "tiny.en"), ("translate", "true")]),
        400,
        "translation_unavailable",
    );

    // OpenAI's API picks an installed model by name, and whisper-1 is the default.
    for (name, ran) in [("base", "base"), ("whisper-1", "tiny.en")] {
        let form = reqwest::blocking::multipart::Form::new().file("file", &jfk).unwrap().text("model", name);
        let response = appliance
            .client()
            .post(format!("{}/v1/audio/transcriptions", appliance.url))
            .multipart(form)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().unwrap();
        assert!(wer(&reference("jfk.wav"), body["text"].as_str().unwrap()) <= 0.1, "{name}: {body}");
        let jobs = get_json(&appliance, "/api/jobs?limit=1");
        assert_eq!(jobs["jobs"][0]["model"], ran, "{jobs}");
    }
    appliance.assert_temp_empty();
}

#[test]
fn the_page_offers_each_model_with_what_it_is_for() {
    let (dir, tiny) = models_dir();
    let appliance = start(dir.path(), &tiny, &[]);
    let page = scraper::Html::parse_document(&appliance.client().get(&appliance.url).send().unwrap().text().unwrap());
    let options = select(&page, "select#model option");
    let labels: Vec<String> = options.iter().map(|option| text(*option)).collect();
    assert_eq!(labels, ["tiny.en: English, fastest (default)", "base: 99 languages, translation"], "{labels:?}");
    assert_eq!(options[0].attr("data-multilingual"), Some("false"));
    assert_eq!(options[1].attr("data-multilingual"), Some("true"));
    // The language menu and Translate are in the page for the multilingual model (the
    // script hides them while tiny.en is chosen; without it, they stay).
    one(&page, "#language-options select#language");
    one(&page, "#language-options input#translate");

    // The no-JS form picks base, and the job's page names the model that ran it.
    let form = reqwest::blocking::multipart::Form::new()
        .file("file", fixture("german.wav"))
        .unwrap()
        .text("model", "base")
        .text("language", "de");
    let client = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = client.post(format!("{}/jobs", appliance.url)).multipart(form).send().unwrap();
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let id = location.trim_start_matches("/jobs/");
    let job = appliance.wait_finished(id, Duration::from_secs(600));
    assert_eq!((&job["status"], &job["model"]), (&"done".into(), &"base".into()), "{job}");
    let page = scraper::Html::parse_document(
        &appliance.client().get(format!("{}{location}", appliance.url)).send().unwrap().text().unwrap(),
    );
    assert_eq!(text(one(&page, ".card-model")), "Model: base");
    let index = scraper::Html::parse_document(&appliance.client().get(&appliance.url).send().unwrap().text().unwrap());
    assert_eq!(text(one(&index, "#history .history-row .row-model")), "base");
}

#[test]
fn a_budget_for_one_model_unloads_the_idle_one() {
    let (dir, tiny) = models_dir();
    let sizes: Vec<u64> =
        [model(), models::base().to_owned()].iter().map(|p| std::fs::metadata(p).unwrap().len()).collect();
    // Room for base (the larger) but not for both.
    let budget_mb = sizes[1] / 1_000_000 + 5;
    assert!(budget_mb * 1_000_000 < sizes[0] + sizes[1]);
    let budget = budget_mb.to_string();
    let appliance = start(dir.path(), &tiny, &["--model-memory-mb", &budget]);
    let jfk = audio("jfk.wav");

    let on_base = appliance.submit(&jfk, &[("model", "base")]);
    let job = appliance.wait_finished(&on_base, Duration::from_secs(600));
    assert_eq!((&job["status"], &job["model"]), (&"done".into(), &"base".into()), "{job}");
    let unloaded = log_lines(&appliance, "model unloaded to stay within the memory budget");
    assert_eq!(unloaded.len(), 1, "{}", appliance.logs());
    assert_eq!(unloaded[0]["model"], "tiny.en", "{}", unloaded[0]);
    let metrics_text = metrics(&appliance);
    assert!(metrics_text.contains("whisper_appliance_model_unloads_total{model=\"tiny.en\"} 1"), "{metrics_text}");
    let ready = get_json(&appliance, "/readyz");
    assert_eq!((&ready["model_loaded"], &ready["loaded"]), (&false.into(), &serde_json::json!(["base"])), "{ready}");

    // The default model comes back for the next job that needs it, and base goes.
    let on_default = appliance.submit(&jfk, &[]);
    let job = appliance.wait_finished(&on_default, Duration::from_secs(600));
    assert_eq!((&job["status"], &job["model"]), (&"done".into(), &"tiny.en".into()), "{job}");
    assert!(wer(&reference("jfk.wav"), &appliance.result(&on_default, "txt")) <= 0.05);
    let unloaded = log_lines(&appliance, "model unloaded to stay within the memory budget");
    assert_eq!(unloaded.iter().map(|line| line["model"].as_str().unwrap()).collect::<Vec<_>>(), ["tiny.en", "base"]);
    let metrics_text = metrics(&appliance);
    assert!(metrics_text.contains("whisper_appliance_model_unloads_total{model=\"base\"} 1"), "{metrics_text}");
    let ready = get_json(&appliance, "/readyz");
    assert_eq!((&ready["model_loaded"], &ready["loaded"]), (&true.into(), &serde_json::json!(["tiny.en"])), "{ready}");

    // Both have finished a job on the same clip: the menu says how base compared, as measured.
    let page = scraper::Html::parse_document(&appliance.client().get(&appliance.url).send().unwrap().text().unwrap());
    let labels: Vec<String> = select(&page, "select#model option").into_iter().map(text).collect();
    assert_eq!(labels[0], "tiny.en: English, fastest (default)");
    let measured = labels[1].strip_prefix("base: 99 languages, translation, about ").unwrap_or_default();
    assert!(measured.ends_with(" times slower here") || measured == "as fast here", "{labels:?}");
}

#[test]
fn transcribe_takes_a_model_by_name_from_the_directory() {
    let (dir, _) = models_dir();
    let models_dir = dir.path().to_str().unwrap();
    let jfk = audio("jfk.wav");
    let output = run_binary(&["transcribe", "--models-dir", models_dir, "--model", "tiny.en", jfk.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(wer(&reference("jfk.wav"), &stdout) <= 0.05, "{stdout}");

    let output = run_binary(&["transcribe", "--models-dir", models_dir, "--model", "small", jfk.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("\"small\"") && stderr.contains("tiny.en, base"), "{stderr}");
}

#[test]
fn in_a_browser_the_language_fields_follow_the_chosen_model() {
    let (dir, tiny) = models_dir();
    let appliance = start(dir.path(), &tiny, &[]);
    let german = fixture("german.wav");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let browser = Browser::start(1100, 1300).await;
        let client = &browser.client;
        client.goto(&format!("{}/", appliance.url)).await.unwrap();
        browser
            .wait_for("the script to enhance the form", Duration::from_secs(10), "!document.getElementById('dropzone').hidden")
            .await;
        let shown = "return [document.getElementById('language-options').hidden, document.getElementById('english-only').hidden];";
        // tiny.en, the default, is chosen: English only, so no language menu and no Translate.
        assert_eq!(browser.js(shown).await, serde_json::json!([true, false]));
        browser
            .js("const menu = document.getElementById('model'); menu.value = 'base'; menu.dispatchEvent(new Event('change')); return true;")
            .await;
        assert_eq!(browser.js(shown).await, serde_json::json!([false, true]));
        assert_eq!(browser.axe().await, Vec::<String>::new(), "axe-core finds violations with the model menu");

        browser.js("document.getElementById('language').value = 'de'; return true;").await;
        let input = client.find(Locator::Css("#file")).await.unwrap();
        input.send_keys(german.canonicalize().unwrap().to_str().unwrap()).await.unwrap();
        client.find(Locator::Css("#upload-form button[type=submit]")).await.unwrap().click().await.unwrap();
        let card = "[...document.querySelectorAll('#cards .card')].find((c) => c.querySelector('.card-link').textContent === 'german.wav')";
        browser
            .wait_for("the German transcript on base", Duration::from_secs(600), &format!("{card}?.dataset.final === 'true'"))
            .await;
        let model = browser.js(&format!("const m = {card}.querySelector('.card-model'); return [m.hidden, m.textContent];")).await;
        assert_eq!(model, serde_json::json!([false, "Model: base"]));
        let text = browser
            .js(&format!("return [...{card}.querySelectorAll('.segments .text')].map((n) => n.textContent).join(' ');"))
            .await;
        assert!(wer(GERMAN, text.as_str().unwrap()) <= 0.25, "{text}");
        browser
            .wait_for(
                "the history row to name the model",
                Duration::from_secs(30),
                "document.querySelector('#history .history-row .row-model')?.textContent === 'base'",
            )
            .await;
        let (csp, errors) = browser.problems().await;
        assert_eq!((csp, errors), (Vec::<String>::new(), Vec::<String>::new()));
        browser.close().await;
    });
}

#[test]
fn a_quantized_copy_is_served_under_its_own_name() {
    let (dir, tiny) = models_dir();
    let quantized = dir.path().join("ggml-tiny.en-q8_0.bin");
    let output =
        run_binary(&["model", "quantize", "--type", "q8_0", model().to_str().unwrap(), quantized.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let appliance = start(dir.path(), &tiny, &[]);
    let listed = get_json(&appliance, "/v1/models");
    let ids: Vec<&str> = listed["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    // The default first, then the others smallest first.
    assert_eq!(ids, ["whisper-1", "tiny.en", "tiny.en-q8_0", "base"], "{listed}");
    let id = appliance.submit(&audio("jfk.wav"), &[("model", "tiny.en-q8_0")]);
    let job = appliance.wait_finished(&id, Duration::from_secs(300));
    assert_eq!((&job["status"], &job["model"]), (&"done".into(), &"tiny.en-q8_0".into()), "{job}");
    assert!(wer(&reference("jfk.wav"), &appliance.result(&id, "txt")) <= 0.1);
}

/// `systemctl reload` (SIGHUP) as a model package sends it: a model file copied into the
/// directory is offered by name without a restart, and one removed stops being offered.
#[test]
fn a_hangup_offers_models_added_to_the_directory_and_drops_removed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = dir.path().join("ggml-tiny.en.bin");
    std::os::unix::fs::symlink(model(), &tiny).unwrap();
    let vad = model().with_file_name("ggml-silero-v6.2.0.bin");
    if vad.is_file() {
        std::os::unix::fs::symlink(vad, dir.path().join("ggml-silero-v6.2.0.bin")).unwrap();
    }
    let appliance = start(dir.path(), &tiny, &[]);
    let ids = |appliance: &Appliance| -> Vec<String> {
        let listed = get_json(appliance, "/v1/models");
        listed["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(&appliance), ["whisper-1", "tiny.en"]);

    // Made elsewhere and copied in, as dpkg unpacks a package's file.
    let elsewhere = tempfile::tempdir().unwrap();
    let made = elsewhere.path().join("ggml-tiny.en-q8_0.bin");
    let output =
        run_binary(&["model", "quantize", "--type", "q8_0", model().to_str().unwrap(), made.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let installed = dir.path().join("ggml-tiny.en-q8_0.bin");
    std::fs::copy(&made, &installed).unwrap();
    let hangup = || {
        let pid = nix::unistd::Pid::from_raw(appliance.pid().try_into().unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    };
    hangup();
    poll("the copied model is listed", Duration::from_secs(60), || {
        (ids(&appliance) == ["whisper-1", "tiny.en", "tiny.en-q8_0"]).then_some(())
    });
    let ready = get_json(&appliance, "/readyz");
    assert_eq!(ready["models"], serde_json::json!(["tiny.en", "tiny.en-q8_0"]), "{ready}");
    let rescans = log_lines(&appliance, "models rescanned");
    assert!(rescans.iter().any(|line| line["added"].to_string().contains("tiny.en-q8_0")), "{rescans:?}");
    let id = appliance.submit(&audio("jfk.wav"), &[("model", "tiny.en-q8_0")]);
    let job = appliance.wait_finished(&id, Duration::from_secs(300));
    assert_eq!((&job["status"], &job["model"]), (&"done".into(), &"tiny.en-q8_0".into()), "{job}");
    assert!(wer(&reference("jfk.wav"), &appliance.result(&id, "txt")) <= 0.1);

    std::fs::remove_file(&installed).unwrap();
    hangup();
    poll("the removed model is no longer listed", Duration::from_secs(60), || {
        (ids(&appliance) == ["whisper-1", "tiny.en"]).then_some(())
    });
    let message =
        assert_error(appliance.upload(&audio("jfk.wav"), &[("model", "tiny.en-q8_0")]), 400, "model_not_found");
    assert!(message.contains("\"tiny.en-q8_0\"") && message.contains("installed: tiny.en"), "{message}");
    // The default model still serves.
    let id = appliance.submit(&audio("jfk.wav"), &[]);
    assert_eq!(appliance.wait_finished(&id, Duration::from_secs(300))["status"], "done");
}

/// A rescan that cannot read the directory keeps the models offered, and a default model
/// whose file vanished keeps being served from memory.
#[test]
fn a_hangup_keeps_the_models_when_the_directory_or_the_default_file_is_gone() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("models");
    std::fs::create_dir(&dir).unwrap();
    let tiny = dir.join("ggml-tiny.en.bin");
    std::fs::copy(model(), &tiny).unwrap();
    let vad = model().with_file_name("ggml-silero-v6.2.0.bin");
    if vad.is_file() {
        std::os::unix::fs::symlink(vad, dir.join("ggml-silero-v6.2.0.bin")).unwrap();
    }
    let appliance = start(&dir, &tiny, &[]);
    let hangup = || {
        let pid = nix::unistd::Pid::from_raw(appliance.pid().try_into().unwrap());
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
    };
    let still_serves = || {
        let listed = get_json(&appliance, "/v1/models");
        let ids: Vec<&str> = listed["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert_eq!(ids, ["whisper-1", "tiny.en"], "{listed}");
        let id = appliance.submit(&audio("jfk.wav"), &[]);
        assert_eq!(appliance.wait_finished(&id, Duration::from_secs(300))["status"], "done");
    };

    let moved = parent.path().join("elsewhere");
    std::fs::rename(&dir, &moved).unwrap();
    hangup();
    let failed = poll("the failed rescan is logged", Duration::from_secs(60), || {
        log_lines(&appliance, "cannot rescan the models directory; the models offered stay as they were").pop()
    });
    assert!(failed["cause"].as_str().unwrap_or_default().contains("No such file"), "{failed}");
    still_serves();

    std::fs::rename(&moved, &dir).unwrap();
    std::fs::remove_file(&tiny).unwrap();
    hangup();
    poll("the vanished default model is logged", Duration::from_secs(60), || {
        log_lines(&appliance, "cannot read the default model's file; serving it from memory until restart").pop()
    });
    still_serves();
}
