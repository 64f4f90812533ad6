//! The API reference, against the real binary: `/openapi.json` is a valid OpenAPI 3.1
//! document (checked by the Python `openapi-spec-validator` in the test venv), it holds
//! exactly the route table's routes, and every operation it lists is one the server
//! answers (no 404 from the router, no 405); `/api` renders it for people with no inline
//! code, behind the same guard as the page, and passes axe-core in a browser.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use reqwest::blocking::Client;
use scraper::Html;
use serde_json::Value;

use crate::common::browser::Browser;
use crate::common::html::{attributes, select};
use crate::common::{Appliance, audio, create_key, test_python};

/// The route table as written in the source: one `route(E::..., Method::X, "/path", ...)` a row.
fn route_table() -> BTreeSet<(String, String)> {
    include_str!("../src/http/routes.rs")
        .lines()
        .filter_map(|line| line.trim().strip_prefix("route(E::"))
        .map(|row| {
            let method = row.split("Method::").nth(1).and_then(|rest| rest.split(',').next()).unwrap();
            let path = row.split('"').nth(1).unwrap();
            (method.to_owned(), path.to_owned())
        })
        .collect()
}

/// The form fields a source file reads, by their names as written: `field("x")`,
/// `fields_named("x")`, `bool_field(form, "x", ...)`.
fn fields_read(source: &str) -> BTreeSet<String> {
    ["field(\"", "fields_named(\"", "bool_field(form, \""]
        .iter()
        .flat_map(|opening| source.split(opening).skip(1).map(|rest| rest.split('"').next().unwrap().to_owned()))
        .collect()
}

/// Every (method, path) the document describes.
fn documented(document: &Value) -> BTreeSet<(String, String)> {
    let paths = document["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object().unwrap().keys().map(move |method| (method.to_ascii_uppercase(), path.clone()))
        })
        .collect()
}

