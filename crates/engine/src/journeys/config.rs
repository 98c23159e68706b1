//! Where messages go: the channels configured at run time, the brand the templates speak for,
//! and the public address the unsubscribe links point to.

use std::sync::Arc;

use tailor_campaigns::channels::Channel;

/// The channels and brand a running engine sends with.
#[derive(Clone, Default)]
pub struct Channels {
    /// E-mail over SMTP; none: e-mail sends are skipped and recorded so.
    pub email: Option<Arc<dyn Channel>>,
    /// The SMS webhook.
    pub sms: Option<Arc<dyn Channel>>,
    /// The push webhook.
    pub push: Option<Arc<dyn Channel>>,
    /// The brand's name in messages.
    pub brand_name: String,
    /// The shop's address in messages.
    pub brand_url: String,
    /// Tailor's public base URL (unsubscribe links), e.g. `https://tailor.shop.example`.
    pub public_url: String,
}

impl std::fmt::Debug for Channels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channels")
            .field("email", &self.email.is_some())
            .field("sms", &self.sms.is_some())
            .field("push", &self.push.is_some())
            .field("brand_name", &self.brand_name)
            .finish()
    }
}

/// How to reach the SMTP server and as whom to send.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
    /// The sender, e.g. `Shop <shop@example.com>`.
    pub from: String,
}
