//! The shopping assistant through the engine: conversations (who they belong to, their token,
//! their context), turns (understand → decide → run a tool over the engine → reply), hand-off
//! to a person with the whole context, the agents' inbox and replies, and the retailer's
//! knowledge base. Dialogue decides (`tailor_assistant::dialogue`); this layer stores and runs
//! tools. Message text is personal data: it is never logged above debug level.

mod tools;
mod writer;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tailor_assistant::dialogue::{self, ChatChannel, Context, Reply, Step, Turn};
use tailor_assistant::store::{self as chat_store, ConversationRow, MessageRow};
use tailor_assistant::understanding::{shipped_examples, UnderstandingConfig, UnderstandingModel, MAX_MESSAGE_CHARS};
use tailor_assistant::{Understanding, Understood};
use tailor_core::time::{format_millis, now_millis};
use tailor_core::{FieldError, Identifier, IdentifierKind};
use tokio::sync::broadcast;

pub use tools::{BROWSER_HOLD_MAX_UNITS, PICKUP_HOLD_MS};

use crate::{Engine, EngineError};
use writer::NewMessage;

/// A conversation's state: the bot answers, or a person has it.
pub const STATE_BOT: &str = "bot";
/// A person has the conversation; the bot is silent until they close it.
pub const STATE_HANDOFF: &str = "handoff";

/// Who sends a turn: a browser (the write key, which every visitor's page holds) or the shop's own
/// servers, and from which client address. What a browser's turn may hold is capped.
#[derive(Debug, Clone, Copy, Default)]
pub struct Caller {
    /// Sent with the browser's write key.
    pub browser: bool,
    /// The client address, when known.
    pub client: Option<IpAddr>,
}

/// The assistant's in-memory state.
#[derive(Default)]
pub(crate) struct AssistantState {
    /// Caps on the holds browsers' turns make.
    holds: tools::HoldCaps,
    understanding: tokio::sync::OnceCell<Understanding>,
    /// One turn at a time per conversation (on this node).
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// (conversation id, message position) of every new message, for live feeds.
    updates: std::sync::OnceLock<broadcast::Sender<(String, i64)>>,
    /// Turns committed together, timeline events appended in batches.
    writers: writer::Writers,
}

impl AssistantState {
    fn updates(&self) -> &broadcast::Sender<(String, i64)> {
        self.updates.get_or_init(|| broadcast::channel(1024).0)
    }
}

/// How a conversation starts.
#[derive(Debug, Clone, Default)]
pub struct StartConversation {
    /// The shop's userId of a signed-in shopper (only keys that speak for the shop may say so).
    pub user_id: Option<String>,
    /// The visitor's anonymousId.
    pub anonymous_id: Option<String>,
    /// web, sms or kiosk.
    pub channel: ChatChannel,
    /// The store the shopper is at or shops at.
    pub store_id: Option<String>,
}

/// A conversation as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConversationView {
    /// Its id.
    pub id: String,
    /// The signed-in shopper's userId.
    pub user_id: Option<String>,
    /// The visitor's anonymousId.
    pub anonymous_id: Option<String>,
    /// web, sms or kiosk.
    pub channel: String,
    /// The store in context.
    pub store_id: Option<String>,
    /// `bot` or `handoff` (a person has it; the bot is silent).
    pub state: String,
    /// Why it was handed off: requested, low_confidence or sensitive.
    pub handoff_reason: Option<String>,
    /// When it was handed off.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub handoff_at: Option<String>,
    /// When it started.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    /// Last change.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: String,
}

fn view(c: &ConversationRow) -> ConversationView {
    ConversationView {
        id: c.id.clone(),
        user_id: c.user_id.clone(),
        anonymous_id: c.anonymous_id.clone(),
        channel: c.channel.clone(),
        store_id: c.store_id.clone(),
        state: c.state.clone(),
        handoff_reason: c.handoff_reason.clone(),
        handoff_at: c.handoff_at.map(format_millis),
        created_at: format_millis(c.created_at),
        updated_at: format_millis(c.updated_at),
    }
}

/// A new conversation and its token: the credential a browser presents with the write key to
/// continue it (shown once; stored hashed).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StartedConversation {
    /// The conversation.
    pub conversation: ConversationView,
    /// Its token.
    pub token: String,
}

