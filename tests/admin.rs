//! The operator's view: `/admin` for administrators only, its figures after the jobs a test
//! ran, and keys made and revoked through the server (the admin page's forms and
//! `/api/keys`), which work at once; the page in Chromium, checked with axe-core.

use std::time::Duration;

use crate::common::browser::Browser;
use crate::common::html::{one, text};
use crate::common::{Appliance, audio, create_key, long_wav};
use fantoccini::Locator;
use reqwest::blocking::Client;
use scraper::Html;
use serde_json::{Value, json};

fn no_redirects() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(Duration::from_secs(60)).build().unwrap()
}

/// The cells of a table row, as text.
fn cells(page: &Html, row: &str) -> Vec<String> {
    let selector = scraper::Selector::parse(&format!("{row} td")).unwrap();
    page.select(&selector).map(text).collect()
}

#[test]
fn the_admin_page_counts_what_ran_and_its_keys_work_at_once() {
    let state = tempfile::tempdir().unwrap();
    let ops = create_key(state.path(), "ops", "admin");
    let alice = create_key(state.path(), "alice", "user");
    let mut appliance = Appliance::start_in(state.path(), &["--auth", "true"]);
    let client = no_redirects();
    let url = appliance.url.clone();
    let get = |path: &str, key: &str| client.get(format!("{url}{path}")).bearer_auth(key).send().unwrap();

    // A user's key gets 403, as JSON saying why, on every admin route.
    for path in ["/admin", "/api/keys"] {
        let refused = get(path, &alice);
        assert_eq!(refused.status(), 403, "{path}");
        assert_eq!(refused.json::<Value>().unwrap()["error"]["code"], "admin_only", "{path}");
    }

    // Two jobs done and one cancelled, by alice.
    appliance.use_key(&alice);
    for _ in 0..2 {
        let id = appliance.submit(&audio("jfk.wav"), &[]);
        assert_eq!(appliance.wait_finished(&id, Duration::from_secs(120))["status"], "done");
    }
    let scratch = tempfile::tempdir().unwrap();
    let long = appliance.submit(&long_wav(scratch.path(), 20), &[]);
    let cancelled =
        client.post(format!("{}/api/jobs/{long}/cancel", appliance.url)).bearer_auth(&alice).send().unwrap();
    assert!(cancelled.status().is_success(), "{}", cancelled.text().unwrap());
    assert_eq!(appliance.wait_finished(&long, Duration::from_secs(120))["status"], "cancelled");

    let response = get("/admin", &ops);
    assert_eq!(response.status(), 200);
    let page = Html::parse_document(&response.text().unwrap());
    assert_eq!(cells(&page, "#ended-hour"), ["2", "0", "1"], "done, failed, cancelled in the last hour");
    assert_eq!(cells(&page, "#ended-day"), ["2", "0", "1"]);
    assert_eq!(text(one(&page, "#version")), env!("CARGO_PKG_VERSION"));
    assert_eq!(text(one(&page, "#backend")), "cpu");
    assert_eq!(text(one(&page, "#queue-waiting")), "0");
    let rtf: f64 = text(one(&page, "#median-rtf")).parse().unwrap();
    assert!(rtf > 0.0 && rtf < 5.0, "a plausible real-time factor: {rtf}");
    let tiny = cells(&page, "#models tr[data-model=\"tiny.en\"]");
    assert_eq!(tiny[2], "yes", "the default model is loaded: {tiny:?}");
    assert_eq!(tiny[3], "2", "two jobs done on it: {tiny:?}");
    assert!(text(one(&page, "#memory")).contains("MB"));

    // /api/keys: a new key works at once, and stops at once when revoked.
    let made: Value = client
        .post(format!("{}/api/keys", appliance.url))
        .bearer_auth(&ops)
        .json(&json!({"name": "bob", "role": "user"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let bob = made["key"].as_str().unwrap_or_else(|| panic!("{made}"));
    assert_eq!(made["role"], "user");
    assert!(made.get("hash").is_none(), "never the hash: {made}");
    assert_eq!(get("/api/jobs", bob).status(), 200);
    let listed: Value = get("/api/keys", &ops).json().unwrap();
    let names: Vec<&str> = listed["keys"].as_array().unwrap().iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ops", "alice", "bob"]);
    let duplicate = client
        .post(format!("{}/api/keys", appliance.url))
        .bearer_auth(&ops)
        .json(&json!({"name": "bob"}))
        .send()
        .unwrap();
    assert_eq!(duplicate.status(), 409);
    let bad_role = client
        .post(format!("{}/api/keys", appliance.url))
        .bearer_auth(&ops)
        .json(&json!({"name": "eve", "role": "root"}))
        .send()
        .unwrap();
    assert_eq!(bad_role.status(), 400);
    assert_eq!(bad_role.json::<Value>().unwrap()["error"]["param"], "role");
    let id = made["id"].as_str().unwrap();
    let revoked = client.delete(format!("{}/api/keys/{id}", appliance.url)).bearer_auth(&ops).send().unwrap();
    assert_eq!(revoked.status(), 200);
    assert_eq!(get("/api/jobs", bob).status(), 401, "revoked at once");

    // The page's form: the new key is shown once, works, and its Revoke button stops it.
    let form = client
        .post(format!("{}/admin/keys", appliance.url))
        .bearer_auth(&ops)
        .form(&[("name", "carol"), ("role", "user")])
        .send()
        .unwrap();
    assert_eq!(form.status(), 200);
    let page = Html::parse_document(&form.text().unwrap());
    let carol = text(one(&page, "#new-key"));
    assert_eq!(get("/api/jobs", &carol).status(), 200);
    // Newest first: carol's row leads.
    let rows = scraper::Selector::parse("#keys tr[data-key-id]").unwrap();
    let newest = page.select(&rows).next().unwrap();
    assert_eq!(text(newest.select(&scraper::Selector::parse("td").unwrap()).next().unwrap()), "carol");
    let carol_id = newest.attr("data-key-id").unwrap().to_owned();
    let again = get("/admin", &ops).text().unwrap();
    assert!(!again.contains(&carol), "the key is shown once only");
    let revoke =
        client.post(format!("{}/admin/keys/{carol_id}/revoke", appliance.url)).bearer_auth(&ops).send().unwrap();
    assert_eq!(revoke.status(), 303);
    assert_eq!(get("/api/jobs", &carol).status(), 401);

    // In a browser, logged in with the admin key: the page as people see it.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let browser = Browser::start(1100, 1400).await;
        let client = &browser.client;
        client.goto(&format!("{}/admin", appliance.url)).await.unwrap();
        client.find(Locator::Css("input[name=key]")).await.unwrap().send_keys(&ops).await.unwrap();
        client.find(Locator::Css("form[action=\"/login\"] button")).await.unwrap().click().await.unwrap();
        browser.wait_for("the admin page", Duration::from_secs(20), "document.getElementById('admin-figures')").await;
        browser.look("admin", true).await;
        browser.assert_no_problems("the admin page").await;
        browser.close().await;
    });
    appliance.keep(state);
}
