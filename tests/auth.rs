//! API keys, roles, sessions, the trusted proxy and rate limits, against the real binary
//! with authentication on, as it ships.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::html::{one, select, text};
use crate::common::{Appliance, assert_error, audio, create_key, poll};
use reqwest::blocking::{Client, RequestBuilder};
use scraper::Html;
use serde_json::Value;

/// An appliance with auth on and an admin and two user keys.
struct Secured {
    appliance: Appliance,
    admin: String,
    alice: String,
    bob: String,
}

fn secured(extra: &[&str]) -> Secured {
    let state = tempfile::tempdir().unwrap();
    let admin = create_key(state.path(), "admin", "admin");
    let alice = create_key(state.path(), "alice", "user");
    let bob = create_key(state.path(), "bob", "user");
    let mut args = vec!["--auth", "true"];
    args.extend_from_slice(extra);
    let mut appliance = Appliance::start_in(state.path(), &args);
    appliance.keep(state);
    Secured { appliance, admin, alice, bob }
}

fn no_redirects() -> Client {
    Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

impl Secured {
    fn get(&self, path: &str) -> RequestBuilder {
        self.appliance.client().get(format!("{}{path}", self.appliance.url))
    }

    fn upload(&self, key: &str) -> reqwest::blocking::Response {
        let form = reqwest::blocking::multipart::Form::new().file("file", audio("jfk.wav")).unwrap();
        let url = format!("{}/api/jobs", self.appliance.url);
        self.appliance.client().post(url).bearer_auth(key).multipart(form).send().unwrap()
    }

    fn upload_as(&self, key: &str) -> String {
        let response = self.upload(key);
        assert_eq!(response.status(), 202);
        response.json::<Value>().unwrap()["id"].as_str().unwrap().to_owned()
    }
}

#[test]
fn missing_wrong_and_revoked_keys_get_401_and_health_stays_open() {
    let secured = secured(&[]);
    let response = secured.get("/api/jobs").send().unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer realm=\"whisper-appliance\"");
    let message = assert_error(response, 401, "missing_api_key");
    assert!(message.contains("keys create"), "{message}");
    assert_error(secured.get("/api/jobs").bearer_auth("wa_wrong").send().unwrap(), 401, "invalid_api_key");
    assert_error(secured.get("/v1/models").header("x-api-key", "wa_wrong").send().unwrap(), 401, "invalid_api_key");
    assert_eq!(secured.get("/api/jobs").header("x-api-key", &secured.alice).send().unwrap().status(), 200);
    assert_eq!(secured.get("/healthz").send().unwrap().status(), 200);
    assert_eq!(secured.get("/readyz").send().unwrap().status(), 200);

    let output = std::process::Command::new(crate::common::BINARY)
        .args(["keys", "revoke", "alice", "--config", "/dev/null", "--state-dir"])
        .arg(&secured.appliance.state_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    // The command revoked it through the running server: refused from the next request on.
    assert_error(secured.get("/api/jobs").bearer_auth(&secured.alice).send().unwrap(), 401, "revoked_api_key");
    assert!(secured.appliance.logs().contains("revoked"), "the refusal is logged with its reason");
}

#[test]
fn users_see_only_their_jobs_and_admins_see_all() {
    let secured = secured(&[]);
    let alices = secured.upload_as(&secured.alice);
    let bobs = secured.upload_as(&secured.bob);
    let client = secured.appliance.client();
    let url = &secured.appliance.url;

    // Bob cannot see, fetch, follow, cancel or delete Alice's job: it does not exist for him.
    for (method, path) in [
        ("GET", format!("/api/jobs/{alices}")),
        ("GET", format!("/api/jobs/{alices}/result")),
        ("GET", format!("/api/jobs/{alices}/events")),
        ("POST", format!("/api/jobs/{alices}/cancel")),
        ("DELETE", format!("/api/jobs/{alices}")),
    ] {
        let request = client.request(method.parse().unwrap(), format!("{url}{path}")).bearer_auth(&secured.bob);
        assert_error(request.send().unwrap(), 404, "not_found");
    }
    let ids = |key: &str| -> Vec<String> {
        let list: Value = secured.get("/api/jobs").bearer_auth(key).send().unwrap().json().unwrap();
        list["jobs"].as_array().unwrap().iter().map(|job| job["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids(&secured.alice), vec![alices.clone()]);
    assert_eq!(ids(&secured.bob), vec![bobs.clone()]);
    let all = ids(&secured.admin);
    assert!(all.contains(&alices) && all.contains(&bobs), "{all:?}");

    // /metrics is for administrators.
    assert_error(secured.get("/metrics").bearer_auth(&secured.alice).send().unwrap(), 403, "admin_only");
    let metrics = secured.get("/metrics").bearer_auth(&secured.admin).send().unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.text().unwrap().contains("whisper_appliance_jobs_created_total 2"));

    // The admin may delete anyone's job.
    let deleted = client.delete(format!("{url}/api/jobs/{alices}")).bearer_auth(&secured.admin).send().unwrap();
    assert_eq!(deleted.status(), 204);
}

#[test]
fn keys_never_appear_in_logs_or_responses_after_creation() {
    let mut secured = secured(&[]);
    let id = secured.upload_as(&secured.alice);
    let alice = secured.alice.clone();
    secured.appliance.use_key(&alice);
    secured.appliance.wait_finished(&id, Duration::from_secs(120));
    let mut seen = String::new();
    for path in ["/api/jobs", &format!("/api/jobs/{id}"), &format!("/api/jobs/{id}/result?format=json"), "/v1/models"] {
        seen.push_str(&secured.get(path).bearer_auth(&secured.alice).send().unwrap().text().unwrap());
    }
    seen.push_str(&secured.get("/metrics").bearer_auth(&secured.admin).send().unwrap().text().unwrap());
    let _ = secured.get("/api/jobs").bearer_auth(format!("{}x", secured.bob)).send().unwrap();
    let logs = secured.appliance.logs();
    assert!(logs.contains("\"route\":\"/api/jobs\""), "the audit log is there: {logs}");
    for key in [&secured.admin, &secured.alice, &secured.bob] {
        assert!(!logs.contains(key.as_str()), "a key leaked into the logs");
        assert!(!seen.contains(key.as_str()), "a key leaked into a response");
        // Not even the secret part without its prefix.
        assert!(!logs.contains(&key[3..]));
    }
    // Transcript text stays out of the logs too.
    assert!(!logs.to_lowercase().contains("fellow americans"));
}

#[test]
fn a_key_gets_100_requests_a_minute_then_429_and_other_keys_are_unaffected() {
    let secured = secured(&[]);
    let started = std::time::Instant::now();
    for n in 0..100 {
        let response = secured.get("/api/jobs").bearer_auth(&secured.alice).send().unwrap();
        assert_eq!(response.status(), 200, "request {n}");
        assert_eq!(response.headers()["ratelimit-limit"], "100");
        let remaining: u32 = response.headers()["ratelimit-remaining"].to_str().unwrap().parse().unwrap();
        assert!(if n == 0 { remaining == 99 } else { remaining < 99 }, "request {n}: {remaining} left");
    }
    // The allowance refills at 100 per minute (one every 0.6 s), so a slow machine may get
    // a few more in before the refusal; never more than the refill allows.
    let mut extra = 0;
    let refused = loop {
        let response = secured.get("/api/jobs").bearer_auth(&secured.alice).send().unwrap();
        if response.status() != 200 {
            break response;
        }
        extra += 1;
        assert!(extra <= 100, "never refused");
    };
    let refilled = (started.elapsed().as_secs_f64() / 0.6).ceil() as u32;
    assert!(extra <= refilled, "{extra} more than 100 passed within {:?}", started.elapsed());
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let message = assert_error(refused, 429, "rate_limited");
    assert!(message.contains("more than 100 requests in a minute"), "{message}");
    assert_eq!(secured.get("/api/jobs").bearer_auth(&secured.bob).send().unwrap().status(), 200);
    // Health checks are never limited.
    assert_eq!(secured.get("/healthz").send().unwrap().status(), 200);
}

#[test]
fn a_key_uploading_more_files_at_once_than_allowed_gets_429_and_other_keys_are_unaffected() {
    let secured = secured(&["--max-concurrent-uploads", "1"]);
    let address = secured.appliance.url.trim_start_matches("http://").to_owned();
    // Alice's first upload: headers and part of the body, the rest still to come.
    let mut first = TcpStream::connect(&address).unwrap();
    let boundary = "concurrent-boundary";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\
         Content-Type: audio/wav\r\n\r\n"
    );
    let wav = std::fs::read(audio("jfk.wav")).unwrap();
    let tail = format!("\r\n--{boundary}--\r\n");
    write!(
        first,
        "POST /api/jobs HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\n\r\n{head}",
        secured.alice,
        head.len() + wav.len() + tail.len()
    )
    .unwrap();
    first.write_all(&wav[..wav.len() / 2]).unwrap();

    // Once the server has admitted the half-sent upload, alice's next one is refused; until
    // then a try goes through whole, and gives its permit back.
    let refused = poll("the half-sent upload is admitted", Duration::from_secs(60), || {
        let response = secured.upload(&secured.alice);
        (response.status() == 429).then_some(response)
    });
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after >= 1, "{retry_after}");
    let message = assert_error(refused, 429, "too_many_uploads");
    assert!(message.contains("1 uploads are already in progress"), "{message}");
    let bob = secured.upload(&secured.bob);
    assert_eq!(bob.status(), 202, "another key uploads meanwhile");

    // The first upload completes, and with it the permit is returned.
    first.write_all(&wav[wav.len() / 2..]).unwrap();
    first.write_all(tail.as_bytes()).unwrap();
    let mut answer = [0u8; 12];
    first.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 202", "the first upload is accepted");
    assert_eq!(secured.upload(&secured.alice).status(), 202, "alice may upload again");
}

#[test]
fn the_page_trades_a_key_for_a_session_cookie_with_its_flags() {
    let secured = secured(&[]);
    let url = &secured.appliance.url;
    let client = no_redirects();
    let page = client.get(format!("{url}/")).send().unwrap();
    assert_eq!(page.status(), 200);
    let page = Html::parse_document(&page.text().unwrap());
    assert!(!select(&page, "form[action=\"/login\"]").is_empty(), "visitors see the login form: {}", page.html());

    let refused = client.post(format!("{url}/login")).form(&[("key", "wa_wrong")]).send().unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().get("set-cookie").is_none());

    let login = client.post(format!("{url}/login")).form(&[("key", secured.alice.as_str())]).send().unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=43200"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP without a trusted proxy: {cookie}");
    assert!(!cookie.contains(&secured.alice), "the cookie must not hold the key");
    let session = cookie.split(';').next().unwrap().to_owned();

    let jobs = client.get(format!("{url}/api/jobs")).header("cookie", &session).send().unwrap();
    assert_eq!(jobs.status(), 200);
    let home =
        Html::parse_document(&client.get(format!("{url}/")).header("cookie", &session).send().unwrap().text().unwrap());
    assert_eq!(text(one(&home, "form[action=\"/logout\"] .user")), "alice", "{}", home.html());

    // Behind the TLS proxy the cookie is Secure.
    let state = tempfile::tempdir().unwrap();
    let key = create_key(state.path(), "carol", "user");
    let mut proxied = Appliance::start_in(state.path(), &["--auth", "true", "--trusted-proxy", "true"]);
    proxied.keep(state);
    let login = client
        .post(format!("{}/login", proxied.url))
        .header("x-forwarded-proto", "https")
        .form(&[("key", key.as_str())])
        .send()
        .unwrap();
    assert!(login.headers()["set-cookie"].to_str().unwrap().ends_with("; Secure"));

    let logout = client.post(format!("{url}/logout")).header("cookie", &session).send().unwrap();
    assert_eq!(logout.status(), 303);
    assert!(logout.headers()["set-cookie"].to_str().unwrap().starts_with("wa_session=; Max-Age=0;"));
    // A forged cookie is refused.
    let forged = session.replacen(|c: char| c.is_ascii_digit(), "9", 1);
    let response = client.get(format!("{url}/api/jobs")).header("cookie", forged).send().unwrap();
    assert_error(response, 401, "session_expired");
}