/// A message of a conversation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    /// Position in the conversation, from 1 (the cursor of live feeds).
    pub n: i64,
    /// `shopper`, `assistant`, `agent` or `system`.
    pub role: String,
    /// The text.
    pub text: String,
    /// The assistant's structured reply: cards, quick replies, facts with sources, explanation.
    #[schema(value_type = Option<Object>)]
    pub reply: Option<Value>,
    /// When.
    #[schema(value_type = String, format = DateTime)]
    pub at: String,
}

fn message_view(m: &MessageRow) -> MessageView {
    MessageView {
        n: m.n,
        role: m.role.clone(),
        text: m.text.clone(),
        reply: m.reply.as_deref().and_then(|r| serde_json::from_str(r).ok()),
        at: format_millis(m.at),
    }
}

/// What understanding made of a message.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnderstoodView {
    /// The intent, or null when out of scope.
    pub intent: Option<String>,
    /// Its confidence in [0, 1].
    pub confidence: f32,
    /// Whether the message was out of scope.
    pub out_of_scope: bool,
}

/// The answer to a shopper's message.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TurnView {
    /// The conversation after the turn.
    pub conversation: ConversationView,
    /// The shopper's message as stored.
    pub message: MessageView,
    /// The assistant's reply; null while a person has the conversation.
    pub reply: Option<MessageView>,
    /// What was understood (null while a person has the conversation).
    pub understood: Option<UnderstoodView>,
}

/// A handed-off conversation with everything a person needs to take it over.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InboxItem {
    /// The conversation.
    pub conversation: ConversationView,
    /// The last intent understood.
    pub intent: Option<String>,
    /// Slots and context (store, product in focus, offer waiting).
    #[schema(value_type = Object)]
    pub context: Value,
    /// Profile summary: id, traits, order count, spend, preferred store, consent.
    #[schema(value_type = Option<Object>)]
    pub profile: Option<Value>,
    /// The cart lines.
    #[schema(value_type = Vec<Object>)]
    pub cart: Vec<Value>,
    /// The newest orders.
    #[schema(value_type = Vec<Object>)]
    pub orders: Vec<Value>,
    /// The whole transcript, oldest first.
    pub transcript: Vec<MessageView>,
}

/// Longest agent name accepted.
const MAX_AGENT_CHARS: usize = 100;

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn new_token() -> String {
    // Two v4 UUIDs: 244 random bits from the OS generator, as API keys are made.
    format!("ct_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple())
}

/// Checks a message's text: 1 to [`MAX_MESSAGE_CHARS`] characters, not only spaces.
pub fn check_message(field: &str, text: &str) -> Result<(), EngineError> {
    if text.trim().is_empty() {
        return Err(EngineError::Invalid(FieldError::invalid(field, "a message needs some text")));
    }
    if text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(EngineError::Invalid(FieldError::invalid(
            field,
            format!("a message holds at most {MAX_MESSAGE_CHARS} characters"),
        )));
    }
    Ok(())
}

impl Engine {
    /// The understanding the assistant uses: the model file named by `TAILOR_ASSISTANT_MODEL`
    /// (with the sentence encoder when the model uses it and it is found), else the shipped
    /// retail set trained on n-grams at first use (a fraction of a second).
    pub async fn assistant_understanding(&self) -> Result<&Understanding, EngineError> {
        self.inner
            .assistant
            .understanding
            .get_or_try_init(|| async {
                tokio::task::spawn_blocking(load_understanding).await.map_err(|e| EngineError::Io(e.to_string()))?
            })
            .await
    }

    /// Starts a conversation.
    pub async fn start_conversation(&self, req: &StartConversation) -> Result<StartedConversation, EngineError> {
        for (field, v) in [("userId", &req.user_id), ("anonymousId", &req.anonymous_id), ("storeId", &req.store_id)] {
            if let Some(v) = v {
                tailor_core::text::check_id(field, v).map_err(EngineError::Invalid)?;
            }
        }
        let now = now_millis();
        let token = new_token();
        let context = Context { store: req.store_id.clone(), ..Context::default() };
        let row = ConversationRow {
            id: format!("cv_{}", uuid::Uuid::new_v4().simple()),
            user_id: req.user_id.clone(),
            anonymous_id: req.anonymous_id.clone(),
            channel: req.channel.as_str().to_string(),
            store_id: req.store_id.clone(),
            token_hash: hash(&token),
            state: STATE_BOT.into(),
            handoff_reason: None,
            handoff_at: None,
            context,
            created_at: now,
            updated_at: now,
        };
        let mut conn = self.db().writer().acquire().await?;
        chat_store::create(&mut conn, &row).await?;
        metrics::counter!("tailor_assistant_conversations_total").increment(1);
        Ok(StartedConversation { conversation: view(&row), token })
    }

