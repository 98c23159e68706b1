//! The assistant's writes, grouped. On SQLite every commit waits for the disk (synchronous=FULL:
//! a few milliseconds here), and a turn used to commit twice (its messages, then its timeline
//! event), so at a couple of hundred messages a second the one writer connection could not keep
//! up and replies queued for seconds. Now the turns waiting at a moment share one transaction
//! (group commit: each turn still answers only once its messages are durable), and the timeline
//! events are appended in batches in the background, off the request path.

use tailor_assistant::store::{self as chat_store, ConversationRow};
use tailor_core::Event;
use tailor_store::Db;
use tailor_stream::{EventLog, Source};
use tokio::sync::{mpsc, oneshot, OwnedMutexGuard};

use crate::EngineError;

/// Most turns in one transaction.
const MAX_TURNS: usize = 64;
/// Most timeline events in one append.
const MAX_EVENTS: usize = 256;

/// A message to append to a conversation.
pub(crate) struct NewMessage {
    /// shopper, assistant, agent or system.
    pub role: &'static str,
    pub text: String,
    /// The structured reply, as JSON.
    pub reply: Option<String>,
    pub at: i64,
}

/// One turn's writes: its messages, then the conversation row as the turn left it.
struct TurnWrite {
    row: ConversationRow,
    messages: Vec<NewMessage>,
    /// The conversation's turn lock, held until the turn is durable so the next turn reads it.
    _turn: OwnedMutexGuard<()>,
    done: oneshot::Sender<Result<Vec<i64>, EngineError>>,
}

/// The grouped writers, started on first use.
#[derive(Default)]
pub(crate) struct Writers {
    turns: std::sync::OnceLock<mpsc::UnboundedSender<TurnWrite>>,
    events: std::sync::OnceLock<mpsc::UnboundedSender<Event>>,
}

fn stopped() -> EngineError {
    EngineError::Io("the assistant's writer stopped".into())
}

impl Writers {
    /// Appends `messages` to the conversation and saves `row`, durably, in a transaction shared
    /// with the other turns waiting now; returns the messages' positions. `turn` (the
    /// conversation's turn lock) is released once the turn is committed.
    pub(crate) async fn turn(
        &self,
        db: &Db,
        row: ConversationRow,
        messages: Vec<NewMessage>,
        turn: OwnedMutexGuard<()>,
    ) -> Result<Vec<i64>, EngineError> {
        let tx = self.turns.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(write_turns(db.clone(), rx));
            tx
        });
        let (done, wait) = oneshot::channel();
        tx.send(TurnWrite { row, messages, _turn: turn, done }).map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())?
    }

    /// Puts an event on the timeline in the background, batched with the others of the moment.
    pub(crate) fn event(&self, log: &EventLog, event: Event) {
        let tx = self.events.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(write_events(log.clone(), rx));
            tx
        });
        if tx.send(event).is_err() {
            tracing::warn!("an assistant turn did not reach the timeline: its writer stopped");
        }
    }
}

async fn write_turns(db: Db, mut rx: mpsc::UnboundedReceiver<TurnWrite>) {
    let mut batch = Vec::with_capacity(MAX_TURNS);
    while rx.recv_many(&mut batch, MAX_TURNS).await > 0 {
        let writes = std::mem::take(&mut batch);
        match commit(&db, &writes).await {
            Ok(all) => {
                for (w, ns) in writes.into_iter().zip(all) {
                    let _ = w.done.send(Ok(ns));
                }
            }
            // One bad turn (its conversation erased meanwhile) must not fail the others: each
            // is tried alone.
            Err(e) if writes.len() == 1 => {
                if let Some(w) = writes.into_iter().next() {
                    let _ = w.done.send(Err(e));
                }
            }
            Err(_) => {
                for w in writes {
                    let result = commit(&db, std::slice::from_ref(&w)).await.map(|mut v| v.pop().unwrap_or_default());
                    let _ = w.done.send(result);
                }
            }
        }
    }
}

/// The turns' writes in one transaction; per turn, the positions of its messages.
async fn commit(db: &Db, writes: &[TurnWrite]) -> Result<Vec<Vec<i64>>, EngineError> {
    let mut tx = db.writer().begin().await?;
    let mut all = Vec::with_capacity(writes.len());
    for w in writes {
        let mut ns = Vec::with_capacity(w.messages.len());
        for m in &w.messages {
            ns.push(chat_store::append(&mut tx, &w.row.id, m.role, &m.text, m.reply.as_deref(), m.at).await?);
        }
        chat_store::save(&mut tx, &w.row).await?;
        all.push(ns);
    }
    tx.commit().await?;
    Ok(all)
}

async fn write_events(log: EventLog, mut rx: mpsc::UnboundedReceiver<Event>) {
    let source = Source { name: "assistant".into(), trusted: false };
    let mut batch = Vec::with_capacity(MAX_EVENTS);
    while rx.recv_many(&mut batch, MAX_EVENTS).await > 0 {
        if let Err(e) = log.append(&batch, &source).await {
            tracing::warn!(error = %e, events = batch.len(), "assistant turns did not reach the timeline");
        }
        batch.clear();
    }
}
