//! The upload page: its HTML and assets over HTTP, the form that works without
//! JavaScript, and the real page in headless Chromium uploading jfk.wav.

use std::time::{Duration, Instant};

use crate::common::browser::Browser;
use crate::common::html::{attributes, one, select, text};
use crate::common::{Appliance, audio, reference, wer::wer};
use fantoccini::Locator;
use fantoccini::key::Key;
use reqwest::blocking::{Client, multipart};
use scraper::Html;

const FORMATS: [&str; 5] = ["txt", "srt", "vtt", "json", "tsv"];

/// A client that shows redirects instead of following them.
fn no_redirects() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(Duration::from_secs(120)).build().unwrap()
}

/// The server's message as the page shows it: a sentence.
fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    chars.next().map(|first| first.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The transcript lines a job page shows.
fn page_segments(page: &Html) -> Vec<String> {
    select(page, "span.text").into_iter().map(text).collect()
}

/// The file names the history on a page lists, as its links show them.
fn history_names(page: &Html) -> Vec<String> {
    select(page, "#history a.history-link").into_iter().map(text).collect()
}

/// The delays of the `<meta http-equiv="refresh">`s a page holds in `<noscript>`, which
/// only a browser without JavaScript follows. The parser reads as a browser with scripting
/// on does, to which a `<noscript>` in the head is text: that text is parsed again here.
fn noscript_refreshes(page: &Html) -> Vec<String> {
    select(page, "noscript")
        .into_iter()
        .flat_map(|noscript| {
            let inner = Html::parse_fragment(&text(noscript));
            select(&inner, "meta[http-equiv=refresh]")
                .into_iter()
                .map(|meta| meta.attr("content").unwrap_or_default().to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn assert_valid_srt(srt: &str) {
    let lines: Vec<&str> = srt.lines().collect();
    assert_eq!(lines[0], "1", "{srt}");
    let (start, end) = lines[1].split_once(" --> ").unwrap_or_else(|| panic!("no cue timing: {srt}"));
    for stamp in [start, end] {
        let shape: String = stamp.chars().map(|c| if c.is_ascii_digit() { '9' } else { c }).collect();
        assert_eq!(shape, "99:99:99,999", "{srt}");
    }
    let text: Vec<&str> =
        lines.iter().copied().filter(|l| !l.is_empty() && !l.contains(" --> ") && l.parse::<u32>().is_err()).collect();
    assert!(wer(&reference("jfk.wav"), &text.join(" ")) <= 0.05, "{srt}");
}

#[test]
fn the_page_links_only_hashed_assets_and_has_no_inline_code() {
    let appliance = Appliance::start(&[]);
    let response = appliance.client().get(format!("{}/", appliance.url)).send().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert!(response.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
    let page = Html::parse_document(&response.text().unwrap());

    // Every script is an empty element with a src: a strict CSP runs nothing inline.
    let scripts = select(&page, "script");
    assert!(!scripts.is_empty());
    for script in scripts {
        let tag = script.html();
        assert!(script.attr("src").is_some_and(|src| src.starts_with("/static/")), "{tag}");
        assert!(script.inner_html().is_empty(), "inline script body in {tag}");
    }
    assert!(select(&page, "style").is_empty(), "inline <style>");
    assert!(select(&page, "[style]").is_empty(), "style= attribute");
    // No event handler attribute (onclick=, onload=...) and no javascript: URL anywhere.
    for element in select(&page, "*") {
        for (name, value) in element.value().attrs() {
            assert!(!name.to_ascii_lowercase().starts_with("on"), "inline handler {name}= on {}", element.html());
            assert!(
                !value.to_ascii_lowercase().contains("javascript:"),
                "javascript: in {name}= on {}",
                element.html()
            );
        }
    }

    // Assets: only our own, only under /static/<16 hex digits>/<file>.
    let links: Vec<&str> = attributes(&page, "href").into_iter().chain(attributes(&page, "src")).collect();
    assert!(links.iter().all(|link| !link.starts_with("http") && !link.starts_with("//")), "{links:?}");
    let assets: Vec<&str> = links.iter().copied().filter(|link| link.starts_with("/static/")).collect();
    for file in ["app.css", "app.js", "favicon.svg"] {
        assert!(assets.iter().any(|asset| asset.ends_with(&format!("/{file}"))), "{file} not linked: {assets:?}");
    }
    for asset in &assets {
        let parts: Vec<&str> = asset.split('/').collect();
        assert_eq!(parts.len(), 4, "{asset}");
        assert!(parts[2].len() == 16 && parts[2].bytes().all(|b| b.is_ascii_hexdigit()), "{asset}");
    }

    // The form works on its own: a real multipart post to /jobs with the API's fields.
    let form =
        one(&page, "form#upload-form[class=upload][method=post][action=\"/jobs\"][enctype=\"multipart/form-data\"]");
    for field in ["[name=file]", "[name=prompt]", "label[for=file]", "label[for=prompt]", "label[for=words]"] {
        assert!(!select(&page, &format!("#upload-form {field}")).is_empty(), "missing {field}");
    }
    // Word timings are asked for, not given by default: they slow some recordings down.
    one(&page, "#upload-form input[type=checkbox][name=words][value=true]:not([checked])");
    // tiny.en knows only English: no language menu and no Translate, and the page says why.
    assert!(select(&page, "[name=language], [name=translate]").is_empty(), "{}", page.html());
    assert_eq!(text(one(&page, ".model-note")), "This model transcribes English only.");
    // The script checks files before sending them, in the server's words.
    let checks = |name: &str| form.attr(name).unwrap_or_else(|| panic!("no {name} on {}", form.html())).to_owned();
    assert!(checks("data-too-large").starts_with("The file is over the "), "{}", form.html());
    assert!(
        checks("data-not-audio").starts_with("This is not audio we can read (looks like {type})"),
        "{}",
        form.html()
    );
    // The history searches and pages without JavaScript too.
    one(&page, "form#history-search[class=history-search][role=search][method=get][action=\"/\"]");
}

#[test]
fn assets_are_typed_cached_forever_and_revalidated() {
    let appliance = Appliance::start(&[]);
    let client = appliance.client();
    let page = Html::parse_document(&client.get(format!("{}/", appliance.url)).send().unwrap().text().unwrap());
    let mut assets: Vec<String> = attributes(&page, "href")
        .into_iter()
        .chain(attributes(&page, "src"))
        .filter(|link| link.starts_with("/static/"))
        .map(str::to_owned)
        .collect();
    assets.sort();
    assets.dedup();
    for asset in assets {
        let url = format!("{}{asset}", appliance.url);
        let response = client.get(&url).send().unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        let expected = match asset.rsplit('.').next().unwrap() {
            "css" => "text/css; charset=utf-8",
            "js" => "text/javascript; charset=utf-8",
            "svg" => "image/svg+xml",
            other => panic!("unexpected asset type {other}"),
        };
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], expected, "{asset}");
        assert_eq!(headers["cache-control"], "public, max-age=31536000, immutable", "{asset}");
        let etag = headers["etag"].to_str().unwrap().to_owned();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        assert!(!response.bytes().unwrap().is_empty());

        let revalidated = client.get(&url).header("if-none-match", &etag).send().unwrap();
        assert_eq!(revalidated.status(), 304, "{asset}");
        assert_eq!(revalidated.headers()["etag"], etag.as_str());
        assert!(revalidated.bytes().unwrap().is_empty());
        let changed = client.get(&url).header("if-none-match", "\"something-else\"").send().unwrap();
        assert_eq!(changed.status(), 200);

        let file = asset.rsplit('/').next().unwrap();
        for wrong in [format!("/static/0000000000000000/{file}"), format!("/static/{}/nope.js", &asset[8..24])] {
            let response = client.get(format!("{}{wrong}", appliance.url)).send().unwrap();
            crate::common::assert_error(response, 404, "not_found");
        }
    }
}

#[test]
fn the_no_js_form_uploads_and_the_job_page_shows_the_transcript() {
    let appliance = Appliance::start(&[]);
    let client = no_redirects();
    let form =
        multipart::Form::new().text("prompt", "Ask not.").text("words", "true").file("file", audio("jfk.wav")).unwrap();
    let response = client.post(format!("{}/jobs", appliance.url)).multipart(form).send().unwrap();
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let id = location.strip_prefix("/jobs/").unwrap_or_else(|| panic!("{location}")).to_owned();
    assert!(uuid::Uuid::try_parse(&id).is_ok(), "{location}");

    // Until it is done the page refreshes itself (without JS) and has no downloads yet.
    let deadline = Instant::now() + Duration::from_secs(120);
    let page = loop {
        let response = client.get(format!("{}{location}", appliance.url)).send().unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
        let page = Html::parse_document(&response.text().unwrap());
        if !select(&page, "[data-status=done]").is_empty() {
            break page;
        }
        let html = page.html();
        assert_eq!(noscript_refreshes(&page), ["2"], "{html}");
        assert!(select(&page, "[href*=\"result?format=\"]").is_empty(), "downloads before the job is done: {html}");
        assert!(Instant::now() < deadline, "the job page never showed the job done: {html}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let html = page.html();
    assert!(
        noscript_refreshes(&page).is_empty() && select(&page, "meta[http-equiv=refresh]").is_empty(),
        "a finished job's page must stop refreshing: {html}"
    );
    let segments = page_segments(&page);
    assert!(wer(&reference("jfk.wav"), &segments.join(" ")) <= 0.05, "{segments:?}");
    assert!(select(&page, "span.ts").into_iter().any(|ts| text(ts) == "[00:00]"), "timestamps: {html}");
    for format in FORMATS {
        let link = format!("a[href=\"/api/jobs/{id}/result?format={format}\"]");
        assert!(!select(&page, &link).is_empty(), "no {format} download: {html}");
    }
    let srt = appliance.result(&id, "srt");
    assert_valid_srt(&srt);
    // The form's "Time each word" reached the job: its segments carry timed words.
    let json: serde_json::Value = serde_json::from_str(&appliance.result(&id, "json")).unwrap();
    let words: Vec<&serde_json::Value> =
        json["segments"].as_array().unwrap().iter().flat_map(|s| s["words"].as_array().unwrap()).collect();
    assert!(words.len() >= 20 && words.iter().all(|w| w["end"].as_f64() >= w["start"].as_f64()), "{json}");

    // The history on the front page links to it.
    let index = Html::parse_document(&client.get(format!("{}/", appliance.url)).send().unwrap().text().unwrap());
    assert_eq!(text(one(&index, &format!("a.history-link[href=\"/jobs/{id}\"]"))), "jfk.wav");
    appliance.assert_temp_empty();
}

#[test]
fn a_refused_no_js_upload_shows_the_servers_message_and_status() {
    let appliance = Appliance::start(&[]);
    let notes = "These are meeting notes, not a recording, saved with the wrong extension.\n".repeat(4);
    let upload = |path: &str| {
        let part = multipart::Part::text(notes.clone()).file_name("notes.wav").mime_str("text/plain").unwrap();
        let form = multipart::Form::new().text("prompt", "Kubernetes, Zürich").text("words", "true").part("file", part);
        no_redirects().post(format!("{}{path}", appliance.url)).multipart(form).send().unwrap()
    };
    let api_message = crate::common::assert_error(upload("/api/jobs"), 415, "unsupported_media_type");

    let response = upload("/jobs");
    assert_eq!(response.status(), 415);
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    let page = Html::parse_document(&response.text().unwrap());
    // The message is in the alert region.
    assert_eq!(text(one(&page, "[role=alert] > p:first-child")), sentence(&api_message));
    // The form is there again, with the words to expect that were sent.
    one(&page, "form[action=\"/jobs\"]");
    assert_eq!(text(one(&page, "textarea[name=prompt]")), "Kubernetes, Zürich");
    one(&page, "input[name=words][checked]");
    // Reloading the address the refused post left behind (GET /jobs) lands on the form.
    let reload = no_redirects().get(format!("{}/jobs", appliance.url)).send().unwrap();
    assert_eq!(reload.status(), 303);
    assert_eq!(reload.headers()["location"], "/");
    appliance.assert_temp_empty();
}

#[test]
fn the_no_js_delete_removes_the_job_and_returns_to_the_page() {
    let appliance = Appliance::start(&[]);
    let id = appliance.submit(&audio("jfk.wav"), &[]);
    appliance.wait_finished(&id, Duration::from_secs(120));
    let client = no_redirects();
    let index = Html::parse_document(&client.get(format!("{}/", appliance.url)).send().unwrap().text().unwrap());
    one(&index, &format!("form.delete-form[method=post][action=\"/jobs/{id}/delete\"]"));

    let response = client.post(format!("{}/jobs/{id}/delete", appliance.url)).send().unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/");
    crate::common::assert_error(
        client.get(format!("{}/api/jobs/{id}", appliance.url)).send().unwrap(),
        404,
        "not_found",
    );
    let index = client.get(format!("{}/", appliance.url)).send().unwrap().text().unwrap();
    assert!(!index.contains(&id), "{index}");

    // Deleting again, or a job page for it, is a 404 page.
    let again = client.post(format!("{}/jobs/{id}/delete", appliance.url)).send().unwrap();
    assert_eq!(again.status(), 404);
    let page = client.get(format!("{}/jobs/{id}", appliance.url)).send().unwrap();
    assert_eq!(page.status(), 404);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let page = Html::parse_document(&page.text().unwrap());
    assert!(text(one(&page, "[role=alert]")).contains("No such job"), "{}", page.html());
}

#[test]
fn job_pages_for_unknown_ids_are_not_found() {
    let appliance = Appliance::start(&[]);
    for id in ["nope", "00000000-0000-0000-0000-000000000000", "..%2F..%2Fetc%2Fpasswd"] {
        let response = appliance.client().get(format!("{}/jobs/{id}", appliance.url)).send().unwrap();
        assert_eq!(response.status(), 404, "{id}");
    }
}

/// Records, per card (by file name), each segment added and whether the card had its final
/// transcript yet, and every status text it showed.
const OBSERVER: &str = "window.__seen = {};
    new MutationObserver((records) => {
      for (const record of records) {
        const card = record.target.closest && record.target.closest('.card');
        if (!card) continue;
        const seen = (window.__seen[card.querySelector('.card-link').textContent] ??= { segments: [], statuses: [] });
        for (const node of record.addedNodes) {
          if (node.nodeType === 1 && node.matches('li[data-segment]')) {
            seen.segments.push({ final: card.dataset.final === 'true', status: card.dataset.status });
          }
        }
        const status = card.querySelector('.card-status').textContent;
        if (seen.statuses.at(-1) !== status) seen.statuses.push(status);
      }
    }).observe(document.getElementById('cards'), { subtree: true, childList: true });
    return true;";

/// Drops files made in the page on `target`, as a file manager would: `files` is a script
/// expression for an array of `File`s.
fn drop_files(target: &str, files: &str) -> String {
    format!(
        "const data = new DataTransfer();
        for (const file of {files}) data.items.add(file);
        const target = {target};
        for (const type of ['dragenter', 'dragover', 'drop']) {{
          target.dispatchEvent(new DragEvent(type, {{ dataTransfer: data, bubbles: true, cancelable: true }}));
        }}
        return true;"
    )
}

const NOTES: &str = "[new File(['meeting notes, not a recording\\n'.repeat(4)], 'notes.txt', { type: 'text/plain' })]";
/// The same file (name, size, modified time) each time it is made.
const SAME_CLIP: &str = "[new File(['RIFF....WAVE'], 'clip.wav', { type: 'audio/wav', lastModified: 1700000000000 })]";

#[test]
fn a_browser_uploads_recordings_and_watches_them_become_transcripts() {
    let started = Instant::now();
    let appliance = Appliance::start(&[]);
    // A second real recording under another name, so two cards run through the queue.
    let copies = tempfile::tempdir().unwrap();
    let copy = copies.path().join("jfk-again.wav");
    std::fs::copy(audio("jfk.wav"), &copy).unwrap();
    // What the server says about the dropped text file, to compare with what the page shows.
    let part = multipart::Part::text("meeting notes, not a recording\n".repeat(4))
        .file_name("notes.txt")
        .mime_str("text/plain")
        .unwrap();
    let refused = appliance
        .client()
        .post(format!("{}/api/jobs", appliance.url))
        .multipart(multipart::Form::new().part("file", part))
        .send()
        .unwrap();
    let refusal = crate::common::assert_error(refused, 415, "unsupported_media_type");

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let browser = Browser::start(1100, 1500).await;
        let client = &browser.client;
        client.goto(&format!("{}/", appliance.url)).await.unwrap();
        browser
            .wait_for("the script to enhance the form", Duration::from_secs(10), "!document.getElementById('dropzone').hidden")
            .await;
        browser.js(OBSERVER).await;

        // The keyboard reaches the drop zone (a button) right after the skip link and the
        // home link; the native input it stands for is out of the tab order.
        for _ in 0..3 {
            client.active_element().await.unwrap().send_keys(&Key::Tab.to_string()).await.unwrap();
        }
        let focused = browser.js("const z = document.activeElement; return [z.id, z.getAttribute('role')];").await;
        assert_eq!(focused, serde_json::json!(["dropzone", "button"]));
        let input = client.find(Locator::Css("#file")).await.unwrap();
        input.send_keys(audio("jfk.wav").canonicalize().unwrap().to_str().unwrap()).await.unwrap();
        // Choosing again adds to the list rather than replacing it.
        input.send_keys(copy.to_str().unwrap()).await.unwrap();
        let listed = "[...document.querySelectorAll('#chosen-list .chosen-name')].map((n) => n.textContent).join(', ')";
        browser.wait_for("the two files to be listed", Duration::from_secs(5), &format!("{listed} === 'jfk.wav, jfk-again.wav'")).await;

        // A text file dropped beside the zone is refused before it is sent, in the server's words.
        browser.js(&drop_files("document.querySelector('h1')", NOTES)).await;
        let notes = browser.js("return document.getElementById('file-notes').textContent;").await;
        assert_eq!(notes, format!("notes.txt: {}", sentence(&refusal)).as_str());
        // The same file twice is listed once; one file can be taken off the list.
        browser.js(&drop_files("document.getElementById('dropzone')", SAME_CLIP)).await;
        browser.js(&drop_files("document.getElementById('dropzone')", SAME_CLIP)).await;
        let notes = browser.js("return document.getElementById('file-notes').textContent;").await;
        assert_eq!(notes, "Skipped clip.wav: it is already in the list.");
        assert_eq!(browser.js(&format!("return {listed};")).await, "jfk.wav, jfk-again.wav, clip.wav");
        client.set_window_size(1100, 1000).await.unwrap();
        browser.look("file-list", false).await;
        client.find(Locator::Css("#chosen-list button[aria-label='Remove clip.wav']")).await.unwrap().click().await.unwrap();
        assert_eq!(browser.js(&format!("return {listed};")).await, "jfk.wav, jfk-again.wav");
        client.find(Locator::Css("#upload-form button[type=submit]")).await.unwrap().click().await.unwrap();

        for name in ["jfk.wav", "jfk-again.wav"] {
            let card = card_named(name);
            browser
                .wait_for(
                    &format!("the final transcript of {name}"),
                    Duration::from_secs(120),
                    &format!("{card}?.dataset.final === 'true'"),
                )
                .await;
            let lines = browser
                .js(&format!(
                    "return [...{card}.querySelectorAll('.segments li')]
                        .map((li) => [li.querySelector('.ts').textContent, li.querySelector('.text').textContent]);"
                ))
                .await;
            let lines = lines.as_array().unwrap();
            assert_eq!(lines[0][0], "[00:00]", "{lines:?}");
            let text: Vec<&str> = lines.iter().map(|line| line[1].as_str().unwrap()).collect();
            assert!(wer(&reference("jfk.wav"), &text.join(" ")) <= 0.05, "{name}: {text:?}");
            let status = browser.js(&format!("return {card}.querySelector('.card-status').textContent;")).await;
            assert_eq!(status, "Done: 00:11 of speech in 00:11 of audio, English");
            let time = browser.js(&format!("return {card}.querySelector('.card-time').textContent;")).await;
            assert!(time.as_str().unwrap().starts_with("Took "), "{time}");
        }

        // Live: each card went through the queue or ran while watched, and a card seen
        // running got its text segment by segment before the final transcript.
        let seen = browser.js("return window.__seen;").await;
        eprintln!("observed in the browser: {seen}");
        for name in ["jfk.wav", "jfk-again.wav"] {
            let statuses: Vec<&str> =
                seen[name]["statuses"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
            assert!(statuses.contains(&"Uploading"), "{name}: {statuses:?}");
            assert!(statuses.iter().any(|s| s.starts_with("Queued") || *s == "Transcribing"), "{name}: {statuses:?}");
            if statuses.contains(&"Transcribing") {
                let live = seen[name]["segments"].as_array().unwrap().iter().filter(|s| s["final"] == false).count();
                assert!(live >= 1, "{name} ran while the page watched, yet no segment arrived live: {seen}");
            }
        }

        // Downloads: all five, and the srt one serves valid SRT.
        let card = card_named("jfk.wav");
        let id = browser.js(&format!("return {card}.dataset.jobId;")).await.as_str().unwrap().to_owned();
        let hrefs = browser
            .js(&format!(
                "return Object.fromEntries([...{card}.querySelectorAll('.downloads a')]
                    .map((a) => [a.dataset.format, a.getAttribute('href')]));"
            ))
            .await;
        for format in FORMATS {
            assert_eq!(hrefs[format], format!("/api/jobs/{id}/result?format={format}"), "{hrefs}");
        }
        let srt = reqwest::get(format!("{}{}", appliance.url, hrefs["srt"].as_str().unwrap())).await.unwrap();
        assert_eq!(srt.status(), 200);
        assert!(srt.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
        assert_valid_srt(&srt.text().await.unwrap());

        // The copy button answers, with "Copied." or, where the clipboard is blocked, by
        // selecting the text and saying how to copy it.
        let copy = format!("#cards .card[data-job-id=\"{id}\"] .copy");
        client.find(Locator::Css(&copy)).await.unwrap().click().await.unwrap();
        let answer = browser
            .wait_for("the copy button to answer", Duration::from_secs(5), &format!("{card}.querySelector('.copy-status').textContent"))
            .await;
        eprintln!("the copy button said: {answer}");

        // The chosen file plays in its card, from this browser's memory; a line's time
        // moves the player there and marks the line.
        let source = browser.js(&format!("return {card}.querySelector('audio.player').src;")).await;
        assert!(source.as_str().unwrap().starts_with("blob:"), "{source}");
        let line = format!("#cards .card[data-job-id=\"{id}\"] .segments li:last-child");
        let start = browser.js(&format!("return Number(document.querySelector('{line}').dataset.start);")).await;
        let start = start.as_f64().unwrap();
        browser.wait_for("the audio to load", Duration::from_secs(10), &format!("{card}.querySelector('audio').readyState >= 1")).await;
        // Somewhere else first, so the click has to move it.
        browser.js(&format!("{card}.querySelector('audio').currentTime = {}; return true;", start + 5.0)).await;
        client.find(Locator::Css(&format!("{line} button.ts"))).await.unwrap().click().await.unwrap();
        let at = browser
            .wait_for(
                "the player to move to the line",
                Duration::from_secs(5),
                &format!("document.querySelector('{line}').classList.contains('current') && {card}.querySelector('audio').currentTime"),
            )
            .await;
        browser.js(&format!("{card}.querySelector('audio').pause(); return true;")).await;
        assert!((at.as_f64().unwrap() - start).abs() < 1.0, "the player is at {at}, the line starts at {start}");

        // The history was redrawn with both jobs, done.
        browser
            .wait_for(
                "the history to list both jobs as done",
                Duration::from_secs(10),
                "document.querySelectorAll('#history .history-row .badge.status-done').length === 2",
            )
            .await;

        browser.look("upload-done", true).await;
        browser.assert_no_problems("the upload page").await;

        // The same page on a phone, light and dark, for people to look at.
        client.set_window_size(360, 1500).await.unwrap();
        let width = browser.js("return document.documentElement.scrollWidth;").await;
        assert!(width.as_u64().unwrap() <= 360, "the page scrolls sideways on a phone: {width}px wide");
        browser.look("upload-done-phone", true).await;
        let dark = serde_json::json!({ "features": [{ "name": "prefers-color-scheme", "value": "dark" }] });
        browser.cdp("Emulation.setEmulatedMedia", dark).await;
        browser.look("upload-done-phone-dark", true).await;
        browser.cdp("Emulation.setEmulatedMedia", serde_json::json!({ "features": [] })).await;
        client.set_window_size(1100, 1000).await.unwrap();

        // The job page renders the finished job itself, and the script adds the copy button.
        client.goto(&format!("{}/jobs/{id}", appliance.url)).await.unwrap();
        browser
            .wait_for("the copy button on the job page", Duration::from_secs(10), "!document.querySelector('main .card .copy').hidden")
            .await;
        browser.look("job-page", false).await;
        browser.assert_no_problems("the job page").await;

        // A long recording's page follows it live, and its Cancel button stops it.
        let long = crate::common::long_wav(copies.path(), 20);
        let part = reqwest::multipart::Part::bytes(std::fs::read(&long).unwrap()).file_name("jfk-20-times.wav");
        let submitted = reqwest::Client::new()
            .post(format!("{}/api/jobs", appliance.url))
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await
            .unwrap();
        assert_eq!(submitted.status(), 202);
        let long_id = submitted.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        client.goto(&format!("{}/jobs/{long_id}", appliance.url)).await.unwrap();
        let at_load = browser.js("return document.querySelectorAll('main .card .segments li').length;").await;
        browser
            .wait_for(
                "a segment to arrive live on the job page",
                Duration::from_secs(180),
                &format!(
                    "document.querySelector('main .card').dataset.status === 'running'
                        && !document.querySelector('main .card .job-meter').hidden
                        && document.querySelectorAll('main .card .segments li').length > {at_load}"
                ),
            )
            .await;
        let time = browser.js("return document.querySelector('main .card .card-time').textContent;").await;
        assert!(time.as_str().unwrap().starts_with("Running for "), "{time}");
        browser.look("job-running", false).await;
        client.find(Locator::Css("main .card button.cancel")).await.unwrap().click().await.unwrap();
        browser
            .wait_for(
                "the job to be cancelled",
                Duration::from_secs(20),
                "document.querySelector('main .card .card-status').textContent === 'Cancelled'
                    && document.querySelector('main .card .cancel').hidden",
            )
            .await;
        let cancelled = reqwest::get(format!("{}/api/jobs/{long_id}", appliance.url)).await.unwrap();
        assert_eq!(cancelled.json::<serde_json::Value>().await.unwrap()["status"], "cancelled");
        // The server keeps no text of a cancelled job; what arrived can be saved from the page.
        let partial = browser
            .js("const a = document.querySelector('main .card .partial-download'); return [a.hidden, a.href, a.download];")
            .await;
        assert_eq!(partial[0], false, "{partial}");
        assert!(partial[1].as_str().unwrap().starts_with("blob:"), "{partial}");
        assert_eq!(partial[2], "jfk-20-times (partial).txt");
        browser.look("job-cancelled", false).await;
        browser.assert_no_problems("the live job page").await;

        // Delete from the history with the script: it can be undone for a few seconds, then
        // the row goes, and so does the job.
        client.goto(&format!("{}/", appliance.url)).await.unwrap();
        let row = format!("#history .history-row[data-job-id=\"{id}\"]");
        client.find(Locator::Css(&format!("{row} button.delete"))).await.unwrap().click().await.unwrap();
        let focused = browser.js("return document.activeElement.textContent;").await;
        assert_eq!(focused, "Undo", "focus moves to Undo");
        browser.look("history-undo", false).await;
        assert_eq!(reqwest::get(format!("{}/api/jobs/{id}", appliance.url)).await.unwrap().status(), 200);
        client.find(Locator::Css(&format!("{row} button.undo"))).await.unwrap().click().await.unwrap();
        browser.wait_for("the row to come back", Duration::from_secs(5), &format!("document.querySelector('{row} .history-link')?.href")).await;
        assert_eq!(browser.js("return document.activeElement.className;").await, "delete");
        // A running job is cancelled from its row, not deleted.
        let running = browser.js("return document.querySelectorAll('#history .row-cancel:not([hidden])').length;").await;
        assert_eq!(running, 0);
        client.find(Locator::Css(&format!("{row} button.delete"))).await.unwrap().click().await.unwrap();
        browser
            .wait_for("the row to go", Duration::from_secs(20), &format!("!document.querySelector('{row}')"))
            .await;
        let focused = browser.js("return document.activeElement.className;").await;
        assert_eq!(focused, "delete", "focus moves to the next row's delete button");
        let gone = reqwest::get(format!("{}/api/jobs/{id}", appliance.url)).await.unwrap();
        assert_eq!(gone.status(), 404);
        browser.assert_no_problems("the history").await;

        // The recorder does see violations: an inline script is blocked and reported.
        browser
            .js("const s = document.createElement('script'); s.textContent = 'window.__ran = 1'; document.body.append(s); return true;")
            .await;
        let caught = browser.wait_for("the CSP violation to be reported", Duration::from_secs(5), "window.__csp.length").await;
        assert_eq!(caught, 1);
        assert_eq!(browser.js("return window.__ran === undefined;").await, true, "the inline script ran");

        browser.close().await;
    });
    eprintln!("browser test took {:.1} s", started.elapsed().as_secs_f64());
}

/// A script expression for the card of an upload with this file name.
fn card_named(name: &str) -> String {
    format!(
        "[...document.querySelectorAll('#cards .card')].find((c) => c.querySelector('.card-link').textContent === '{name}')"
    )
}

#[test]
fn the_job_list_searches_names_and_text_pages_and_answers_304_when_unchanged() {
    let appliance = Appliance::start(&[]);
    let copies = tempfile::tempdir().unwrap();
    let mut ids = Vec::new();
    for name in ["alpha.wav", "beta.wav", "gamma.wav"] {
        let copy = copies.path().join(name);
        std::fs::copy(audio("jfk.wav"), &copy).unwrap();
        ids.push(appliance.submit(&copy, &[]));
    }
    for id in &ids {
        appliance.wait_finished(id, Duration::from_secs(180));
    }
    let client = appliance.client();
    let list = |query: &str| -> serde_json::Value {
        let response = client.get(format!("{}/api/jobs?{query}", appliance.url)).send().unwrap();
        assert_eq!(response.status(), 200, "{query}");
        response.json().unwrap()
    };
    let names = |page: &serde_json::Value| -> Vec<String> {
        page["jobs"].as_array().unwrap().iter().map(|job| job["file_name"].as_str().unwrap().to_owned()).collect()
    };
    // By transcript text, by file name (any case), and nothing for a word never said.
    assert_eq!(names(&list("q=COUNTRY")), ["gamma.wav", "beta.wav", "alpha.wav"]);
    assert_eq!(names(&list("q=Beta")), ["beta.wav"]);
    assert_eq!(names(&list("q=zebra")), Vec::<String>::new());
    // Pages of a search keep the search.
    let first = list("limit=2&q=country");
    assert_eq!(names(&first), ["gamma.wav", "beta.wav"]);
    let next = first["next"].as_str().unwrap();
    assert!(next.contains("&q=country"), "{next}");
    let second: serde_json::Value = client.get(format!("{}{next}", appliance.url)).send().unwrap().json().unwrap();
    assert_eq!(names(&second), ["alpha.wav"]);
    assert!(second["next"].is_null());

    // A poll that finds nothing new is a bodiless 304; a change gives a new body and tag.
    let response = client.get(format!("{}/api/jobs", appliance.url)).send().unwrap();
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let unchanged = client.get(format!("{}/api/jobs", appliance.url)).header("if-none-match", &etag).send().unwrap();
    assert_eq!(unchanged.status(), 304);
    assert!(unchanged.bytes().unwrap().is_empty());
    client.delete(format!("{}/api/jobs/{}", appliance.url, ids[1])).send().unwrap();
    let changed = client.get(format!("{}/api/jobs", appliance.url)).header("if-none-match", &etag).send().unwrap();
    assert_eq!(changed.status(), 200);
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);

    // The page searches the same way without JavaScript.
    let page = |query: &str| {
        Html::parse_document(&client.get(format!("{}/{query}", appliance.url)).send().unwrap().text().unwrap())
    };
    let alpha = page("?q=alpha");
    assert_eq!(history_names(&alpha), ["alpha.wav"]);
    assert_eq!(one(&alpha, "#history-q").attr("value"), Some("alpha"), "the search box keeps the words");
    let zebra = page("?q=zebra");
    assert_eq!(text(one(&zebra, "#history-empty:not([hidden])")), "No job matches “zebra”.");
    one(&zebra, "form.history-search");
    // A done job's row offers its text.
    one(&page(""), &format!("a[href=\"/api/jobs/{}/result?format=txt\"][download]", ids[0]));
}

/// Waits until no job is queued or running.
fn wait_idle(appliance: &Appliance) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let list: serde_json::Value =
            appliance.client().get(format!("{}/api/jobs?limit=100", appliance.url)).send().unwrap().json().unwrap();
        let busy =
            list["jobs"].as_array().unwrap().iter().any(|job| job["status"] == "queued" || job["status"] == "running");
        if !busy {
            return;
        }
        assert!(Instant::now() < deadline, "jobs still active: {list}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn the_page_survives_a_reload_keeps_its_history_current_and_cancels_uploads() {
    let appliance = Appliance::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    // About a minute of speech: long enough to reload while it runs, and to search.
    let long = crate::common::long_wav(dir.path(), 6);
    // About 21 MB: sent slowly, so its upload can be cancelled half way.
    let big = crate::common::long_wav(dir.path(), 60);

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let browser = Browser::start(1100, 1000).await;
        let client = &browser.client;
        client.goto(&format!("{}/", appliance.url)).await.unwrap();
        let enhanced = "!document.getElementById('dropzone').hidden";
        browser.wait_for("the script to enhance the form", Duration::from_secs(10), enhanced).await;
        let input = client.find(Locator::Css("#file")).await.unwrap();
        input.send_keys(long.to_str().unwrap()).await.unwrap();
        client.find(Locator::Css("#upload-form button[type=submit]")).await.unwrap().click().await.unwrap();
        let card = "document.querySelector('#cards .card')";
        browser
            .wait_for(
                "the long job to run",
                Duration::from_secs(180),
                &format!("{card}.dataset.status === 'running' && {card}.querySelectorAll('.segments li').length > 0"),
            )
            .await;
        let id = browser.js(&format!("return {card}.dataset.jobId;")).await.as_str().unwrap().to_owned();
        let title = browser.js("return document.title;").await;
        assert!(title.as_str().unwrap().starts_with('('), "the tab title shows progress: {title}");
        browser.look("running", false).await;

        // Reloading mid-job brings the card back, following the job to its end.
        client.refresh().await.unwrap();
        let restored = format!("document.querySelector('#cards .card[data-job-id=\"{id}\"]')");
        browser.wait_for("the card to come back", Duration::from_secs(10), &restored).await;
        let status = browser.js(&format!("return {restored}.dataset.status;")).await;
        assert!(status == "running" || status == "done", "{status}");
        let note = browser.js(&format!("return {restored}.querySelector('.player-note').textContent;")).await;
        assert!(note.as_str().unwrap().contains("keeps no copy"), "{note}");
        browser.look("restored", false).await;
        browser
            .wait_for("the restored card to finish", Duration::from_secs(240), &format!("{restored}.dataset.final === 'true'"))
            .await;

        // Search in the transcript: every "country" is marked, and the count says so.
        let find = format!("#cards .card[data-job-id=\"{id}\"] .find-input");
        client.find(Locator::Css(&find)).await.unwrap().send_keys("country").await.unwrap();
        let marks = browser
            .wait_for("matches to be marked", Duration::from_secs(5), &format!("{restored}.querySelectorAll('mark').length"))
            .await;
        assert!(marks.as_u64().unwrap() >= 6, "{marks} matches of 'country' in six times the speech");
        let count = browser.js(&format!("return {restored}.querySelector('.find-count').textContent;")).await;
        assert_eq!(count, format!("1 of {marks} matches").as_str());
        browser.look("search", false).await;
        client.find(Locator::Css(&format!("#cards .card[data-job-id=\"{id}\"] .view[data-view=paragraphs]"))).await.unwrap().click().await.unwrap();
        assert_eq!(browser.js(&format!("return {restored}.querySelector('.segments').className;")).await, "segments paragraphs");
        browser.look("paragraphs", false).await;

        // A job sent by someone else (here, the API) appears in the history without a reload,
        // and its row follows it to the end.
        browser.js("window.__same_page = true; return true;").await;
        let part = reqwest::multipart::Part::bytes(std::fs::read(audio("jfk.wav")).unwrap()).file_name("from-api.wav");
        let submitted = reqwest::Client::new()
            .post(format!("{}/api/jobs", appliance.url))
            .multipart(reqwest::multipart::Form::new().part("file", part))
            .send()
            .await
            .unwrap();
        let other = submitted.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        browser
            .wait_for(
                "the history to show the API's job done",
                Duration::from_secs(120),
                &format!("document.querySelector('#history .history-row[data-job-id=\"{other}\"] .badge.status-done')"),
            )
            .await;
        assert_eq!(browser.js("return window.__same_page === true;").await, true, "the page was reloaded");
        browser.assert_no_problems("reload, search and history").await;

        // An upload can be cancelled while it is being sent; nothing of it stays behind.
        tokio::task::block_in_place(|| wait_idle(&appliance));
        browser.cdp("Network.enable", serde_json::json!({})).await;
        let slow = serde_json::json!({ "offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 400_000 });
        browser.cdp("Network.emulateNetworkConditions", slow).await;
        let input = client.find(Locator::Css("#file")).await.unwrap();
        input.send_keys(big.to_str().unwrap()).await.unwrap();
        client.find(Locator::Css("#upload-form button[type=submit]")).await.unwrap().click().await.unwrap();
        let uploading = "document.querySelector('#cards .card[data-status=uploading]')";
        browser.wait_for("the upload to start", Duration::from_secs(10), uploading).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        while appliance.temp_files().is_empty() {
            assert!(Instant::now() < deadline, "the upload never reached the server");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        browser.look("uploading", false).await;
        client.find(Locator::Css("#cards .card[data-status=uploading] button.cancel")).await.unwrap().click().await.unwrap();
        browser
            .wait_for(
                "the upload to be cancelled",
                Duration::from_secs(10),
                "document.querySelector('#cards .card .card-status').textContent === 'Upload cancelled'",
            )
            .await;
        tokio::task::block_in_place(|| appliance.assert_temp_empty());
        let jobs: serde_json::Value = reqwest::get(format!("{}/api/jobs", appliance.url)).await.unwrap().json().await.unwrap();
        assert_eq!(jobs["jobs"].as_array().unwrap().len(), 2, "a cancelled upload makes no job: {jobs}");
        let normal = serde_json::json!({ "offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1 });
        browser.cdp("Network.emulateNetworkConditions", normal).await;
        browser.assert_no_problems("the cancelled upload").await;
        browser.close().await;
    });
}

#[test]
fn a_long_history_pages_and_searches() {
    let appliance = Appliance::start(&["--rate-limit-per-minute", "100000"]);
    // 200 jobs, cancelled as soon as they are accepted: the history's length is what counts.
    let client = appliance.client();
    let jfk = std::fs::read(audio("jfk.wav")).unwrap();
    for n in 0..200 {
        let part = multipart::Part::bytes(jfk.clone()).file_name(format!("meeting-{n:03}.wav"));
        let response = client
            .post(format!("{}/api/jobs", appliance.url))
            .multipart(multipart::Form::new().part("file", part))
            .send()
            .unwrap();
        assert_eq!(response.status(), 202);
        let id = response.json::<serde_json::Value>().unwrap()["id"].as_str().unwrap().to_owned();
        client.post(format!("{}/api/jobs/{id}/cancel", appliance.url)).send().unwrap();
    }
    wait_idle(&appliance);

    // Without JavaScript: twenty rows and a link to the next twenty.
    let page = Html::parse_document(&client.get(format!("{}/", appliance.url)).send().unwrap().text().unwrap());
    assert_eq!(select(&page, "a.history-link[href^=\"/jobs/\"]").len(), 20);
    let older = one(&page, "[href^=\"/?before=\"]").attr("href").unwrap();
    let page = Html::parse_document(&client.get(format!("{}{older}", appliance.url)).send().unwrap().text().unwrap());
    let names = history_names(&page);
    assert!(
        names.contains(&"meeting-179.wav".to_owned()) && !names.contains(&"meeting-180.wav".to_owned()),
        "{names:?}"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let browser = Browser::start(1100, 1000).await;
        let client = &browser.client;
        client.goto(&format!("{}/", appliance.url)).await.unwrap();
        let paint = browser
            .wait_for(
                "the first paint",
                Duration::from_secs(10),
                "performance.getEntriesByName('first-contentful-paint')[0]?.startTime",
            )
            .await;
        eprintln!("first contentful paint of the page with a 200-job history: {paint} ms");
        // "Show older jobs" appends pages until all 200 are listed.
        for shown in [40, 60] {
            client.find(Locator::Id("history-older")).await.unwrap().click().await.unwrap();
            browser
                .wait_for(
                    "older jobs",
                    Duration::from_secs(10),
                    &format!("document.querySelectorAll('#history .history-row').length === {shown}"),
                )
                .await;
        }
        browser.look("history-long", false).await;
        // Searching by name narrows the list as one types.
        client.find(Locator::Id("history-q")).await.unwrap().send_keys("meeting-07").await.unwrap();
        browser
            .wait_for(
                "the search to narrow the list",
                Duration::from_secs(10),
                "document.querySelectorAll('#history .history-row').length === 10",
            )
            .await;
        browser.look("history-search", false).await;
        browser.assert_no_problems("the long history").await;
        browser.close().await;
    });
}

#[test]
fn with_word_timings_the_player_lights_up_the_word_being_played() {
    let appliance = Appliance::start(&[]);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let browser = Browser::start(1100, 900).await;
        let client = &browser.client;
        client.goto(&format!("{}/", appliance.url)).await.unwrap();
        browser
            .wait_for(
                "the script to enhance the form",
                Duration::from_secs(10),
                "!document.getElementById('dropzone').hidden",
            )
            .await;
        client.find(Locator::Id("words")).await.unwrap().click().await.unwrap();
        let input = client.find(Locator::Css("#file")).await.unwrap();
        input.send_keys(audio("jfk.wav").canonicalize().unwrap().to_str().unwrap()).await.unwrap();
        client.find(Locator::Css("#upload-form button[type=submit]")).await.unwrap().click().await.unwrap();
        let card = card_named("jfk.wav");
        browser
            .wait_for(
                "the final transcript with its words",
                Duration::from_secs(120),
                &format!("{card}?.dataset.final === 'true' && {card}.querySelectorAll('.word').length"),
            )
            .await;

        // Each line reads (and copies) exactly as the json result's text; each word is an
        // element with the result's times.
        let id = browser.js(&format!("return {card}.dataset.jobId;")).await.as_str().unwrap().to_owned();
        let result: serde_json::Value = reqwest::get(format!("{}/api/jobs/{id}/result?format=json", appliance.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let expected: Vec<&str> =
            result["segments"].as_array().unwrap().iter().map(|s| s["text"].as_str().unwrap().trim()).collect();
        let lines = browser
            .js(&format!("return [...{card}.querySelectorAll('.segments .text')].map((t) => t.textContent);"))
            .await;
        assert_eq!(lines, serde_json::json!(expected));
        let times = |words: &serde_json::Value| -> Vec<(String, f64, f64)> {
            words
                .as_array()
                .unwrap()
                .iter()
                .map(|w| (w[0].as_str().unwrap().to_owned(), w[1].as_f64().unwrap(), w[2].as_f64().unwrap()))
                .collect()
        };
        let shown = times(
            &browser
                .js(&format!(
                    "return [...{card}.querySelectorAll('.word')]
                        .map((w) => [w.textContent, Number(w.dataset.start), Number(w.dataset.end)]);"
                ))
                .await,
        );
        let timed: Vec<(String, f64, f64)> = result["segments"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["words"].as_array().unwrap())
            .map(|w| (w["word"].as_str().unwrap().to_owned(), w["start"].as_f64().unwrap(), w["end"].as_f64().unwrap()))
            .collect();
        assert_eq!(shown, timed);
        // Selected and copied, a line is the same plain text as without words.
        let rendered = browser.js(&format!("return {card}.querySelector('.segments .text').innerText;")).await;
        assert_eq!(rendered, expected[0]);

        // Moving the player marks the one word whose span holds the current time.
        let player = format!("{card}.querySelector('audio.player')");
        browser.wait_for("the audio to load", Duration::from_secs(10), &format!("{player}.readyState >= 1")).await;
        let lit = format!(
            "(() => {{ const lit = [...{card}.querySelectorAll('.word.current')];
                const t = {player}.currentTime;
                return lit.length === 1 && Number(lit[0].dataset.start) <= t && t < Number(lit[0].dataset.end)
                  && lit[0].closest('li').classList.contains('current') && lit[0].textContent; }})()"
        );
        let longer: Vec<&(String, f64, f64)> = timed.iter().filter(|(_, start, end)| end - start >= 0.1).collect();
        assert!(longer.len() >= 10, "{timed:?}");
        let mut seen = Vec::new();
        for (word, start, end) in [longer[2], longer[longer.len() - 3]] {
            browser
                .js(&format!(
                    "const p = {player}; p.currentTime = {}; p.dispatchEvent(new Event('timeupdate')); return true;",
                    (start + end) / 2.0
                ))
                .await;
            let shown = browser.wait_for(&format!("{word:?} to be lit"), Duration::from_secs(5), &lit).await;
            assert_eq!(shown, word.as_str());
            seen.push(shown);
        }
        assert_ne!(seen[0], seen[1]);
        browser
            .js(&format!("{card}.querySelector('.word.current').scrollIntoView({{ block: 'center' }}); return true;"))
            .await;
        // The highlight fades in (where motion is welcome): the picture waits for it.
        let settled = format!("{card}.querySelector('.word.current').getAnimations().length === 0");
        browser.wait_for("the highlight to settle", Duration::from_secs(5), &settled).await;
        browser.look("word-highlight", false).await;
        let dark = serde_json::json!({ "features": [{ "name": "prefers-color-scheme", "value": "dark" }] });
        browser.cdp("Emulation.setEmulatedMedia", dark).await;
        browser.wait_for("the dark highlight to settle", Duration::from_secs(5), &settled).await;
        browser.look("word-highlight-dark", false).await;
        browser.cdp("Emulation.setEmulatedMedia", serde_json::json!({ "features": [] })).await;

        // Playing (muted: a page may always play muted) moves the mark along.
        let (_, start, _) = longer[1];
        browser
            .js(&format!("const p = {player}; p.muted = true; p.currentTime = {start}; p.play(); return true;"))
            .await;
        browser
            .wait_for("the audio to play on", Duration::from_secs(10), &format!("{player}.currentTime > {start} + 1.5"))
            .await;
        browser
            .js(&format!("const p = {player}; p.pause(); p.dispatchEvent(new Event('timeupdate')); return true;"))
            .await;
        let expected = browser
            .js(&format!(
                "const t = {player}.currentTime;
                return [...{card}.querySelectorAll('.word')]
                  .find((w) => Number(w.dataset.start) <= t && t < Number(w.dataset.end))?.textContent ?? null;"
            ))
            .await;
        let now = browser.js(&format!("return {card}.querySelector('.word.current')?.textContent ?? null;")).await;
        assert_eq!(now, expected, "after playing, the lit word is the one being played");

        // Clicking a word plays from its start.
        let (word, start, _) = longer[longer.len() / 2];
        // The rewind's own `seeked` must pass before listening for the click's.
        browser
            .js(&format!(
                "const p = {player}; window.__rewound = false;
                p.addEventListener('seeked', () => {{ window.__rewound = p.currentTime === 0; }}, {{ once: true }});
                p.currentTime = 0; return true;"
            ))
            .await;
        browser.wait_for("the player to be at the start", Duration::from_secs(5), "window.__rewound").await;
        browser
            .js(&format!(
                "const p = {player};
                p.addEventListener('seeked', () => {{ window.__seeked = [p.currentTime,
                  {card}.querySelector('.word.current')?.textContent]; }}, {{ once: true }});
                return true;"
            ))
            .await;
        let index = timed.iter().position(|w| w == longer[longer.len() / 2]).unwrap();
        browser.js(&format!("{card}.querySelectorAll('.word')[{index}].dataset.clicked = 'yes'; return true;")).await;
        client
            .find(Locator::Css(&format!("#cards .card[data-job-id=\"{id}\"] .word[data-clicked=yes]")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        let seeked = browser.wait_for("the player to seek", Duration::from_secs(5), "window.__seeked").await;
        browser.js(&format!("{player}.pause(); return true;")).await;
        assert!((seeked[0].as_f64().unwrap() - start).abs() < 0.05, "clicked {word:?} at {start} s: {seeked}");
        assert_eq!(seeked[1], word.as_str(), "{seeked}");
        browser.assert_no_problems("the word highlight").await;
        browser.close().await;
    });
}