fn no_redirects(key: &str) -> Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {key}").parse().unwrap());
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Validates `document` with openapi-spec-validator; its message on failure.
fn validate(document: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, document).unwrap();
    let script = "import json, sys\n\
        try:\n    from openapi_spec_validator import validate\n\
        except ImportError:\n    sys.exit('openapi-spec-validator is missing from the test venv: run .ci/setup --test')\n\
        validate(json.load(open(sys.argv[1])))\n";
    let output = Command::new(test_python()).args(["-c", script]).arg(&file).output().unwrap();
    assert!(
        output.status.success(),
        "the document is not valid OpenAPI:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_document_is_valid_openapi_3_1_and_lists_exactly_the_routes_the_server_answers() {
    let state = tempfile::tempdir().unwrap();
    let admin = create_key(state.path(), "ops", "admin");
    let mut appliance = Appliance::start_in(state.path(), &["--auth", "true"]);
    appliance.use_key(&admin);
    let client = no_redirects(&admin);
    let url = appliance.url.clone();

    // The document: JSON, guarded like the page, valid.
    let anonymous = reqwest::blocking::get(format!("{url}/openapi.json")).unwrap();
    assert_eq!(anonymous.status(), 401);
    let response = client.get(format!("{url}/openapi.json")).send().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let text = response.text().unwrap();
    let document: Value = serde_json::from_str(&text).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"), "{}", document["openapi"]);
    validate(&text);

    // The route table's rows and the document's operations are the same set.
    let table = route_table();
    assert!(table.len() > 20, "the route table was not read: {table:?}");
    assert_eq!(documented(&document), table);
    for schema in ["JobView", "JobList", "ErrorBody", "VerboseJson", "KeyView", "Readiness"] {
        assert!(document["components"]["schemas"][schema].is_object(), "no {schema} schema");
    }
    // An upload's documented fields are the file and exactly those its parser reads.
    for (path, parser) in [
        ("/api/jobs", include_str!("../src/http/api.rs")),
        ("/v1/audio/transcriptions", include_str!("../src/http/openai.rs")),
    ] {
        let form = &document["paths"][path]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"];
        let mut fields: BTreeSet<String> = form["properties"].as_object().unwrap().keys().cloned().collect();
        assert!(fields.remove("file") && form["required"] == serde_json::json!(["file"]), "{path}: {form}");
        assert_eq!(fields, fields_read(parser), "{path}: the documented fields are not those read");
    }

    // Real ids for every parameter, so a 404 could only be the router's: two jobs (one to
    // delete from its page), two keys, an asset the page links.
    let jfk = audio("jfk.wav");
    let (job, other_job) = (appliance.submit(&jfk, &[]), appliance.submit(&jfk, &[]));
    appliance.wait_finished(&job, Duration::from_secs(300));
    appliance.wait_finished(&other_job, Duration::from_secs(300));
    let new_key = |name: &str| -> String {
        let made: Value = client
            .post(format!("{url}/api/keys"))
            .json(&serde_json::json!({"name": name}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        made["id"].as_str().unwrap().to_owned()
    };
    let (key, other_key) = (new_key("doomed"), new_key("doomed-too"));
    let page = Html::parse_document(&client.get(format!("{url}/api")).send().unwrap().text().unwrap());
    let css = attributes(&page, "href").into_iter().find(|href| href.ends_with("/app.css")).unwrap().to_owned();
    let css_hash = css.split('/').nth(2).unwrap().to_owned();

    // Destructive operations last, so the ids still name something when each is asked.
    let mut operations: Vec<(String, String)> = documented(&document).into_iter().collect();
    operations
        .sort_by_key(|(method, path)| method == "DELETE" || path.ends_with("/delete") || path.ends_with("/revoke"));
    for (method, template) in operations {
        let id = match template.as_str() {
            "/jobs/{id}/delete" => &other_job,
            "/admin/keys/{id}/revoke" => &other_key,
            path if path.starts_with("/api/keys") => &key,
            _ => &job,
        };
        let path = template.replace("{id}", id).replace("{hash}", &css_hash).replace("{file}", "app.css");
        let request = client.request(method.parse().unwrap(), format!("{url}{path}"));
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let body = response.text().unwrap_or_default();
        assert!(status != 404 && status != 405, "{method} {template} ({path}) answered {status}: {body}");
    }
    appliance.keep(state);
}

#[test]
fn the_reference_page_shows_every_path_without_inline_code_behind_the_pages_guard() {
    let state = tempfile::tempdir().unwrap();
    let user = create_key(state.path(), "alice", "user");
    let mut appliance = Appliance::start_in(state.path(), &["--auth", "true"]);
    let client = no_redirects(&user);
    let url = appliance.url.clone();

    // Without a session, the login form first, as for the page.
    let visitor = Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let sent_away = visitor.get(format!("{url}/api")).send().unwrap();
    assert_eq!(sent_away.status(), 303);
    assert_eq!(sent_away.headers()["location"], "/?next=%2Fapi");

    let response = client.get(format!("{url}/api")).send().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    assert!(response.headers()["content-security-policy"].to_str().unwrap().contains("default-src 'self'"));
    let html = response.text().unwrap();
    let page = Html::parse_document(&html);
    let document: Value = client.get(format!("{url}/openapi.json")).send().unwrap().json().unwrap();
    let headings: Vec<String> =
        select(&page, "section.api-operation h2").into_iter().map(crate::common::html::text).collect();
    for (method, path) in documented(&document) {
        let heading = format!("{method} {path}");
        assert!(headings.contains(&heading), "no section for {heading} in {headings:?}");
    }
    assert!(attributes(&page, "href").contains(&"/openapi.json"));
    assert!(html.contains("multipart/form-data") && html.contains("timestamp_granularities[]"));

    // A strict CSP runs nothing inline: scripts only by src, no style elements or attributes.
    for script in select(&page, "script") {
        assert!(script.attr("src").is_some_and(|src| src.starts_with("/static/")), "{}", script.html());
        assert!(script.inner_html().is_empty(), "inline script in {}", script.html());
    }
    assert!(select(&page, "style").is_empty() && select(&page, "[style]").is_empty(), "inline style");
    for element in select(&page, "*") {
        assert!(element.value().attrs().all(|(name, _)| !name.starts_with("on")), "handler on {}", element.html());
    }
    // Every page's footer points people here rather than at raw JSON.
    let index = Html::parse_document(&client.get(format!("{url}/")).send().unwrap().text().unwrap());
    assert!(select(&index, "footer a").iter().any(|link| link.attr("href") == Some("/api")));
    appliance.keep(state);
}

#[test]
fn the_reference_page_passes_the_accessibility_check_in_a_browser() {
    let appliance = Appliance::start(&[]);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let browser = Browser::start(1100, 1400).await;
        browser.client.goto(&format!("{}/api", appliance.url)).await.unwrap();
        browser
            .wait_for("the API reference", Duration::from_secs(20), "document.querySelector('.api-operation')")
            .await;
        browser.look("api-reference", true).await;
        browser.assert_no_problems("the API reference").await;
        browser.close().await;
    });
}
