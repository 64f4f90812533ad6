//! What reaches a route, against the real binary: every guarded route answers the same,
//! guard included, however its path is spelt (trailing slash, doubled slash,
//! percent-encoded letters); paths that are not routes get 404 whoever asks; and a `Host`
//! the appliance is not known by gets 421 before any route, with authentication on or off.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use crate::common::{Appliance, create_key};

/// One raw HTTP/1.1 request, so the path reaches the server exactly as written.
fn send(appliance: &Appliance, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let address = appliance.url.trim_start_matches("http://");
    let host = headers.iter().find(|(name, _)| name.eq_ignore_ascii_case("host")).map_or(address, |(_, host)| host);
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (name, value) in headers.iter().filter(|(name, _)| !name.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-length")) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer.get(9..12).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("{answer:?}"));
    (status, answer)
}

/// What makes two answers the same: the status, the JSON error code, where a redirect goes.
fn gist(answer: &(u16, String)) -> String {
    let (status, text) = answer;
    let code = text.split("\"code\":\"").nth(1).and_then(|rest| rest.split('"').next()).unwrap_or("-");
    let location = text
        .lines()
        .find_map(|line| line.to_ascii_lowercase().strip_prefix("location: ").map(str::to_owned))
        .unwrap_or_default();
    format!("{status} {code} {location}")
}

/// `/a/b` as a trailing-slash, a doubled-slash and a percent-encoded spelling.
fn spellings(path: &str) -> Vec<String> {
    let (path, query) = path.split_once('?').map_or((path, ""), |(path, query)| (path, query));
    let query = if query.is_empty() { String::new() } else { format!("?{query}") };
    let first = path.as_bytes()[1];
    vec![
        format!("{path}/{query}"),
        format!("/{path}{query}"),
        format!("{}//{}{query}", &path[..path.rfind('/').unwrap()], &path[path.rfind('/').unwrap() + 1..]),
        format!("/%{first:02X}{}{query}", &path[2..]),
        format!("/%{first:02x}{}/{query}", &path[2..]),
    ]
}

/// A request (method, path, headers) and the gist the plain spelling must answer.
type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, &'a str);

#[test]
fn every_spelling_of_a_guarded_route_gets_the_plain_spellings_answer() {
    let state = tempfile::tempdir().unwrap();
    let admin = create_key(state.path(), "admin", "admin");
    let user = create_key(state.path(), "user", "user");
    let mut appliance = Appliance::start_in(state.path(), &["--auth", "true", "--max-upload-mb", "1"]);
    appliance.keep(state);
    let id = "0190f5b2-1c3e-7a4b-9c2d-3e4f5a6b7c8d";
    let (user_auth, admin_auth) = (format!("Bearer {user}"), format!("Bearer {admin}"));
    let form = [("content-type", "multipart/form-data; boundary=x")];
    let too_long = [("content-type", "multipart/form-data; boundary=x"), ("content-length", "50000000")];
    let as_user = |extra: &[(&'static str, &'static str)]| {
        let mut headers: Vec<(&str, &str)> = vec![("authorization", user_auth.as_str())];
        headers.extend_from_slice(extra);
        headers
    };
    let cases: Vec<Case> = vec![
        ("GET", "/metrics".into(), vec![], "401 missing_api_key "),
        ("GET", "/metrics".into(), as_user(&[]), "403 admin_only "),
        ("GET", "/metrics".into(), vec![("authorization", admin_auth.as_str())], "200 - "),
        ("GET", "/api/jobs".into(), vec![], "401 missing_api_key "),
        ("GET", "/api/jobs?limit=5".into(), as_user(&[]), "200 - "),
        ("GET", format!("/api/jobs/{id}"), vec![], "401 missing_api_key "),
        ("GET", format!("/api/jobs/{id}"), as_user(&[]), "404 not_found "),
        ("GET", format!("/api/jobs/{id}/result"), as_user(&[]), "404 not_found "),
        ("POST", format!("/api/jobs/{id}/cancel"), vec![], "401 missing_api_key "),
        ("DELETE", format!("/api/jobs/{id}"), as_user(&[]), "404 not_found "),
        ("POST", "/api/jobs".into(), form.to_vec(), "401 missing_api_key "),
        ("POST", "/api/jobs".into(), as_user(&too_long), "413 file_too_large "),
        ("POST", "/jobs".into(), as_user(&too_long), "413 file_too_large "),
        ("POST", "/v1/audio/transcriptions".into(), as_user(&too_long), "413 file_too_large "),
        ("POST", "/v1/audio/translations".into(), form.to_vec(), "401 missing_api_key "),
        ("GET", "/v1/models".into(), vec![], "401 missing_api_key "),
        ("GET", format!("/jobs/{id}"), vec![], "303 - /?next=%2fjobs%2f0190f5b2-1c3e-7a4b-9c2d-3e4f5a6b7c8d"),
        ("POST", format!("/jobs/{id}/delete"), vec![], "401 missing_api_key "),
        ("PUT", "/api/jobs".into(), as_user(&[]), "405 method_not_allowed "),
        ("GET", "/healthz".into(), vec![], "200 - "),
    ];
    for (method, path, headers, expected) in &cases {
        let plain = gist(&send(&appliance, method, path, headers, b""));
        assert_eq!(plain.trim_end(), expected.trim_end(), "{method} {path}");
        for spelling in spellings(path) {
            let answer = gist(&send(&appliance, method, &spelling, headers, b""));
            assert_eq!(answer, plain, "{method} {spelling} answered unlike {path}");
        }
    }
    // Not routes, for anyone: dot segments, encoded slashes, unknown names.
    for path in ["/api/jobs/../../metrics", "/api/jobs/%2e%2e/x", "/%6detrics%2F", "/metricsx", "/api/jobs/a/b"] {
        assert_eq!(gist(&send(&appliance, "GET", path, &as_user(&[]), b"")), "404 not_found ", "{path}");
    }
    let logs = appliance.logs();
    assert!(!logs.contains("panicked"), "{logs}");
}

#[test]
fn a_host_the_appliance_is_not_known_by_gets_421_with_authentication_off_and_on() {
    let open = Appliance::start(&["--allowed-host", "whisper.example.org"]);
    let state = tempfile::tempdir().unwrap();
    let admin = create_key(state.path(), "admin", "admin");
    let mut secured = Appliance::start_in(state.path(), &["--auth", "true"]);
    secured.keep(state);
    let bearer = format!("Bearer {admin}");
    for (appliance, authorization) in [(&open, None), (&secured, Some(bearer.as_str()))] {
        let port = appliance.url.rsplit(':').next().unwrap();
        let with_host = |host: &str| {
            let mut headers = vec![("host", host.to_owned())];
            headers.extend(authorization.map(|value| ("authorization", value.to_owned())));
            headers
        };
        // A rebound name, with and without a port, in any case; before routing and auth.
        for host in
            [format!("attacker.example:{port}"), "attacker.example".to_owned(), "LOCALHOST.attacker.example".into()]
        {
            for (method, path) in [("GET", "/api/jobs"), ("GET", "/metrics"), ("POST", "/api/jobs"), ("GET", "/nope")] {
                let headers = with_host(&host);
                let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
                let answer = send(appliance, method, path, &headers, b"");
                assert_eq!(gist(&answer), "421 unknown_host ", "{method} {path} as {host}");
            }
        }
        // The names it is known by, with any port.
        let mut known =
            vec![format!("127.0.0.1:{port}"), format!("localhost:{port}"), "[::1]:80".into(), "Localhost".into()];
        if authorization.is_none() {
            known.push(format!("Whisper.Example.org:{port}"));
        }
        for host in known {
            let headers = with_host(&host);
            let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            assert_eq!(gist(&send(appliance, "GET", "/api/jobs", &headers, b"")), "200 - ", "{host}");
        }
        assert!(appliance.logs().contains("unknown_host") || appliance.logs().contains("does not answer to the name"));
    }
}