    async fn conversation_row(&self, id: &str) -> Result<ConversationRow, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        chat_store::get(&mut conn, id).await?.ok_or_else(|| EngineError::not_found("conversation", id))
    }

    /// A conversation.
    pub async fn conversation(&self, id: &str) -> Result<ConversationView, EngineError> {
        Ok(view(&self.conversation_row(id).await?))
    }

    /// Whether `token` is the conversation's token (compared by hash).
    pub async fn conversation_token_ok(&self, id: &str, token: &str) -> Result<bool, EngineError> {
        let row = self.conversation_row(id).await?;
        Ok(row.token_hash == hash(token))
    }

    /// Messages after position `after`, oldest first, at most `limit`.
    pub async fn conversation_messages(
        &self,
        id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<MessageView>, EngineError> {
        let mut conn = self.db().reader().acquire().await?;
        chat_store::get(&mut conn, id).await?.ok_or_else(|| EngineError::not_found("conversation", id))?;
        Ok(chat_store::messages(&mut conn, id, after, limit).await?.iter().map(message_view).collect())
    }

    /// New messages of every conversation from now on: (conversation id, position).
    pub fn conversation_updates(&self) -> broadcast::Receiver<(String, i64)> {
        self.inner.assistant.updates().subscribe()
    }

    fn turn_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.inner.assistant.turns.lock().unwrap_or_else(|p| p.into_inner());
        // Locks nobody holds are dropped, so the map stays as large as the turns in flight.
        map.retain(|_, l| Arc::strong_count(l) > 1);
        map.entry(id.to_string()).or_default().clone()
    }

    /// The root profile of the conversation's shopper, when one exists yet.
    async fn profile_of(&self, c: &ConversationRow) -> Result<Option<String>, EngineError> {
        let id = match (&c.user_id, &c.anonymous_id) {
            (Some(u), _) => Identifier::parse(IdentifierKind::UserId, u, "userId"),
            (None, Some(a)) => Identifier::parse(IdentifierKind::AnonymousId, a, "anonymousId"),
            (None, None) => return Ok(None),
        };
        match id {
            Ok(id) => self.lookup(&id).await,
            Err(_) => Ok(None),
        }
    }

    /// One shopper turn: stored, understood, decided, answered from the engine's facts. While a
    /// person has the conversation the message is stored for them and the bot says nothing.
    /// `caller` says whether a browser sent it (its holds are capped) and from where.
    pub async fn converse(&self, id: &str, text: &str, caller: Caller) -> Result<TurnView, EngineError> {
        check_message("text", text)?;
        let turn_lock = self.turn_lock(id).lock_owned().await;
        let mut row = self.conversation_row(id).await?;
        let now = now_millis();
        if row.state == STATE_HANDOFF {
            row.updated_at = now;
            let shopper = NewMessage { role: "shopper", text: text.into(), reply: None, at: now };
            let ns = self.inner.assistant.writers.turn(self.db(), row.clone(), vec![shopper], turn_lock).await?;
            let n = ns.first().copied().unwrap_or_default();
            self.notify(id, n);
            let message =
                MessageView { n, role: "shopper".into(), text: text.into(), reply: None, at: format_millis(now) };
            return Ok(TurnView { conversation: view(&row), message, reply: None, understood: None });
        }
        let understanding = self.assistant_understanding().await?;
        let understood = understand(understanding, text).await?;
        let channel = ChatChannel::parse(&row.channel).unwrap_or_default();
        let turn = Turn { text, understood: &understood, signed_in: row.user_id.is_some(), channel };
        let mut ctx = row.context.clone();
        let step = dialogue::decide(&mut ctx, &turn);
        let mut reply = match step {
            Step::Say(r) => dialogue::finish_say(&mut ctx, r, channel),
            Step::Handoff(reason, r) => {
                row.state = STATE_HANDOFF.into();
                row.handoff_reason = Some(reason.as_str().into());
                row.handoff_at = Some(now);
                metrics::counter!("tailor_assistant_handoffs_total", "reason" => reason.as_str()).increment(1);
                r
            }
            Step::Run(tool) => {
                let who = tools::Who {
                    conversation: id,
                    turn_key: format!("{id}-{}", row.updated_at),
                    profile: self.profile_of(&row).await?,
                    user_id: row.user_id.as_deref(),
                    anonymous_id: row.anonymous_id.as_deref(),
                    channel,
                    store: ctx.store.clone(),
                    caller,
                };
                let facts = self.run_tool(&who, &tool).await?;
                dialogue::respond(&mut ctx, &tool, facts, channel)
            }
        };
        explain(&mut reply, &understood);
        row.context = ctx;
        row.store_id = row.context.store.clone().or(row.store_id);
        row.updated_at = now;
        let reply_json = serde_json::to_string(&reply).unwrap_or_default();
        let messages = vec![
            NewMessage { role: "shopper", text: text.into(), reply: None, at: now },
            NewMessage { role: "assistant", text: reply.text.clone(), reply: Some(reply_json), at: now },
        ];
        let ns = self.inner.assistant.writers.turn(self.db(), row.clone(), messages, turn_lock).await?;
        let (n, m) = match ns.as_slice() {
            [n, m] => (*n, *m),
            _ => return Err(EngineError::Io("a turn's messages were not stored".into())),
        };
        self.notify(id, m);
        self.record_turn(&row, &understood, row.state == STATE_HANDOFF, m);
        metrics::counter!("tailor_assistant_turns_total").increment(1);
        tracing::debug!(conversation = id, intent = ?understood.intent, "assistant turn");
        Ok(TurnView {
            conversation: view(&row),
            message: MessageView { n, role: "shopper".into(), text: text.into(), reply: None, at: format_millis(now) },
            reply: Some(MessageView {
                n: m,
                role: "assistant".into(),
                text: reply.text.clone(),
                reply: serde_json::to_value(&reply).ok(),
                at: format_millis(now),
            }),
            understood: Some(UnderstoodView {
                intent: understood.intent.clone(),
                confidence: understood.confidence,
                out_of_scope: understood.out_of_scope,
            }),
        })
    }

    /// Puts the turn on the shopper's timeline as an `Assistant Message` event on channel `chat`:
    /// what was asked (the intent), never the words (the transcript keeps those). Appended in the
    /// background with the other turns' events so the reply does not wait; a failure is logged,
    /// the turn itself is stored.
    fn record_turn(&self, row: &ConversationRow, understood: &Understood, handed_off: bool, n: i64) {
        let mut raw = serde_json::json!({
            "type": "track",
            "event": "Assistant Message",
            "messageId": format!("assistant-turn-{}-{n}", row.id),
            "properties": {
                "conversation_id": row.id,
                "intent": understood.intent,
                "out_of_scope": understood.out_of_scope,
                "handed_off": handed_off,
                "conversation_channel": row.channel,
            },
            "context": {"channel": "chat"},
        });
        match (&row.user_id, &row.anonymous_id) {
            (Some(u), _) => raw["userId"] = serde_json::json!(u),
            (None, Some(a)) => raw["anonymousId"] = serde_json::json!(a),
            (None, None) => return,
        }
        match tailor_core::Event::parse(raw, Some(tailor_core::EventKind::Track), now_millis()) {
            Ok(event) => self.inner.assistant.writers.event(&self.inner.log, event),
            Err(e) => tracing::warn!(field = %e.field, "an assistant turn could not become an event"),
        }
    }

    fn notify(&self, id: &str, n: i64) {
        // No subscriber is fine: nobody is watching.
        let _ = self.inner.assistant.updates().send((id.to_string(), n));
    }

    /// Hands a conversation to a person (as the shopper asking would).
    pub async fn hand_off(&self, id: &str, reason: &str) -> Result<ConversationView, EngineError> {
        let lock = self.turn_lock(id);
        let _turn = lock.lock().await;
        let mut row = self.conversation_row(id).await?;
        if row.state != STATE_HANDOFF {
            let now = now_millis();
            row.state = STATE_HANDOFF.into();
            row.handoff_reason = Some(reason.into());
            row.handoff_at = Some(now);
            row.updated_at = now;
            let mut conn = self.db().writer().acquire().await?;
            chat_store::save(&mut conn, &row).await?;
        }
        Ok(view(&row))
    }

    /// Conversations a person has or should take, oldest hand-off first, each with its context.
    pub async fn assistant_inbox(
        &self,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<Vec<InboxItem>, EngineError> {
        let rows = {
            let mut conn = self.db().reader().acquire().await?;
            chat_store::inbox(&mut conn, after, limit).await?
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.inbox_item(&row).await?);
        }
        Ok(out)
    }

    /// One conversation with everything a person needs (inbox entry).
    pub async fn conversation_context(&self, id: &str) -> Result<InboxItem, EngineError> {
        let row = self.conversation_row(id).await?;
        self.inbox_item(&row).await
    }

    async fn inbox_item(&self, row: &ConversationRow) -> Result<InboxItem, EngineError> {
        let profile_id = self.profile_of(row).await?;
        let (mut profile, mut cart, mut orders) = (None, Vec::new(), Vec::new());
        if let Some(p) = &profile_id {
            if let Ok(v) = self.profile(p).await {
                profile = Some(serde_json::json!({
                    "id": v.id, "traits": v.traits, "orderCount": v.features.order_count, "spend": v.features.spend,
                    "currency": v.features.currency, "preferredStore": v.features.preferred_store,
                    "topCategories": v.features.top_categories, "consent": v.consent,
                }));
                cart = v.cart.iter().filter_map(|l| serde_json::to_value(l).ok()).collect();
            }
            let mut conn = self.db().reader().acquire().await?;
            let members = tailor_profiles::group_of(&mut conn, p).await?;
            orders = tailor_profiles::recent_orders(&mut conn, &members, 5)
                .await?
                .into_iter()
                .map(|o| {
                    serde_json::json!({"orderId": o.order_id, "at": format_millis(o.ts), "totalCents": o.total_cents,
                        "refundedCents": o.refunded_cents, "currency": o.currency, "storeId": o.store_id})
                })
                .collect();
        }
        let transcript = {
            let mut conn = self.db().reader().acquire().await?;
            chat_store::messages(&mut conn, &row.id, 0, 10_000).await?.iter().map(message_view).collect()
        };
        Ok(InboxItem {
            conversation: view(row),
            intent: row.context.last_intent.clone(),
            context: serde_json::to_value(&row.context).unwrap_or(Value::Null),
            profile,
            cart,
            orders,
            transcript,
        })
    }

    /// A person's reply: stored and sent to the shopper's live feed. Only while a person has
    /// the conversation.
    pub async fn agent_reply(&self, id: &str, agent: &str, text: &str) -> Result<MessageView, EngineError> {
        check_message("text", text)?;
        if agent.trim().is_empty() || agent.chars().count() > MAX_AGENT_CHARS {
            return Err(EngineError::Invalid(FieldError::invalid(
                "agent",
                "give the agent's name, 1 to 100 characters",
            )));
        }
        let lock = self.turn_lock(id);
        let _turn = lock.lock().await;
        let mut row = self.conversation_row(id).await?;
        if row.state != STATE_HANDOFF {
            return Err(EngineError::Conflict(format!(
                "conversation '{id}' is with the assistant; hand it off before replying as a person"
            )));
        }
        let now = now_millis();
        let reply = serde_json::json!({"agent": agent});
        let mut tx = self.db().writer().begin().await?;
        let n = chat_store::append(&mut tx, id, "agent", text, Some(&reply.to_string()), now).await?;
        row.updated_at = now;
        chat_store::save(&mut tx, &row).await?;
        tx.commit().await?;
        self.notify(id, n);
        Ok(MessageView { n, role: "agent".into(), text: text.into(), reply: Some(reply), at: format_millis(now) })
    }

    /// Closes a hand-off: the assistant answers again, with a fresh context.
    pub async fn close_handoff(&self, id: &str) -> Result<ConversationView, EngineError> {
        let lock = self.turn_lock(id);
        let _turn = lock.lock().await;
        let mut row = self.conversation_row(id).await?;
        if row.state != STATE_HANDOFF {
            return Err(EngineError::Conflict(format!("conversation '{id}' is not with a person")));
        }
        let now = now_millis();
        row.state = STATE_BOT.into();
        row.context = Context { store: row.context.store.clone(), ..Context::default() };
        row.updated_at = now;
        let mut tx = self.db().writer().begin().await?;
        let n = chat_store::append(&mut tx, id, "system", "The conversation is back with the assistant.", None, now)
            .await?;
        chat_store::save(&mut tx, &row).await?;
        tx.commit().await?;
        self.notify(id, n);
        Ok(view(&row))
    }

    /// Stores a knowledge-base document (markdown) under `name`, replacing one of that name.
    pub async fn put_knowledge(&self, name: &str, markdown: &str) -> Result<usize, EngineError> {
        tailor_core::text::check_id("name", name).map_err(EngineError::Invalid)?;
        if markdown.len() > tailor_assistant::knowledge::MAX_DOCUMENT_BYTES {
            return Err(EngineError::Invalid(FieldError::invalid("body", "a document holds at most 256 KiB")));
        }
        let sections = tailor_assistant::knowledge::sections(name, markdown).len();
        if sections == 0 {
            return Err(EngineError::Invalid(FieldError::invalid("body", "the document has no text")));
        }
        chat_store::put_document(self.db(), name, markdown, now_millis()).await?;
        Ok(sections)
    }

    /// Removes a knowledge-base document.
    pub async fn delete_knowledge(&self, name: &str) -> Result<(), EngineError> {
        if chat_store::delete_document(self.db(), name).await? {
            Ok(())
        } else {
            Err(EngineError::not_found("knowledge document", name))
        }
    }

    /// The conversations of these identifier values (userIds, anonymousIds) with their
    /// transcripts, for a privacy export.
    pub(crate) async fn conversations_of(
        &self,
        conn: &mut sqlx::AnyConnection,
        ids: &[String],
    ) -> Result<Value, EngineError> {
        let rows = chat_store::of_people(conn, ids).await?;
        let mut out = Vec::new();
        for r in rows {
            let messages: Vec<MessageView> =
                chat_store::messages(conn, &r.id, 0, 100_000).await?.iter().map(message_view).collect();
            out.push(serde_json::json!({"conversation": view(&r), "messages": messages}));
        }
        Ok(Value::Array(out))
    }
}