#[test]
fn cross_site_writes_from_a_browser_are_refused() {
    let secured = secured(&[]);
    let url = &secured.appliance.url;
    let client = no_redirects();
    let login = client.post(format!("{url}/login")).form(&[("key", secured.alice.as_str())]).send().unwrap();
    let session = login.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let form = || reqwest::blocking::multipart::Form::new().file("file", audio("jfk.wav")).unwrap();

    let evil = client
        .post(format!("{url}/api/jobs"))
        .header("cookie", &session)
        .header("origin", "https://evil.example")
        .multipart(form())
        .send()
        .unwrap();
    assert_error(evil, 403, "cross_site_request");
    let fetch_metadata = client
        .post(format!("{url}/api/jobs"))
        .header("cookie", &session)
        .header("sec-fetch-site", "cross-site")
        .multipart(form())
        .send()
        .unwrap();
    assert_error(fetch_metadata, 403, "cross_site_request");

    let host = url.trim_start_matches("http://");
    let same = client
        .post(format!("{url}/api/jobs"))
        .header("cookie", &session)
        .header("origin", format!("http://{host}"))
        .header("sec-fetch-site", "same-origin")
        .multipart(form())
        .send()
        .unwrap();
    assert_eq!(same.status(), 202);
    secured.appliance.assert_temp_empty_after_jobs();
}

