//! TLS through the real binary, with a CA made by the test (rcgen): the
//! gateway serves HTTPS itself; `amqps://` really negotiates TLS (checked
//! against listeners made by the test: the first bytes are a TLS
//! ClientHello, never AMQP in clear, and AMQP flows only inside a TLS
//! session the client verified); PostgreSQL's `sslmode=verify-full`
//! connects to a private PostgreSQL with TLS made by the test and refuses
//! a wrong CA or a wrong host name.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;

/// A CA and a server certificate it signed for localhost and 127.0.0.1,
/// written as PEM files.
struct Pki {
    _dir: tempfile::TempDir,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    cert_pem: String,
    key_pem: String,
}

fn pki() -> Pki {
    pki_for(&["localhost", "127.0.0.1"])
}

/// A CA and a server certificate it signed for `names`.
fn pki_for(names: &[&str]) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "horizon test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    Pki {
        ca: write("ca.pem", &ca.pem()),
        cert: write("server.pem", &cert.pem()),
        key: write("server.key", &key.serialize_pem()),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        _dir: dir,
    }
}

/// A child process killed when dropped, with its stderr lines on a channel.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("horizon starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    fn wait_for_line(&self, needle: &str) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no log line with '{needle}': {e}"),
            }
        }
    }
}

fn horizon() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_horizon"));
    cmd.env_remove("HORIZON_ADMIN_KEY")
        .env_remove("SSL_CERT_FILE");
    cmd
}

#[tokio::test]
async fn the_gateway_serves_https_with_its_certificate() {
    let pki = pki();
    let data = tempfile::tempdir().unwrap();
    let mut cmd = horizon();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&pki.cert)
        .arg("--tls-key")
        .arg(&pki.key)
        .arg("--data-dir")
        .arg(data.path());
    let served = Proc::spawn(cmd);
    let line = served.wait_for_line("listening on https://");
    let addr = line
        .split("https://")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let port = addr.rsplit(':').next().unwrap().to_string();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&pki.ca).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let base = format!("https://localhost:{port}");
    let resp = client
        .put(format!("{base}/v1/models/tls"))
        .json(&json!({"series": [{"id": "a", "values": [1, 2, 3, 4, 5, 6]}], "method": "naive"}))
        .send()
        .await
        .expect("HTTPS request");
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = client
        .post(format!("{base}/v1/models/tls/forecast"))
        .json(&json!({"horizon": 2}))
        .send()
        .await
        .expect("HTTPS request");
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["data"]["series"][0]["mean"], json!([6.0, 6.0]));

    // A client that does not trust the CA is refused by its own check.
    let untrusting = reqwest::Client::builder().use_rustls_tls().build().unwrap();
    assert!(untrusting
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_err());
    // Plain HTTP is not answered on the HTTPS port.
    let plain = reqwest::Client::new();
    let answer = plain
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await;
    assert!(
        answer.as_ref().map_or(true, |r| !r.status().is_success()),
        "plaintext answered: {answer:?}"
    );
}

/// A TLS client of the server at `port` that trusts the test's CA.
async fn tls_connect(
    port: u16,
    ca: &Path,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_file(ca).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake")
}

/// Reads until the server closes (`Some(what came)`), or `None` if it is
/// still open after `limit`.
async fn read_until_closed<R: AsyncRead + Unpin>(r: &mut R, limit: Duration) -> Option<String> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, r.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&out).into_owned()),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return None,
        }
    }
}

