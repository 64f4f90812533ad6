//! Security headers on every response (page, asset, API, error, 404), `no-store` on API
//! responses and results, and CORS only for listed origins.

use std::time::Duration;

use crate::common::html::select;
use crate::common::{Appliance, audio};
use reqwest::blocking::Response;
use scraper::Html;

const EXPECTED: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'self'; media-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
];

fn assert_security_headers(what: &str, response: &Response) {
    for (name, value) in EXPECTED {
        assert_eq!(response.headers().get(*name).map(|v| v.to_str().unwrap()), Some(*value), "{what}: {name}");
    }
    let permissions = response.headers()["permissions-policy"].to_str().unwrap();
    for feature in ["camera=()", "microphone=(self)", "geolocation=()"] {
        assert!(permissions.contains(feature), "{what}: {permissions}");
    }
    assert_eq!(response.headers()["x-request-id"].len(), 32, "{what}");
}

#[test]
fn every_kind_of_response_carries_the_security_headers() {
    let appliance = Appliance::start(&[]);
    let id = appliance.submit(&audio("jfk.wav"), &[]);
    appliance.wait_finished(&id, Duration::from_secs(120));
    let client = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let url = &appliance.url;
    let page = client.get(format!("{url}/")).send().unwrap();
    let asset_path = {
        let page = Html::parse_document(&client.get(format!("{url}/")).send().unwrap().text().unwrap());
        let first = select(&page, "[href^=\"/static/\"], [src^=\"/static/\"]")[0];
        first.attr("href").or(first.attr("src")).unwrap().to_owned()
    };
    let cases: Vec<(&str, Response)> = vec![
        ("page", page),
        ("asset", client.get(format!("{url}{asset_path}")).send().unwrap()),
        ("job page", client.get(format!("{url}/jobs/{id}")).send().unwrap()),
        ("api", client.get(format!("{url}/api/jobs")).send().unwrap()),
        ("result", client.get(format!("{url}/api/jobs/{id}/result?format=srt")).send().unwrap()),
        ("events", client.get(format!("{url}/api/jobs/{id}/events")).send().unwrap()),
        ("openai", client.get(format!("{url}/v1/models")).send().unwrap()),
        ("health", client.get(format!("{url}/healthz")).send().unwrap()),
        ("metrics", client.get(format!("{url}/metrics")).send().unwrap()),
        ("404", client.get(format!("{url}/no/such/page")).send().unwrap()),
        ("405", client.put(format!("{url}/api/jobs")).send().unwrap()),
        ("400", client.get(format!("{url}/api/jobs/{id}/result?format=doc")).send().unwrap()),
        ("redirect", client.get(format!("{url}/jobs")).send().unwrap()),
    ];
    for (what, response) in &cases {
        assert_security_headers(what, response);
    }
    let status = |what: &str| cases.iter().find(|(name, _)| *name == what).unwrap().1.status().as_u16();
    assert_eq!((status("404"), status("405"), status("400"), status("redirect")), (404, 405, 400, 303));
    for what in ["page", "job page", "api", "result", "events", "openai", "metrics", "404"] {
        let response = &cases.iter().find(|(name, _)| *name == what).unwrap().1;
        assert_eq!(response.headers()["cache-control"], "no-store", "{what}");
    }
    let asset = &cases[1].1;
    assert_eq!(asset.headers()["cache-control"], "public, max-age=31536000, immutable");
    // CORS is off unless origins are listed.
    for (what, response) in &cases {
        assert!(response.headers().get("access-control-allow-origin").is_none(), "{what}");
    }
}

#[test]
fn cors_answers_only_listed_origins_and_never_with_a_wildcard() {
    let appliance = Appliance::start(&["--cors-origin", "https://app.example.org"]);
    let client = appliance.client();
    let url = &appliance.url;
    let preflight = |origin: &str| {
        client
            .request(reqwest::Method::OPTIONS, format!("{url}/api/jobs"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization")
            .send()
            .unwrap()
    };
    let allowed = preflight("https://app.example.org");
    assert_eq!(allowed.status(), 204);
    assert_eq!(allowed.headers()["access-control-allow-origin"], "https://app.example.org");
    assert!(allowed.headers()["access-control-allow-headers"].to_str().unwrap().contains("authorization"));
    assert!(allowed.headers().get("access-control-allow-credentials").is_none());
    assert_security_headers("preflight", &allowed);

    let other = preflight("https://evil.example");
    assert!(other.headers().get("access-control-allow-origin").is_none());
    assert!(other.headers().get("access-control-allow-methods").is_none());

    let get = client.get(format!("{url}/api/jobs")).header("origin", "https://app.example.org").send().unwrap();
    assert_eq!(get.headers()["access-control-allow-origin"], "https://app.example.org");
    assert_eq!(get.headers()["vary"], "Origin");

    // A wildcard is refused at start-up.
    let refused = std::process::Command::new(crate::common::BINARY)
        .args(["serve", "--config", "/dev/null", "--cors-origin", "*", "--print-config"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("`*` is never allowed"));
}