#[test]
fn the_trusted_proxy_user_is_accepted_only_when_configured() {
    let secured = secured(&["--trusted-proxy", "true", "--proxy-admin", "root-of-trust"]);
    let as_user = |user: &str| secured.get("/api/jobs").header("x-forwarded-user", user).send().unwrap();
    assert_eq!(as_user("dora").status(), 200);
    assert_eq!(secured.get("/metrics").header("x-forwarded-user", "dora").send().unwrap().status(), 403);
    assert_eq!(secured.get("/metrics").header("x-forwarded-user", "root-of-trust").send().unwrap().status(), 200);

    let plain = self::secured(&[]);
    let response = plain.get("/api/jobs").header("x-forwarded-user", "dora").send().unwrap();
    assert_error(response, 401, "missing_api_key");
}

#[test]
fn keys_create_on_a_fresh_state_dir_makes_it_private_and_refuses_a_shared_one() {
    use std::os::unix::fs::PermissionsExt as _;
    let parent = tempfile::tempdir().unwrap();
    let fresh = parent.path().join("state");
    create_key(&fresh, "first", "admin");
    // Every directory 0700 and every file 0600, whatever the caller's umask (022 here).
    let mut seen = 0;
    let mut pending = vec![fresh.clone()];
    while let Some(path) = pending.pop() {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        if path.is_dir() {
            assert_eq!(mode, 0o700, "{}", path.display());
            pending.extend(std::fs::read_dir(&path).unwrap().map(|entry| entry.unwrap().path()));
        } else {
            assert_eq!(mode, 0o600, "{}", path.display());
            seen += 1;
        }
    }
    assert!(seen > 0, "the key database has files");

    let shared = parent.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let output = std::process::Command::new(crate::common::BINARY)
        .args(["keys", "create", "--name", "x", "--role", "user", "--config", "/dev/null", "--state-dir"])
        .arg(&shared)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("writable by group or others"), "{stderr}");
    assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 0, "nothing was written into it");
}

