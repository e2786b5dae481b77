//! A local HTTPS server of client metadata documents for the CIMD tests: TLS with the test
//! fixture certificate (tests/fixtures/cimd, for localhost, 127.0.0.1 and ::1), one canned
//! answer per path (status, headers, body, a delay), and a count of the requests per path.
//! Minimal HTTP/1.1 by hand: one request per connection, then close.
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The fixture CA that signed the server certificate.
pub const CA_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/cimd/ca.pem");

/// One canned answer.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Wait this long before answering.
    pub delay: Duration,
    /// Send no `Content-Length` (the body ends when the connection closes).
    pub hide_length: bool,
}

impl Answer {
    /// 200 with a JSON body and an optional `Cache-Control`.
    pub fn json(body: &serde_json::Value, cache_control: Option<&str>) -> Self {
        let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
        if let Some(c) = cache_control {
            headers.push(("Cache-Control".to_owned(), c.to_owned()));
        }
        Self { status: 200, headers, body: serde_json::to_vec(body).unwrap_or_default(), ..Self::default() }
    }
}

/// The running server.
#[derive(Clone)]
pub struct DocServer {
    /// `127.0.0.1:<port>`.
    pub port: u16,
    answers: Arc<Mutex<HashMap<String, Answer>>>,
    hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl DocServer {
    /// Start it on a free port of 127.0.0.1 (it stops with the runtime).
    ///
    /// # Errors
    /// The fixtures cannot be read or the port bound.
    pub async fn start() -> Result<Self> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/cimd");
        let cert = pem::parse(std::fs::read(format!("{dir}/server.pem"))?).context("server.pem")?;
        let key = pem::parse(std::fs::read(format!("{dir}/server.key"))?).context("server.key")?;
        let certs = vec![rustls::pki_types::CertificateDer::from(cert.into_contents())];
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.into_contents().into());
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let server = Self { port: listener.local_addr()?.port(), answers: Arc::default(), hits: Arc::default() };
        let s = server.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, s) = (acceptor.clone(), s.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = s.serve(tls).await;
                    }
                });
            }
        });
        Ok(server)
    }

    /// `https://localhost:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    /// Answer `path` with `answer` from now on.
    pub fn set(&self, path: &str, answer: Answer) {
        self.answers.lock().map(|mut a| a.insert(path.to_owned(), answer)).ok();
    }

    /// How many requests `path` received.
    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().map(|h| h.get(path).copied().unwrap_or(0)).unwrap_or(0)
    }

    async fn serve(&self, mut tls: tokio_rustls::server::TlsStream<tokio::net::TcpStream>) -> Result<()> {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 2048];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 16 * 1024 {
            let n = tls.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let head = String::from_utf8_lossy(&buf);
        let path = head.split(' ').nth(1).unwrap_or("/").to_owned();
        self.hits.lock().map(|mut h| *h.entry(path.clone()).or_default() += 1).ok();
        let answer = self.answers.lock().ok().and_then(|a| a.get(&path).cloned()).unwrap_or(Answer {
            status: 404,
            body: b"not found".to_vec(),
            ..Answer::default()
        });
        tokio::time::sleep(answer.delay).await;
        let mut out = format!("HTTP/1.1 {} X\r\nConnection: close\r\n", answer.status);
        if !answer.hide_length {
            out.push_str(&format!("Content-Length: {}\r\n", answer.body.len()));
        }
        for (k, v) in &answer.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        tls.write_all(out.as_bytes()).await?;
        tls.write_all(&answer.body).await?;
        tls.shutdown().await?;
        Ok(())
    }
}
