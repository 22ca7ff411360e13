//! Signed tokens (JWT) over real TCP, on both `GET /events` paths: the
//! embeddable router (in this process, streaming through hyper) and
//! `ssehub serve` (a child process whose front streams onto the socket).
//! Every behaviour runs against both.
//!
//! Tokens are signed here with `jsonwebtoken`, the reference implementation.

#[path = "../../tests/http_support/mod.rs"]
mod http_support;
#[path = "support/process.rs"]
mod process;

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_support::{quiet, start_with, Remote, Reply, TestServer, ADMIN};
use hyper::Method;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use process::ServeProcess;
use serde_json::json;
use ssehub::http::JwtKey;

const SECRET: &str = "jwt-test-secret";

/// One of the two paths, running.
enum Server {
    Router(TestServer),
    Serve(ServeProcess, Remote),
}

impl Server {
    fn remote(&self) -> &Remote {
        match self {
            Server::Router(server) => &server.remote,
            Server::Serve(_, remote) => remote,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Server::Router(_) => "router",
            Server::Serve(..) => "serve",
        }
    }
}

/// How the server verifies tokens.
#[derive(Clone)]
enum KeySetup {
    Hs256,
    /// An asymmetric algorithm and the PEM of its public key.
    Public(Algorithm, &'static str, String),
}

/// Both paths with `key` (and a subscriber token if given), keep-alive off.
async fn both(key: &KeySetup, subscriber_token: Option<&'static str>) -> Vec<Server> {
    let router = {
        let jwt = match key {
            KeySetup::Hs256 => JwtKey::new("HS256", SECRET).expect("key"),
            KeySetup::Public(alg, _, pem) => {
                JwtKey::from_public_pem(*alg, pem.as_bytes()).expect("public key")
            }
        };
        start_with(quiet(), move |builder| {
            let builder = builder.jwt_key(jwt);
            match subscriber_token {
                Some(token) => builder.subscriber_token(token),
                None => builder,
            }
        })
        .await
    };
    let dir = std::env::temp_dir().join(format!(
        "ssehub-jwt-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut args: Vec<String> = vec!["--keep-alive".into(), "0".into()];
    match key {
        KeySetup::Hs256 => args.extend(["--jwt-key".into(), SECRET.into()]),
        KeySetup::Public(_, name, pem) => {
            let path = dir.join("public.pem");
            std::fs::write(&path, pem).expect("write pem");
            args.extend([
                "--jwt-key".into(),
                path.display().to_string(),
                "--jwt-alg".into(),
                (*name).into(),
            ]);
        }
    }
    if let Some(token) = subscriber_token {
        args.extend(["--subscriber-token".into(), token.into()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let process = ServeProcess::spawn(&args);
    let remote = process.remote();
    vec![Server::Router(router), Server::Serve(process, remote)]
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// An HS256 token with `claims`, signed with the server's secret.
fn sign(claims: serde_json::Value) -> String {
    sign_with(
        Algorithm::HS256,
        &EncodingKey::from_secret(SECRET.as_bytes()).expect("hmac key"),
        claims,
    )
}

fn sign_with(alg: Algorithm, key: &EncodingKey, claims: serde_json::Value) -> String {
    encode(&Header::new(alg), &claims, key).expect("sign")
}

/// A token valid for a minute granting `subscribe` and `publish`.
fn token(subscribe: &[&str], publish: &[&str]) -> String {
    sign(json!({
        "exp": now() + 60,
        "subscribe": subscribe,
        "publish": publish,
        "sub": "user-1",
    }))
}

/// Base64url without padding (for hand-made tokens).
fn b64(bytes: &[u8]) -> String {
    const TABLE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn assert_invalid_token(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 401, "{what}: {}", reply.body);
    reply.assert_error(401, "invalid_token");
    assert_eq!(
        reply.header("www-authenticate"),
        r#"Bearer error="invalid_token""#,
        "{what}"
    );
}

async fn publish_as(remote: &Remote, bearer: &str, json: &str) -> Reply {
    remote
        .send(
            Method::POST,
            "/admin/events",
            &[
                ("authorization", &format!("Bearer {bearer}")),
                ("content-type", "application/json"),
            ],
            Bytes::from(json.to_owned()),
        )
        .await
}

async fn published(remote: &Remote) -> u64 {
    remote.admin_get("/admin/stats").await.json()["published"]
        .as_u64()
        .expect("published count")
}

#[tokio::test]
async fn without_event_type_a_token_receives_only_its_subscribe_types() {
    for server in both(&KeySetup::Hs256, None).await {
        let remote = server.remote();
        let tok = token(&["a", "c"], &[]);
        let mut stream = remote.subscribe(&format!("?token={tok}"), &[]).await;
        if let Server::Serve(..) = server {
            // Streamed by the front itself, not handed to the router.
            assert_eq!(stream.headers["connection"], "close");
        }
        remote
            .publish_ok(r#"[{"type":"a","n":1},{"type":"b","n":2},{"type":"c","n":3}]"#)
            .await;
        stream.read_until(r#""n":3"#).await;
        assert_eq!(
            stream.data(),
            [r#"{"type":"a","n":1}"#, r#"{"type":"c","n":3}"#],
            "{}",
            server.name()
        );
        // "*" grants every type.
        let all = token(&["*"], &[]);
        let mut stream = remote.subscribe(&format!("?token={all}"), &[]).await;
        remote
            .publish_ok(r#"[{"type":"b","n":4},{"type":"z","n":5}]"#)
            .await;
        stream.read_until(r#""n":5"#).await;
        assert_eq!(stream.data().len(), 2, "{}", server.name());
    }
}

#[tokio::test]
async fn an_event_type_outside_the_token_is_403_forbidden_type() {
    for server in both(&KeySetup::Hs256, None).await {
        let remote = server.remote();
        let tok = token(&["a", "c"], &[]);
        remote
            .get(&format!("/events?token={tok}&event_type=a,b"))
            .await
            .assert_error(403, "forbidden_type");
        // A token granting nothing opens nothing.
        let none = sign(json!({ "exp": now() + 60 }));
        remote
            .get(&format!("/events?token={none}"))
            .await
            .assert_error(403, "forbidden_type");
        // A subset is fine, and only that subset arrives.
        let mut stream = remote
            .subscribe(&format!("?token={tok}&event_type=c"), &[])
            .await;
        remote
            .publish_ok(r#"[{"type":"a","n":1},{"type":"c","n":2}]"#)
            .await;
        stream.read_until(r#""n":2"#).await;
        assert_eq!(
            stream.data(),
            [r#"{"type":"c","n":2}"#],
            "{}",
            server.name()
        );
    }
}

#[tokio::test]
async fn missing_malformed_badly_signed_expired_or_wrong_alg_tokens_are_401_invalid_token() {
    let claims = json!({ "exp": now() + 60, "subscribe": ["*"] });
    let header_none = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64(claims.to_string().as_bytes());
    let cases: Vec<(&str, String)> = vec![
        ("missing", "/events".to_owned()),
        ("malformed", "/events?token=not.a.jwt".to_owned()),
        ("garbage", "/events?token=xyz".to_owned()),
        (
            "bad signature",
            format!(
                "/events?token={}",
                sign_with(
                    Algorithm::HS256,
                    &EncodingKey::from_secret(b"another secret").expect("hmac key"),
                    claims.clone()
                )
            ),
        ),
        (
            "expired",
            format!(
                "/events?token={}",
                sign(json!({ "exp": now() - 5, "subscribe": ["*"] }))
            ),
        ),
        (
            "no exp",
            format!("/events?token={}", sign(json!({ "subscribe": ["*"] }))),
        ),
        (
            "exp as a string",
            format!(
                "/events?token={}",
                sign(json!({ "exp": (now() + 60).to_string(), "subscribe": ["*"] }))
            ),
        ),
        (
            "alg none",
            format!("/events?token={header_none}.{payload}."),
        ),
        (
            "another HMAC algorithm",
            format!(
                "/events?token={}",
                sign_with(
                    Algorithm::HS512,
                    &EncodingKey::from_secret(SECRET.as_bytes()).expect("hmac key"),
                    claims.clone()
                )
            ),
        ),
    ];
    for server in both(&KeySetup::Hs256, None).await {
        for (what, path) in &cases {
            let reply = server.remote().get(path).await;
            assert_invalid_token(&reply, &format!("{} {what}", server.name()));
        }
        // The same token in the header: refused the same way.
        let reply = server
            .remote()
            .send(
                Method::GET,
                "/events",
                &[("authorization", "Bearer not.a.jwt")],
                Bytes::new(),
            )
            .await;
        assert_invalid_token(&reply, server.name());
    }
}

#[tokio::test]
async fn the_token_is_read_from_the_header_the_query_or_the_cookie() {
    for server in both(&KeySetup::Hs256, None).await {
        let remote = server.remote();
        let tok = token(&["a"], &[]);
        let auth = format!("Bearer {tok}");
        let cookie = format!("theme=dark; ssehub_token={tok}");
        let mut streams = vec![
            remote.subscribe("", &[("authorization", &auth)]).await,
            remote.subscribe(&format!("?token={tok}"), &[]).await,
            remote.subscribe("", &[("cookie", &cookie)]).await,
        ];
        remote
            .publish_ok(r#"[{"type":"b","n":1},{"type":"a","n":2}]"#)
            .await;
        for stream in &mut streams {
            stream.read_until(r#""n":2"#).await;
            assert_eq!(
                stream.data(),
                [r#"{"type":"a","n":2}"#],
                "{}",
                server.name()
            );
        }
    }
}

#[tokio::test]
async fn replays_obey_the_token_filter() {
    for server in both(&KeySetup::Hs256, None).await {
        let remote = server.remote();
        let before = SystemTime::now() - Duration::from_secs(2);
        let ids = remote
            .publish_ok(
                r#"[{"type":"a","n":1},{"type":"b","n":2},{"type":"a","n":3},{"type":"b","n":4},{"type":"a","n":5}]"#,
            )
            .await;
        let tok = token(&["a"], &[]);
        let stamp = {
            let secs = before
                .duration_since(SystemTime::UNIX_EPOCH)
                .expect("clock")
                .as_secs();
            // RFC 3339 of `secs` (UTC).
            let days = secs / 86400;
            let (h, m, s) = (secs % 86400 / 3600, secs % 3600 / 60, secs % 60);
            let (y, mo, d) = civil(days as i64);
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
        };
        let replays = [
            (format!("?token={tok}&from={}", ids[0]), vec![]),
            (
                format!("?token={tok}"),
                vec![("last-event-id".to_owned(), ids[0].clone())],
            ),
            (format!("?token={tok}&from_timestamp={stamp}"), vec![]),
        ];
        for (query, headers) in &replays {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            // The opening comment and the replayed batch may come in one
            // read, so no `subscribe` (which wants the comment alone).
            let mut stream = remote.stream(&format!("/events{query}"), &headers).await;
            assert_eq!(stream.status, 200, "{} {query}", server.name());
            stream.read_until(r#""n":5"#).await;
            let data = stream.data();
            assert!(
                data.iter().all(|d| d.contains(r#""type":"a""#)),
                "{} {query}: {data:?}",
                server.name()
            );
            assert!(data.contains(&r#"{"type":"a","n":3}"#.to_owned()));
        }
    }
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[tokio::test]
async fn a_stream_ends_when_its_token_expires() {
    for server in both(&KeySetup::Hs256, None).await {
        let remote = server.remote();
        let exp = now() + 2;
        let tok = sign(json!({ "exp": exp, "subscribe": ["*"] }));
        let mut stream = remote.subscribe(&format!("?token={tok}"), &[]).await;
        remote.publish_ok(r#"{"type":"a","n":1}"#).await;
        stream.read_until(r#""n":1"#).await;
        // The end arrives within read_to_end's 5 s, after exp.
        let text = stream.read_to_end().await.to_owned();
        assert!(
            text.ends_with("\n\n: end token_expired\n\n"),
            "{}: {text:?}",
            server.name()
        );
        assert!(now() >= exp, "ended before exp");
    }
}

#[tokio::test]
async fn publishing_with_a_token_needs_every_type_in_its_publish_claim() {
    for server in both(&KeySetup::Hs256, None).await {
        let remote = server.remote();
        let publisher = token(&[], &["a", "b"]);
        let reply = publish_as(remote, &publisher, r#"[{"type":"a"},{"type":"b"}]"#).await;
        assert_eq!(reply.status, 200, "{}: {}", server.name(), reply.body);
        assert_eq!(published(remote).await, 2);
        // One type outside the claim: 403 and nothing of the batch.
        let reply = publish_as(remote, &publisher, r#"[{"type":"a"},{"type":"c"}]"#).await;
        reply.assert_error(403, "forbidden_type");
        assert_eq!(published(remote).await, 2, "{}", server.name());
        // A token granting no publishing.
        let reader = token(&["*"], &[]);
        publish_as(remote, &reader, r#"{"type":"a"}"#)
            .await
            .assert_error(403, "forbidden_type");
        // A bad token.
        assert_invalid_token(
            &publish_as(remote, "not.a.jwt", r#"{"type":"a"}"#).await,
            server.name(),
        );
        // "*" publishes anything; the admin token still does.
        let any = token(&[], &["*"]);
        assert_eq!(
            publish_as(remote, &any, r#"{"type":"zz"}"#).await.status,
            200
        );
        assert_eq!(
            publish_as(remote, ADMIN, r#"{"type":"zz"}"#).await.status,
            200
        );
        assert_eq!(published(remote).await, 4);
    }
}

#[tokio::test]
async fn reset_and_stats_stay_admin_only() {
    for server in both(&KeySetup::Hs256, None).await {
        let remote = server.remote();
        let all = token(&["*"], &["*"]);
        let auth = format!("Bearer {all}");
        for (method, path) in [
            (Method::POST, "/admin/reset"),
            (Method::GET, "/admin/stats"),
        ] {
            let reply = remote
                .send(
                    method.clone(),
                    path,
                    &[("authorization", &auth)],
                    Bytes::new(),
                )
                .await;
            reply.assert_error(401, "unauthorized");
            let reply = remote
                .send(
                    method,
                    path,
                    &[("authorization", &format!("Bearer {ADMIN}"))],
                    Bytes::new(),
                )
                .await;
            assert!(reply.status.is_success(), "{}: {path}", server.name());
        }
    }
}

#[tokio::test]
async fn with_a_subscriber_token_too_either_credential_opens_a_stream() {
    for server in both(&KeySetup::Hs256, Some("shared-reader")).await {
        let remote = server.remote();
        let tok = token(&["a"], &[]);
        let mut shared = remote.subscribe("?token=shared-reader", &[]).await;
        let mut signed = remote.subscribe(&format!("?token={tok}"), &[]).await;
        let mut shared_header = remote
            .subscribe("", &[("authorization", "Bearer shared-reader")])
            .await;
        remote
            .publish_ok(r#"[{"type":"b","n":1},{"type":"a","n":2}]"#)
            .await;
        shared.read_until(r#""n":2"#).await;
        signed.read_until(r#""n":2"#).await;
        shared_header.read_until(r#""n":2"#).await;
        assert_eq!(shared.data().len(), 2, "the shared token grants all types");
        assert_eq!(signed.data(), [r#"{"type":"a","n":2}"#]);
        assert_invalid_token(&remote.get("/events?token=wrong").await, server.name());
        assert_invalid_token(&remote.get("/events").await, server.name());
    }
}

/// An HS256 token "signed" with the text of the server's public key (the
/// classic key-confusion attack) is refused.
async fn assert_key_confusion_is_refused(remote: &Remote, public_pem: &str, what: &str) {
    let confused = sign_with(
        Algorithm::HS256,
        &EncodingKey::from_secret(public_pem.as_bytes()).expect("hmac key"),
        json!({ "exp": now() + 60, "subscribe": ["*"] }),
    );
    assert_invalid_token(
        &remote.get(&format!("/events?token={confused}")).await,
        &format!("{what}: HS256 with the public key"),
    );
}

#[tokio::test]
async fn a_pem_public_key_verifies_es256_and_eddsa_and_refuses_key_confusion() {
    for (alg, name, rcgen_alg) in [
        (Algorithm::ES256, "ES256", &rcgen::PKCS_ECDSA_P256_SHA256),
        (Algorithm::EdDSA, "EdDSA", &rcgen::PKCS_ED25519),
    ] {
        let pair = rcgen::KeyPair::generate_for(rcgen_alg).expect("key pair");
        let public_pem = pair.public_key_pem();
        let private = pair.serialize_pem();
        let signing = match alg {
            Algorithm::ES256 => EncodingKey::from_ec_pem(private.as_bytes()),
            _ => EncodingKey::from_ed_pem(private.as_bytes()),
        }
        .expect("signing key");
        let setup = KeySetup::Public(alg, name, public_pem.clone());
        for server in both(&setup, None).await {
            let remote = server.remote();
            let good = sign_with(
                alg,
                &signing,
                json!({ "exp": now() + 60, "subscribe": ["a"] }),
            );
            let mut stream = remote.subscribe(&format!("?token={good}"), &[]).await;
            remote.publish_ok(r#"{"type":"a","n":1}"#).await;
            stream.read_until(r#""n":1"#).await;
            assert_key_confusion_is_refused(
                remote,
                &public_pem,
                &format!("{} {name}", server.name()),
            )
            .await;
        }
    }
}

#[tokio::test]
async fn the_sub_claim_goes_into_the_stream_log_line() {
    let mut servers = both(&KeySetup::Hs256, None).await;
    let Some(Server::Serve(process, remote)) = servers.pop() else {
        panic!("the serve path comes second");
    };
    let tok = sign(json!({ "exp": now() + 60, "subscribe": ["a"], "sub": "alice-42" }));
    let _stream = remote.subscribe(&format!("?token={tok}"), &[]).await;
    let mut process = process;
    let line = process
        .wait_for_log("stream opened", Duration::from_secs(5))
        .expect("a stream opened line");
    assert!(line.contains("alice-42"), "{line}");
}

/// An RSA key pair made by the `openssl` command (rcgen cannot generate RSA
/// keys): the private key as PKCS#8 PEM and the public key as SPKI PEM, the
/// forms `openssl genpkey` / `openssl pkey -pubout` write and operators use.
/// `None` (test skipped, with a note) when `openssl` cannot run, except with
/// `CI=true`, where that fails the test (`.ci/run` installs it).
fn openssl_rsa_pair() -> Option<(String, String)> {
    let run = |args: &[&str], input: Option<&[u8]>| -> Result<Vec<u8>, String> {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| format!("openssl {args:?}: {error}"))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        if let Some(input) = input {
            stdin.write_all(input).map_err(|error| error.to_string())?;
        }
        drop(stdin);
        let output = child
            .wait_with_output()
            .map_err(|error| error.to_string())?;
        if !output.status.success() {
            return Err(format!(
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(output.stdout)
    };
    let pair = run(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
        ],
        None,
    )
    .and_then(|private| Ok((run(&["pkey", "-pubout"], Some(&private))?, private)));
    match pair {
        Ok((public, private)) => Some((
            String::from_utf8(private).expect("PEM is ASCII"),
            String::from_utf8(public).expect("PEM is ASCII"),
        )),
        Err(message) if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!("CI=true and openssl cannot make an RSA key: {message}")
        }
        Err(message) => {
            eprintln!("skipping: openssl cannot make an RSA key: {message}");
            None
        }
    }
}

#[tokio::test]
async fn a_pem_public_key_verifies_rs256_and_refuses_other_algorithms() {
    let Some((private, public_pem)) = openssl_rsa_pair() else {
        return;
    };
    let signing = EncodingKey::from_rsa_pem(private.as_bytes()).expect("RSA signing key");
    let setup = KeySetup::Public(Algorithm::RS256, "RS256", public_pem.clone());
    for server in both(&setup, None).await {
        let remote = server.remote();
        let good = sign_with(
            Algorithm::RS256,
            &signing,
            json!({ "exp": now() + 60, "subscribe": ["a"] }),
        );
        let mut stream = remote.subscribe(&format!("?token={good}"), &[]).await;
        remote.publish_ok(r#"{"type":"b","n":0}"#).await;
        remote.publish_ok(r#"{"type":"a","n":1}"#).await;
        let seen = stream.read_until(r#""n":1"#).await;
        assert!(
            !seen.contains(r#""n":0"#),
            "{}: an RS256 token for `a` received a `b` event: {seen}",
            server.name()
        );
        // The same key signing PS256 (another RSA algorithm) is not the
        // configured algorithm: refused.
        let other_alg = sign_with(
            Algorithm::PS256,
            &signing,
            json!({ "exp": now() + 60, "subscribe": ["*"] }),
        );
        assert_invalid_token(
            &remote.get(&format!("/events?token={other_alg}")).await,
            &format!("{} PS256 against RS256", server.name()),
        );
        assert_key_confusion_is_refused(remote, &public_pem, &format!("{} RS256", server.name()))
            .await;
    }
}