#[test]
fn logout_and_revocation_end_sessions_two_cookies_are_refused_and_login_returns_to_the_linked_page() {
    let secured = secured(&[]);
    let url = &secured.appliance.url;
    let client = no_redirects();
    let login = |key: &str, next: Option<&str>| {
        let mut form = vec![("key", key)];
        form.extend(next.map(|next| ("next", next)));
        client.post(format!("{url}/login")).form(&form).send().unwrap()
    };
    let session_of = |response: &reqwest::blocking::Response| {
        response.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned()
    };
    let jobs_with = |cookie: &str| client.get(format!("{url}/api/jobs")).header("cookie", cookie).send().unwrap();

    // Logging out ends the session on the server: the old cookie is refused from then on.
    let first = session_of(&login(&secured.alice, None));
    let second = session_of(&login(&secured.alice, None));
    assert_eq!(jobs_with(&first).status(), 200);
    let logout = client.post(format!("{url}/logout")).header("cookie", &first).send().unwrap();
    assert_eq!(logout.status(), 303);
    assert_error(jobs_with(&first), 401, "session_expired");
    assert_eq!(jobs_with(&second).status(), 200, "other sessions of the key go on");

    // Two session cookies (one planted from a sibling domain, say): refused, not guessed between.
    let bobs = session_of(&login(&secured.bob, None));
    assert_error(jobs_with(&format!("{bobs}; {second}")), 400, "several_sessions");
    let twice = client.get(format!("{url}/api/jobs")).header("cookie", &bobs).header("cookie", &second).send().unwrap();
    assert_error(twice, 400, "several_sessions");

    // A link to a job page, followed while logged out, comes back to that page after login.
    let id = secured.upload_as(&secured.alice);
    let link = client.get(format!("{url}/jobs/{id}")).send().unwrap();
    assert_eq!(link.status(), 303);
    let to_login = link.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(to_login, format!("/?next=%2Fjobs%2F{id}"));
    let form = client.get(format!("{url}{to_login}")).send().unwrap().text().unwrap();
    assert!(form.contains(&format!("name=\"next\" value=\"/jobs/{id}\"")), "{form}");
    let back = login(&secured.alice, Some(&format!("/jobs/{id}")));
    assert_eq!(back.status(), 303);
    assert_eq!(back.headers()["location"], format!("/jobs/{id}").as_str());
    let page = client.get(format!("{url}/jobs/{id}")).header("cookie", session_of(&back)).send().unwrap();
    assert_eq!(page.status(), 200);
    // Only to paths on this server.
    for elsewhere in ["//evil.example/", "https://evil.example/", "/\\evil.example", "/\t/evil.example"] {
        let response = login(&secured.alice, Some(elsewhere));
        assert_eq!(response.headers()["location"], "/", "{elsewhere:?}");
    }

    // Revoking the key with the command ends its sessions at once.
    let output = std::process::Command::new(crate::common::BINARY)
        .args(["keys", "revoke", "alice", "--config", "/dev/null", "--state-dir"])
        .arg(&secured.appliance.state_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_error(jobs_with(&second), 401, "session_expired");
}