fn load_understanding() -> Result<Understanding, EngineError> {
    if let Some(path) = std::env::var_os("TAILOR_ASSISTANT_MODEL") {
        let bytes = std::fs::read(&path).map_err(|e| EngineError::Io(format!("{}: {e}", path.to_string_lossy())))?;
        match UnderstandingModel::from_bytes(&bytes) {
            Ok(model) => {
                let encoder = if model.uses_encoder() {
                    tailor_assistant::models::locate_minilm()
                        .ok()
                        .and_then(|f| tailor_assistant::understanding::load_encoder(f.path()).ok())
                } else {
                    None
                };
                return Ok(Understanding::new(model, encoder));
            }
            // An old or corrupt model is replaced by the shipped one, not fatal.
            Err(e) => tracing::warn!(error = %e, "the assistant model file is unreadable; using the shipped model"),
        }
    }
    let model = UnderstandingModel::train(&shipped_examples(), None, &UnderstandingConfig::default())
        .map_err(|e| EngineError::Io(e.to_string()))?;
    Ok(Understanding::new(model, None))
}

async fn understand(u: &Understanding, text: &str) -> Result<Understood, EngineError> {
    if u.model().uses_encoder() {
        // The encoder takes milliseconds of CPU: off the async threads.
        let u = u.clone();
        let text = text.to_string();
        tokio::task::spawn_blocking(move || u.understand(&text)).await.map_err(|e| EngineError::Io(e.to_string()))
    } else {
        Ok(u.understand(text))
    }
}

fn explain(reply: &mut Reply, u: &Understood) {
    let what = match &u.intent {
        Some(i) => format!("understood as {i} (confidence {:.2})", u.confidence),
        None => format!("out of scope (closest {}, confidence {:.2})", u.closest, u.confidence),
    };
    reply.explanation.insert(0, what);
}
