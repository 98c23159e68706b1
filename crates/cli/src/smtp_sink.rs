//! A small SMTP server in the benchmark's own process: it accepts every message (EHLO, MAIL,
//! RCPT, DATA, RSET, NOOP, QUIT; commands may come pipelined) and keeps, per message, its
//! Message-ID and when its final `250` was written. The Python sink (`scripts/smtp-sink.sh`,
//! aiosmtpd) tops out near a thousand messages a second on one core, below what is measured
//! here; this one keeps up, and the raw baseline is sent to the same server in the same run.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One delivered message.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// Its Message-ID header, as sent.
    pub message_id: String,
    /// When it was accepted (unix ms).
    pub at_ms: i64,
    /// Its size in bytes.
    pub bytes: usize,
}

/// A running sink; stopped when dropped.
pub struct Sink {
    /// Its port on 127.0.0.1.
    pub port: u16,
    delivered: Arc<Mutex<Vec<Delivered>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Sink {
    /// Starts a sink on a free port.
    pub async fn start() -> std::io::Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let delivered: Arc<Mutex<Vec<Delivered>>> = Arc::default();
        let store = delivered.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let store = store.clone();
                tokio::spawn(async move {
                    let _ = session(stream, store).await;
                });
            }
        });
        Ok(Sink { port, delivered, task })
    }

    /// How many messages were delivered.
    pub fn count(&self) -> usize {
        self.delivered.lock().map(|d| d.len()).unwrap_or(0)
    }

    /// Takes the delivered messages out (the count starts again from 0).
    pub fn take(&self) -> Vec<Delivered> {
        self.delivered.lock().map(|mut d| std::mem::take(&mut *d)).unwrap_or_default()
    }
}

async fn session(stream: tokio::net::TcpStream, store: Arc<Mutex<Vec<Delivered>>>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    write.write_all(b"220 bench-sink ESMTP\r\n").await?;
    let mut line = String::new();
    loop {
        line.clear();
        if read.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-bench-sink\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" | "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            "DATA" => {
                write.write_all(b"354 go ahead\r\n").await?;
                let mut message_id = String::new();
                let mut headers = true;
                let mut bytes = 0usize;
                loop {
                    line.clear();
                    if read.read_line(&mut line).await? == 0 {
                        // The client went away mid-message: nothing is delivered.
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    bytes = bytes.saturating_add(line.len());
                    if headers {
                        if line == "\r\n" || line == "\n" {
                            headers = false;
                        } else if line.len() > 11 && line[..11].eq_ignore_ascii_case("message-id:") {
                            message_id = line[11..].trim().to_string();
                        }
                    }
                }
                let at_ms = tailor_core::time::now_millis();
                if let Ok(mut d) = store.lock() {
                    d.push(Delivered { message_id, at_ms, bytes });
                }
                b"250 OK queued\r\n"
            }
            _ => b"502 not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}
