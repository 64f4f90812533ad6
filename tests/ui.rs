//! The upload page: its HTML and assets over HTTP, the form that works without
//! JavaScript, and the real page in headless Chromium uploading jfk.wav.

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::browser::Browser;
use common::{Appliance, audio, reference, wer::wer};
use fantoccini::Locator;
use fantoccini::key::Key;
use reqwest::blocking::{Client, multipart};

const FORMATS: [&str; 5] = ["txt", "srt", "vtt", "json", "tsv"];

/// A client that shows redirects instead of following them.
fn no_redirects() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(Duration::from_secs(120)).build().unwrap()
}

/// Where the browser test leaves its screenshots for people to look at.
fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("ui-screenshots")
}

/// The values of every `name="..."` attribute, in order.
fn attributes<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let needle = format!(" {name}=\"");
    html.match_indices(&needle)
        .map(|(at, _)| {
            let rest = &html[at + needle.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

/// Undoes askama's HTML escaping (it writes `&#NN;` and named entities for `&<>"'`).
fn unescape(text: &str) -> String {
    text.replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#38;", "&")
        .replace("&amp;", "&")
}

/// The transcript lines a job page shows.
fn page_segments(html: &str) -> Vec<String> {
    html.split("<span class=\"text\">").skip(1).map(|rest| unescape(&rest[..rest.find("</span>").unwrap()])).collect()
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
    let html = response.text().unwrap();

    // Every script is an empty element with a src: a strict CSP runs nothing inline.
    let scripts: Vec<&str> = html.match_indices("<script").map(|(at, _)| &html[at..]).collect();
    assert!(!scripts.is_empty());
    for script in scripts {
        let tag = &script[..script.find('>').unwrap() + 1];
        assert!(tag.contains(" src=\"/static/"), "{tag}");
        assert!(script[tag.len()..].starts_with("</script>"), "inline script body after {tag}");
    }
    assert!(!html.contains("<style"), "inline <style>");
    assert!(!html.contains(" style="), "style= attribute");
    let lowered = html.to_ascii_lowercase();
    for handler in [" onclick=", " onload=", " onsubmit=", " onchange=", " onerror=", "javascript:"] {
        assert!(!lowered.contains(handler), "inline handler {handler}");
    }

    // Assets: only our own, only under /static/<16 hex digits>/<file>.
    let links: Vec<&str> = attributes(&html, "href").into_iter().chain(attributes(&html, "src")).collect();
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
    assert!(html.contains(
        "<form id=\"upload-form\" class=\"upload\" method=\"post\" action=\"/jobs\" enctype=\"multipart/form-data\">"
    ));
    for field in [
        "name=\"file\"",
        "name=\"language\"",
        "name=\"translate\"",
        "<label for=\"file\"",
        "<label for=\"language\"",
        "<label for=\"translate\"",
    ] {
        assert!(html.contains(field), "missing {field}");
    }
    // tiny.en knows only English, and says so.
    assert!(html.contains("<option value=\"auto\" selected>"), "{html}");
    assert!(html.contains("<option value=\"en\">English (this model only knows English)</option>"), "{html}");
    assert!(html.contains("aria-describedby=\"translate-help\" disabled>"), "translate must be disabled: {html}");
}

#[test]
fn assets_are_typed_cached_forever_and_revalidated() {
    let appliance = Appliance::start(&[]);
    let client = appliance.client();
    let html = client.get(format!("{}/", appliance.url)).send().unwrap().text().unwrap();
    let mut assets: Vec<String> = attributes(&html, "href")
        .into_iter()
        .chain(attributes(&html, "src"))
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
            common::assert_error(response, 404, "not_found");
        }
    }
}

#[test]
fn the_no_js_form_uploads_and_the_job_page_shows_the_transcript() {
    let appliance = Appliance::start(&[]);
    let client = no_redirects();
    let form = multipart::Form::new().text("language", "auto").file("file", audio("jfk.wav")).unwrap();
    let response = client.post(format!("{}/jobs", appliance.url)).multipart(form).send().unwrap();
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let id = location.strip_prefix("/jobs/").unwrap_or_else(|| panic!("{location}")).to_owned();
    assert!(uuid::Uuid::try_parse(&id).is_ok(), "{location}");

    // Until it is done the page refreshes itself (without JS) and has no downloads yet.
    let deadline = Instant::now() + Duration::from_secs(120);
    let html = loop {
        let response = client.get(format!("{}{location}", appliance.url)).send().unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
        let html = response.text().unwrap();
        if html.contains("data-status=\"done\"") {
            break html;
        }
        assert!(html.contains("<noscript><meta http-equiv=\"refresh\" content=\"2\"></noscript>"), "{html}");
        assert!(!html.contains("result?format="), "downloads before the job is done: {html}");
        assert!(Instant::now() < deadline, "the job page never showed the job done: {html}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(!html.contains("http-equiv=\"refresh\""), "a finished job's page must stop refreshing");
    let segments = page_segments(&html);
    assert!(wer(&reference("jfk.wav"), &segments.join(" ")) <= 0.05, "{segments:?}");
    assert!(html.contains("<span class=\"ts\">[00:00]</span>"), "timestamps: {html}");
    for format in FORMATS {
        let href = format!("href=\"/api/jobs/{id}/result?format={format}\"");
        assert!(html.contains(&href), "no {format} download: {html}");
    }
    let srt = appliance.result(&id, "srt");
    assert_valid_srt(&srt);

    // The history on the front page links to it.
    let index = client.get(format!("{}/", appliance.url)).send().unwrap().text().unwrap();
    assert!(index.contains(&format!("<a class=\"history-link\" href=\"/jobs/{id}\">jfk.wav</a>")), "{index}");
    appliance.assert_temp_empty();
}

#[test]
fn a_refused_no_js_upload_shows_the_servers_message_and_status() {
    let appliance = Appliance::start(&[]);
    let text = "These are meeting notes, not a recording, saved with the wrong extension.\n".repeat(4);
    let upload = |path: &str| {
        let part = multipart::Part::text(text.clone()).file_name("notes.wav").mime_str("text/plain").unwrap();
        let form = multipart::Form::new().text("language", "en").part("file", part);
        no_redirects().post(format!("{}{path}", appliance.url)).multipart(form).send().unwrap()
    };
    let api_message = common::assert_error(upload("/api/jobs"), 415, "unsupported_media_type");

    let response = upload("/jobs");
    assert_eq!(response.status(), 415);
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    let html = response.text().unwrap();
    let alert_at = html.find("role=\"alert\"><p>").expect("the message is in the alert region");
    let shown = &html[alert_at + "role=\"alert\"><p>".len()..];
    assert_eq!(unescape(&shown[..shown.find("</p>").unwrap()]), api_message);
    // The form is there again, with the language that was chosen.
    assert!(html.contains("action=\"/jobs\""));
    assert!(html.contains("<option value=\"en\" selected>"), "{html}");
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
    let index = client.get(format!("{}/", appliance.url)).send().unwrap().text().unwrap();
    assert!(
        index.contains(&format!("<form class=\"delete-form\" method=\"post\" action=\"/jobs/{id}/delete\">")),
        "{index}"
    );

    let response = client.post(format!("{}/jobs/{id}/delete", appliance.url)).send().unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/");
    common::assert_error(client.get(format!("{}/api/jobs/{id}", appliance.url)).send().unwrap(), 404, "not_found");
    let index = client.get(format!("{}/", appliance.url)).send().unwrap().text().unwrap();
    assert!(!index.contains(&id), "{index}");

    // Deleting again, or a job page for it, is a 404 page.
    let again = client.post(format!("{}/jobs/{id}/delete", appliance.url)).send().unwrap();
    assert_eq!(again.status(), 404);
    let page = client.get(format!("{}/jobs/{id}", appliance.url)).send().unwrap();
    assert_eq!(page.status(), 404);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert!(page.text().unwrap().contains("no such job"));
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

/// Drops a small text file on the drop zone, as a file manager would.
const DROP_NOTES: &str =
    "const notes = new File(['meeting notes, not a recording\\n'.repeat(4)], 'notes.txt', { type: 'text/plain' });
    const data = new DataTransfer();
    data.items.add(notes);
    const zone = document.getElementById('dropzone');
    for (const type of ['dragenter', 'dragover', 'drop']) {
      zone.dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
    }
    return true;";

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
    let refusal = common::assert_error(refused, 415, "unsupported_media_type");

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
        let paths = [audio("jfk.wav").canonicalize().unwrap(), copy.clone()];
        let paths: Vec<&str> = paths.iter().map(|path| path.to_str().unwrap()).collect();
        input.send_keys(&paths.join("\n")).await.unwrap();
        browser.js(DROP_NOTES).await;
        browser
            .wait_for(
                "the three files to be listed",
                Duration::from_secs(5),
                "document.getElementById('chosen').textContent === '3 files chosen: jfk.wav, jfk-again.wav, notes.txt'",
            )
            .await;
        client.find(Locator::Css("#upload-form button[type=submit]")).await.unwrap().click().await.unwrap();

        // The text file is refused, in the server's words, on its card and in the alert region.
        let notes = card_named("notes.txt");
        browser
            .wait_for("the text file to be refused", Duration::from_secs(30), &format!("{notes}?.dataset.status === 'failed'"))
            .await;
        let shown = browser.js(&format!("return {notes}.querySelector('.card-error').textContent;")).await;
        assert_eq!(shown, refusal.as_str());
        let alerts = browser.js("return document.getElementById('alerts').textContent;").await;
        assert_eq!(alerts, format!("notes.txt: {refusal}").as_str());

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
            assert_eq!(status, "Done: 00:11 of speech in 00:11, English");
        }

        // Live: each card went through the queue or ran while watched, and a card seen
        // running got its text segment by segment before the final transcript.
        let seen = browser.js("return window.__seen;").await;
        eprintln!("observed in the browser: {seen}");
        for name in ["jfk.wav", "jfk-again.wav"] {
            let statuses: Vec<&str> =
                seen[name]["statuses"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
            assert_eq!(statuses.first(), Some(&"Uploading"), "{name}: {statuses:?}");
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

        // The history was redrawn with both jobs, done.
        browser
            .wait_for(
                "the history to list both jobs as done",
                Duration::from_secs(10),
                "document.querySelectorAll('#history .history-row .badge.status-done').length === 2",
            )
            .await;

        browser.screenshot_page(&screenshots().join("upload-done.png")).await;
        let (csp, errors) = browser.problems().await;
        assert_eq!(csp, Vec::<String>::new(), "CSP violations on the upload page");
        assert_eq!(errors, Vec::<String>::new(), "script errors on the upload page");

        // The same page on a phone, light and dark, for people to look at.
        client.set_window_size(360, 1500).await.unwrap();
        let width = browser.js("return document.documentElement.scrollWidth;").await;
        assert!(width.as_u64().unwrap() <= 360, "the page scrolls sideways on a phone: {width}px wide");
        browser.screenshot_page(&screenshots().join("upload-done-phone.png")).await;
        let dark = serde_json::json!({ "features": [{ "name": "prefers-color-scheme", "value": "dark" }] });
        browser.cdp("Emulation.setEmulatedMedia", dark).await;
        browser.screenshot_page(&screenshots().join("upload-done-phone-dark.png")).await;
        browser.cdp("Emulation.setEmulatedMedia", serde_json::json!({ "features": [] })).await;
        client.set_window_size(1100, 1000).await.unwrap();

        // The job page renders the finished job itself, and the script adds the copy button.
        client.goto(&format!("{}/jobs/{id}", appliance.url)).await.unwrap();
        browser
            .wait_for("the copy button on the job page", Duration::from_secs(10), "!document.querySelector('main .card .copy').hidden")
            .await;
        browser.screenshot(&screenshots().join("job-page.png")).await;
        let (csp, errors) = browser.problems().await;
        assert_eq!((csp, errors), (Vec::new(), Vec::new()), "problems on the job page");

        // A long recording's page follows it live, and its Cancel button stops it.
        let long = repeated_jfk(copies.path(), 20);
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
                Duration::from_secs(60),
                &format!(
                    "document.querySelector('main .card').dataset.status === 'running'
                        && !document.querySelector('main .card .job-meter').hidden
                        && document.querySelectorAll('main .card .segments li').length > {at_load}"
                ),
            )
            .await;
        browser.screenshot(&screenshots().join("job-running.png")).await;
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
        let (csp, errors) = browser.problems().await;
        assert_eq!((csp, errors), (Vec::new(), Vec::new()), "problems on the live job page");

        // Delete from the history with the script: the row goes, and so does the job.
        client.goto(&format!("{}/", appliance.url)).await.unwrap();
        let row = format!("#history .history-row[data-job-id=\"{id}\"]");
        client.find(Locator::Css(&format!("{row} button.delete"))).await.unwrap().click().await.unwrap();
        browser
            .wait_for("the row to go", Duration::from_secs(10), &format!("!document.querySelector('{row}')"))
            .await;
        let focused = browser.js("return document.activeElement.className;").await;
        assert_eq!(focused, "delete", "focus moves to the next row's delete button");
        let gone = reqwest::get(format!("{}/api/jobs/{id}", appliance.url)).await.unwrap();
        assert_eq!(gone.status(), 404);

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

/// jfk.wav's samples `times` over, as a plain 16-bit PCM WAV: a recording long enough to
/// be watched while it runs.
fn repeated_jfk(dir: &std::path::Path, times: usize) -> PathBuf {
    let bytes = std::fs::read(audio("jfk.wav")).unwrap();
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    // Walk the RIFF chunks to the samples (jfk.wav is 16 kHz mono 16-bit, with a LIST chunk).
    let mut at = 12;
    let samples = loop {
        let size = u32_at(at + 4) as usize;
        if &bytes[at..at + 4] == b"data" {
            break bytes[at + 8..at + 8 + size].repeat(times);
        }
        at += 8 + size + size % 2;
    };
    let mut wav = Vec::with_capacity(44 + samples.len());
    wav.extend_from_slice(b"RIFF");
    wav.extend_from_slice(&(36 + samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(b"WAVEfmt ");
    // Chunk size, PCM, mono, 16 kHz, bytes per second, bytes per frame, bits per sample.
    for (value, width) in [(16u32, 4), (1, 2), (1, 2), (16_000, 4), (32_000, 4), (2, 2), (16, 2)] {
        wav.extend_from_slice(&value.to_le_bytes()[..width]);
    }
    wav.extend_from_slice(b"data");
    wav.extend_from_slice(&(samples.len() as u32).to_le_bytes());
    wav.extend_from_slice(&samples);
    let path = dir.join(format!("jfk-{times}-times.wav"));
    std::fs::write(&path, wav).unwrap();
    path
}

/// A script expression for the card of an upload with this file name.
fn card_named(name: &str) -> String {
    format!(
        "[...document.querySelectorAll('#cards .card')].find((c) => c.querySelector('.card-link').textContent === '{name}')"
    )
}