/// HTTPS goes through the same connection loop as HTTP: a client that
/// stalls in the handshake or in its headers is cut off by the header
/// timeout, and connections over the cap get a JSend 503 (over TLS).
#[tokio::test]
async fn slow_https_clients_are_cut_off_and_the_cap_holds() {
    let pki = pki();
    let data = tempfile::tempdir().unwrap();
    let mut cmd = horizon();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&pki.cert)
        .arg("--tls-key")
        .arg(&pki.key)
        .arg("--data-dir")
        .arg(data.path())
        .env("HORIZON_HEADER_TIMEOUT", "2s")
        .env("HORIZON_MAX_CONNECTIONS", "4");
    let served = Proc::spawn(cmd);
    let line = served.wait_for_line("listening on https://");
    let port: u16 = line
        .split("https://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|addr| addr.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("port");

    // Stalled before the handshake: closed without a word.
    let mut silent = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    assert!(
        read_until_closed(&mut silent, Duration::from_secs(30))
            .await
            .is_some(),
        "a connection that never started its TLS handshake stayed open"
    );
    // Stalled in its headers, inside TLS: closed too.
    let mut half = tls_connect(port, &pki.ca).await;
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    assert!(
        read_until_closed(&mut half, Duration::from_secs(30))
            .await
            .is_some(),
        "an HTTPS connection stalled in its headers stayed open"
    );

    // The cap: 4 connections held open, the fifth is refused with a JSend 503.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = tls_connect(port, &pki.ca).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        held.push(s);
    }
    let mut fifth = tls_connect(port, &pki.ca).await;
    fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut fifth, Duration::from_secs(10))
        .await
        .unwrap_or_default();
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains("connection: close"), "{answer}");
    assert!(lower.contains("retry-after:"), "{answer}");
    let body: Value = serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap_or(""))
        .unwrap_or_else(|e| panic!("not JSON ({e}): {answer}"));
    assert_eq!(body["status"], "error");
    // Once the held ones time out, the server answers again.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut s = tls_connect(port, &pki.ca).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let answer = read_until_closed(&mut s, Duration::from_secs(10))
            .await
            .unwrap_or_default();
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the cap never freed up: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(held);
}

