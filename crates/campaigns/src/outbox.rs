//! A recorded channel: messages are kept in memory, in order, instead of being handed to a
//! provider. For SMS and push where no gateway is configured (demos, tests) — the sends are
//! still decided, recorded and counted like any other; only the last hop is missing.

use std::sync::Mutex;

use crate::channels::{Channel, Outgoing, SendFuture};

/// An in-memory outbox.
#[derive(Default)]
pub struct Outbox {
    sent: Mutex<Vec<Outgoing>>,
}

impl Outbox {
    /// An empty outbox.
    pub fn new() -> Outbox {
        Outbox::default()
    }

    /// Every message handed over so far, oldest first.
    pub fn messages(&self) -> Vec<Outgoing> {
        self.sent.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Channel for Outbox {
    fn send<'a>(&'a self, m: &'a Outgoing) -> SendFuture<'a> {
        Box::pin(async move {
            if let Ok(mut s) = self.sent.lock() {
                // A repeat of the same key (a crash between send and settle) is dropped, as a
                // provider honouring the idempotency key would.
                if !s.iter().any(|x| x.key == m.key) {
                    s.push(m.clone());
                }
            }
            Ok(())
        })
    }
}
