//! Channels behind one small trait: e-mail over SMTP (lettre: HTML and text parts,
//! `List-Unsubscribe` with one-click unsubscribe, RFC 8058), and SMS/push through HMAC-signed
//! webhooks. A channel says whether a failure may pass on a retry; the scheduler retries with
//! backoff and dead-letters, so one slow endpoint never blocks other sends.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use hmac::{Hmac, Mac};
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::Message;
use sha2::{Digest, Sha256};

/// One message ready for a channel.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The send's idempotency key (it also names the e-mail's Message-ID and the webhook's
    /// `Idempotency-Key`, so a provider can drop a repeat after a crash).
    pub key: String,
    /// The address: an e-mail address, a phone number or a device/customer id.
    pub to: String,
    /// Subject (e-mail) or title (push).
    pub subject: Option<String>,
    /// HTML part (e-mail).
    pub html: Option<String>,
    /// Text part, SMS text or push body.
    pub text: String,
    /// The one-click unsubscribe URL (e-mail).
    pub unsubscribe_url: Option<String>,
}

/// Why a channel did not take a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// It may pass later (a timeout, a 5xx, a refused connection).
    #[error("transient: {0}")]
    Transient(String),
    /// It will never pass (a bad address, a 4xx).
    #[error("permanent: {0}")]
    Permanent(String),
}

/// A future a channel returns.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ChannelError>> + Send + 'a>>;

/// A way to reach a customer.
pub trait Channel: Send + Sync {
    /// Hands one message over; Ok once the other side accepted it.
    fn send<'a>(&'a self, m: &'a Outgoing) -> SendFuture<'a>;
}

/// The Message-ID of a send: stable for its key, so a repeat is recognisable.
pub fn message_id(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("<{}@tailor>", hex::encode(&digest[..16]))
}

/// E-mail over SMTP, on a small pool of kept-open connections with TCP_NODELAY (without it,
/// Nagle's algorithm and the server's delayed ACK cost 40 ms per message).
pub struct Smtp {
    host: String,
    port: u16,
    from: Mailbox,
    hello: ClientId,
    idle: tokio::sync::Mutex<Vec<AsyncSmtpConnection>>,
}

/// Connections kept open per SMTP channel.
const IDLE_CONNECTIONS: usize = 8;
/// The longest an SMTP exchange may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

impl Smtp {
    /// A plain SMTP relay at `host:port` sending as `from` (local sinks and relays; TLS
    /// relays come with a TLS feature later).
    pub fn new(host: &str, port: u16, from: &str) -> Result<Smtp, String> {
        let from: Mailbox = from.parse().map_err(|e| format!("the sender address is not valid: {e}"))?;
        Ok(Smtp {
            host: host.to_string(),
            port,
            from,
            hello: ClientId::Domain("localhost".into()),
            idle: tokio::sync::Mutex::new(Vec::new()),
        })
    }

    async fn connection(&self) -> Result<AsyncSmtpConnection, ChannelError> {
        while let Some(mut c) = self.idle.lock().await.pop() {
            if !c.has_broken() {
                return Ok(c);
            }
            c.abort().await;
        }
        let connect = async {
            let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(|e| ChannelError::Transient(format!("cannot reach the SMTP server: {e}")))?;
            stream.set_nodelay(true).map_err(|e| ChannelError::Transient(e.to_string()))?;
            AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello)
                .await
                .map_err(|e| ChannelError::Transient(format!("the SMTP server refused the session: {e}")))
        };
        tokio::time::timeout(SMTP_TIMEOUT, connect)
            .await
            .map_err(|_| ChannelError::Transient("the SMTP server did not answer in time".into()))?
    }

    fn message(&self, m: &Outgoing) -> Result<Message, ChannelError> {
        let to: Mailbox = m.to.parse().map_err(|e| ChannelError::Permanent(format!("not an e-mail address: {e}")))?;
        let mut b = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone().unwrap_or_default())
            .message_id(Some(message_id(&m.key)));
        if let Some(url) = &m.unsubscribe_url {
            b = b
                .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("List-Unsubscribe"), format!("<{url}>")))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".into(),
                ));
        }
        let part = match &m.html {
            Some(html) => MultiPart::alternative_plain_html(m.text.clone(), html.clone()),
            None => MultiPart::mixed().singlepart(lettre::message::SinglePart::plain(m.text.clone())),
        };
        b.multipart(part).map_err(|e| ChannelError::Permanent(format!("cannot build the message: {e}")))
    }
}

impl Channel for Smtp {
    fn send<'a>(&'a self, m: &'a Outgoing) -> SendFuture<'a> {
        Box::pin(async move {
            let msg = self.message(m)?;
            let mut conn = self.connection().await?;
            let sent = tokio::time::timeout(SMTP_TIMEOUT, conn.send(msg.envelope(), &msg.formatted())).await;
            match sent {
                Ok(Ok(_)) => {
                    let mut idle = self.idle.lock().await;
                    if idle.len() < IDLE_CONNECTIONS {
                        idle.push(conn);
                    }
                    Ok(())
                }
                Ok(Err(e)) if e.is_permanent() => {
                    // A fresh session for the next message: no state of this one carries over.
                    conn.abort().await;
                    Err(ChannelError::Permanent(e.to_string()))
                }
                Ok(Err(e)) => {
                    conn.abort().await;
                    Err(ChannelError::Transient(e.to_string()))
                }
                Err(_) => Err(ChannelError::Transient("the SMTP server did not answer in time".into())),
            }
        })
    }
}

/// SMS or push through a webhook: a JSON POST signed with HMAC-SHA256 of the body
/// (`X-Tailor-Signature: sha256=<hex>`), carrying the send's `Idempotency-Key`.
pub struct Webhook {
    url: String,
    secret: Vec<u8>,
    http: reqwest::Client,
    kind: &'static str,
}

impl Webhook {
    /// A webhook channel of `kind` (`sms` or `push`) posting to `url`, signed with `secret`;
    /// a call taking longer than `timeout` counts as failed (and is retried).
    pub fn new(kind: &'static str, url: &str, secret: &[u8], timeout: Duration) -> Result<Webhook, String> {
        crate::journey::check_url(url)?;
        let http = reqwest::Client::builder().timeout(timeout).build().map_err(|e| e.to_string())?;
        Ok(Webhook { url: url.to_string(), secret: secret.to_vec(), http, kind })
    }
}

/// The signature of `body` under `secret`, as the `X-Tailor-Signature` header carries it.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length; new_from_slice cannot fail for it.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).unwrap_or_else(|_| unreachable!());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl Channel for Webhook {
    fn send<'a>(&'a self, m: &'a Outgoing) -> SendFuture<'a> {
        Box::pin(async move {
            let body = serde_json::json!({
                "channel": self.kind, "to": m.to, "title": m.subject, "text": m.text, "idempotencyKey": m.key,
            })
            .to_string();
            let res = self
                .http
                .post(&self.url)
                .header("content-type", "application/json")
                .header("idempotency-key", &m.key)
                .header("x-tailor-signature", signature(&self.secret, body.as_bytes()))
                .body(body)
                .send()
                .await
                .map_err(|e| ChannelError::Transient(format!("the webhook did not answer: {e}")))?;
            let status = res.status();
            if status.is_success() {
                Ok(())
            } else if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
                Err(ChannelError::Transient(format!("the webhook answered {status}")))
            } else {
                Err(ChannelError::Permanent(format!("the webhook answered {status}")))
            }
        })
    }
}
