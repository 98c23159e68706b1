//! Where journeys send: the SMTP server, the sender, the brand and Tailor's public address
//! (for unsubscribe links), from flags or `TAILOR__*` variables.

use anyhow::{Context, Result};
use clap::Args;
use tailor_engine::{Channels, Engine, SmtpConfig};

/// Mail settings of `serve`.
#[derive(Args, Clone, Debug)]
pub struct MailArgs {
    /// The SMTP server journeys send e-mail through, HOST:PORT (none: e-mail sends are skipped
    /// and recorded so).
    #[arg(long, env = "TAILOR__SMTP")]
    smtp: Option<String>,
    /// The sender of journey e-mail.
    #[arg(long, env = "TAILOR__MAIL_FROM", default_value = "Shop <shop@localhost>")]
    mail_from: String,
    /// The brand's name in messages.
    #[arg(long, env = "TAILOR__BRAND_NAME", default_value = "Tailor")]
    brand_name: String,
    /// The shop's address in messages.
    #[arg(long, env = "TAILOR__BRAND_URL", default_value = "http://127.0.0.1:8080")]
    brand_url: String,
    /// Tailor's public base URL, for unsubscribe links.
    #[arg(long, env = "TAILOR__PUBLIC_URL", default_value = "http://127.0.0.1:8080")]
    public_url: String,
}

impl MailArgs {
    /// Configures the engine's channels.
    pub fn apply(&self, engine: &Engine) -> Result<()> {
        let email = match &self.smtp {
            None => None,
            Some(addr) => {
                let (host, port) = addr.rsplit_once(':').context("--smtp is HOST:PORT, e.g. 127.0.0.1:2525")?;
                let port: u16 = port.parse().context("--smtp's port is a number, e.g. 2525")?;
                let config = SmtpConfig { host: host.to_string(), port, from: self.mail_from.clone() };
                Some(Engine::smtp_channel(&config).map_err(|e| anyhow::anyhow!("--mail-from: {e}"))?)
            }
        };
        engine.set_channels(Channels {
            email,
            brand_name: self.brand_name.clone(),
            brand_url: self.brand_url.clone(),
            public_url: self.public_url.clone(),
            ..Channels::default()
        });
        Ok(())
    }
}