#[test]
fn a_bad_certificate_is_a_startup_error() {
    let pki = pki();
    let data = tempfile::tempdir().unwrap();
    let out = horizon()
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert"])
        .arg(&pki.key) // a key where the certificate should be
        .arg("--tls-key")
        .arg(&pki.key)
        .arg("--data-dir")
        .arg(data.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no PEM certificate"), "{stderr}");
}

/// `horizon serve` in distributed mode with its broker at `broker`.
fn gateway_with_broker(broker: &str, namespace: &str, ca: Option<&Path>) -> Proc {
    let mut cmd = horizon();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--broker", broker])
        .args([
            "--store",
            test_services::STORE_URL,
            "--namespace",
            namespace,
        ]);
    if let Some(ca) = ca {
        cmd.env("SSL_CERT_FILE", ca);
    }
    Proc::spawn(cmd)
}

#[tokio::test]
async fn amqps_negotiates_tls_and_never_speaks_amqp_in_clear() {
    if !test_services::available_or_skip(
        "amqps_negotiates_tls_and_never_speaks_amqp_in_clear",
        &[test_services::POSTGRES],
    ) {
        return;
    }
    let namespace = format!("tls{}", std::process::id());
    // 1. A plain listener: the first bytes must open a TLS handshake.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let broker = format!("amqps://guest:guest@localhost:{port}/%2f");
    let gateway = gateway_with_broker(&broker, &namespace, None);
    let (mut conn, _) = tokio::time::timeout(Duration::from_secs(60), listener.accept())
        .await
        .expect("the gateway connects")
        .unwrap();
    let mut first = [0u8; 3];
    conn.read_exact(&mut first).await.unwrap();
    assert_eq!(
        first[..2],
        [0x16, 0x03],
        "not a TLS handshake record: {first:?}"
    );
    assert_ne!(&first, b"AMQ");
    drop((conn, gateway, listener));

    // 2. A TLS listener with a certificate of the test's CA: the client
    //    verifies it (trusting the CA through SSL_CERT_FILE), then speaks
    //    AMQP inside the session.
    let pki = pki();
    let certs =
        vec![rustls::pki_types::CertificateDer::from_pem_slice(pki.cert_pem.as_bytes()).unwrap()];
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(pki.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let broker = format!("amqps://guest:guest@localhost:{port}/%2f");

    // Without trusting the CA the client refuses the handshake.
    let gateway = gateway_with_broker(&broker, &namespace, None);
    let (conn, _) = listener.accept().await.unwrap();
    assert!(
        acceptor.accept(conn).await.is_err(),
        "a certificate of an unknown CA was accepted"
    );
    drop(gateway);

    let gateway = gateway_with_broker(&broker, &namespace, Some(&pki.ca));
    let (conn, _) = listener.accept().await.unwrap();
    let mut tls = acceptor.accept(conn).await.expect("TLS handshake");
    let mut header = [0u8; 8];
    tls.read_exact(&mut header).await.unwrap();
    assert_eq!(&header, b"AMQP\x00\x00\x09\x01", "AMQP inside TLS");
    drop((tls, gateway));
    let _ = store::postgres::PgStore::drop_schema(test_services::STORE_URL, &namespace).await;
}

/// Runs `horizon keys list` against `store_url` (it connects and migrates
/// like `serve` does), killed if it runs for more than 60 s.
fn keys_list(store_url: &str, namespace: &str) -> (bool, String) {
    let mut child = horizon()
        .args([
            "keys",
            "list",
            "--store",
            store_url,
            "--namespace",
            namespace,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("horizon keys list kept retrying against {store_url}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[tokio::test]
async fn postgres_sslmode_is_honoured_never_downgraded() {
    let test = "postgres_sslmode_is_honoured_never_downgraded";
    if !test_services::available_or_skip(test, &[test_services::POSTGRES]) {
        return;
    }
    let namespace = format!("tlspg{}", std::process::id());
    let base = test_services::STORE_URL;
    // The shared PostgreSQL has ssl=on (with a certificate our CA did not
    // sign): require negotiates TLS...
    let (ok, text) = keys_list(&format!("{base}?sslmode=require"), &namespace);
    if !ok && text.contains("does not support SSL") {
        test_services::skip(test, "the shared PostgreSQL has ssl=off");
        return;
    }
    assert!(ok, "sslmode=require: {text}");
    // ...and verify-full checks the certificate: the server's is for
    // `localhost`, so reached as 127.0.0.1 it does not verify, whatever CA
    // is trusted. That is a startup error at once (not a retry loop, not
    // plaintext).
    let pki = pki();
    let url = format!(
        "postgres://postgres@127.0.0.1:5432/test?sslmode=verify-full&sslrootcert={}",
        pki.ca.display()
    );
    let (ok, text) = keys_list(&url, &namespace);
    assert!(
        !ok,
        "verify-full accepted a certificate for another name: {text}"
    );
    assert!(text.contains("TLS"), "{text}");
    let _ = store::postgres::PgStore::drop_schema(base, &namespace).await;
}

/// `sslmode=verify-full` against a private PostgreSQL (never the shared one)
/// with `ssl=on`, a certificate for `localhost` signed by a CA the test made,
/// and TCP connections admitted over TLS only: the right CA and host name
/// connect; another CA, or the same server reached by a name its
/// certificate does not carry, is a startup error.
#[test]
fn postgres_verify_full_connects_to_a_tls_server_and_refuses_a_wrong_ca_or_host() {
    let test = "postgres_verify_full_connects_to_a_tls_server_and_refuses_a_wrong_ca_or_host";
    let pki = pki_for(&["localhost"]);
    let tls = test_services::postgres::ServerTls {
        cert_pem: pki.cert_pem.clone(),
        key_pem: pki.key_pem.clone(),
    };
    let Some(pg) = test_services::postgres::PrivatePostgres::start_with_tls(test, &tls) else {
        return;
    };
    let url = |host: &str, ca: &Path| {
        format!(
            "postgres://postgres@{host}:{}/postgres?sslmode=verify-full&sslrootcert={}",
            pg.port(),
            ca.display()
        )
    };
    let (ok, text) = keys_list(&url("localhost", &pki.ca), "tlsprivate");
    assert!(ok, "verify-full with the server's CA and name: {text}");

    let other = pki_for(&["localhost"]);
    let (ok, text) = keys_list(&url("localhost", &other.ca), "tlsprivate");
    assert!(
        !ok,
        "verify-full trusted a certificate of another CA: {text}"
    );
    assert!(text.contains("TLS"), "{text}");
    eprintln!(
        "another CA: {}",
        text.lines().take(4).collect::<Vec<_>>().join(" ")
    );

    let (ok, text) = keys_list(&url("127.0.0.1", &pki.ca), "tlsprivate");
    assert!(
        !ok,
        "verify-full accepted a certificate for another host name: {text}"
    );
    assert!(text.contains("TLS"), "{text}");
    eprintln!(
        "another host name: {}",
        text.lines().take(4).collect::<Vec<_>>().join(" ")
    );
}
