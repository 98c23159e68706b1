//! Assistant routes: conversations for shoppers (start, send a message, read, live feed), the
//! agents' inbox (context, reply, close) and the retailer's knowledge base. Thin: the engine
//! understands, decides and answers.
//!
//! A browser holds the write key, shared by every visitor, so with that key a conversation is
//! started only as an anonymous visitor and continued only with the conversation's own token
//! (`X-Conversation-Token`, returned once at start). Keys that speak for the shop's servers
//! (source, pos, admin) may start a conversation for a signed-in `userId`.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use tailor_core::ErrorCode;
use tailor_engine::{
    Caller, ChatChannel, ConversationView, InboxItem, MessageView, Principal, Scope, StartConversation,
    StartedConversation, TurnView,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AdminKey, AgentKey, ChatKey};
use crate::chat_limits::ChatOrigin;
use crate::error::parse_body;
use crate::extract::{Path, Query};
use crate::page::{cursor_of, Page, PageParams, PageQuery};
use crate::{ApiError, AppState};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(start))
        .routes(routes!(get_conversation))
        .routes(routes!(send, messages))
        .routes(routes!(stream))
        .routes(routes!(inbox))
        .routes(routes!(agent_view))
        .routes(routes!(agent_reply))
        .routes(routes!(close))
        .routes(routes!(put_knowledge, delete_knowledge))
}

/// Paths named in rate-limit answers.
const START_PATH: &str = "/v1/conversations";
const MESSAGES_PATH: &str = "/v1/conversations/{id}/messages";

/// The header carrying a conversation's token.
pub(crate) const TOKEN_HEADER: &str = "x-conversation-token";

/// How a conversation starts.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StartBody {
    /// The shop's userId of a signed-in shopper (source, pos or admin keys only).
    user_id: Option<String>,
    /// The visitor's anonymousId.
    anonymous_id: Option<String>,
    /// web (default), sms or kiosk.
    channel: Option<String>,
    /// The store the shopper is at or shops at.
    store_id: Option<String>,
}

/// A shopper's message.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct MessageBody {
    /// The text, 1 to 2,000 characters.
    text: String,
}

/// An agent's reply.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AgentBody {
    /// The agent's name, as the shopper sees it.
    agent: String,
    /// The text, 1 to 2,000 characters.
    text: String,
}

/// A knowledge-base document.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct KnowledgeBody {
    /// The document in markdown; sections are cut at headings.
    markdown: String,
}

/// A stored knowledge-base document.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
struct KnowledgeStored {
    /// Its name.
    name: String,
    /// Sections found (each is quoted on its own).
    sections: usize,
}

/// Refuses a browser key without the conversation's token. Other chat keys speak for the shop.
/// Returns the conversation.
async fn check_token(
    state: &AppState,
    key: &Principal,
    id: &str,
    headers: &HeaderMap,
) -> Result<ConversationView, ApiError> {
    // Unknown conversations are a 404 for every key.
    let conversation = state.engine.conversation(id).await?;
    if key.scope != Scope::Write {
        return Ok(conversation);
    }
    let token = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
    if token.is_empty() || !state.engine.conversation_token_ok(id, token).await? {
        return Err(ApiError {
            code: ErrorCode::Forbidden,
            detail: "a browser key continues a conversation only with its token: send the token returned when it \
                     started as X-Conversation-Token"
                .into(),
            field: Some("X-Conversation-Token".into()),
            errors: None,
        });
    }
    Ok(conversation)
}

/// Who the turn is for and where it comes from, for the engine's caps on what a browser may do.
fn caller(key: &Principal, origin: &ChatOrigin) -> Caller {
    Caller { browser: key.scope == Scope::Write, client: origin.client }
}

/// Starts a conversation. With the write key (a browser) the shopper is an anonymous visitor;
/// a signed-in `userId` needs a key that speaks for the shop (source, pos or admin). The answer
/// holds the conversation's token, shown once: a browser sends it as `X-Conversation-Token`.
#[utoipa::path(post, path = "/v1/conversations", tag = "assistant", security(("bearer" = [])),
    request_body = StartBody,
    responses((status = 201, body = StartedConversation), (status = 400, description = "Invalid field"),
        (status = 403, description = "A browser key named a userId"),
        (status = 429, description = "Too many chats from this address or shopper (browser key)")))]
async fn start(
    State(state): State<AppState>,
    ChatKey(key): ChatKey,
    origin: ChatOrigin,
    body: Bytes,
) -> Result<(StatusCode, Json<StartedConversation>), Response> {
    if key.scope == Scope::Write {
        origin.admit_client(START_PATH)?;
    }
    let b: StartBody = if body.iter().all(u8::is_ascii_whitespace) {
        StartBody { user_id: None, anonymous_id: None, channel: None, store_id: None }
    } else {
        parse_body(&body, &["userId", "anonymousId", "channel", "storeId"])?
    };
    if b.user_id.is_some() && key.scope == Scope::Write {
        return Err(ApiError {
            code: ErrorCode::Forbidden,
            detail: "a browser key converses as an anonymous visitor; start a signed-in conversation from your \
                     server with a source key and hand its token to the browser"
                .into(),
            field: Some("userId".into()),
            errors: None,
        }
        .into());
    }
    let channel = match b.channel.as_deref() {
        None => ChatChannel::Web,
        Some(c) => ChatChannel::parse(c).ok_or_else(|| ApiError::field("channel", "one of web, sms, kiosk"))?,
    };
    if let (Scope::Write, Some(anon)) = (key.scope, &b.anonymous_id) {
        origin.admit_shopper(anon, START_PATH)?;
    }
    let req = StartConversation { user_id: b.user_id, anonymous_id: b.anonymous_id, channel, store_id: b.store_id };
    let started = state.engine.start_conversation(&req).await.map_err(ApiError::from)?;
    Ok((StatusCode::CREATED, Json(started)))
}

/// A conversation: its shopper, channel, store and whether a person has it.
#[utoipa::path(get, path = "/v1/conversations/{id}", tag = "assistant", security(("bearer" = [])),
    params(("id" = String, Path, description = "The conversation")),
    responses((status = 200, body = ConversationView), (status = 404, description = "Unknown conversation")))]
async fn get_conversation(
    State(state): State<AppState>,
    ChatKey(key): ChatKey,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Json<ConversationView>, ApiError> {
    check_token(&state, &key, &id, &headers).await?;
    Ok(Json(state.engine.conversation(&id).await?))
}

/// Sends the shopper's message and answers it: the reply's text for the conversation's channel,
/// product cards, quick replies, every fact stated with the engine API it came from, and why.
/// While a person has the conversation the message is kept for them and `reply` is null.
#[utoipa::path(post, path = "/v1/conversations/{id}/messages", tag = "assistant", security(("bearer" = [])),
    request_body = MessageBody, params(("id" = String, Path, description = "The conversation")),
    responses((status = 200, body = TurnView), (status = 400, description = "Invalid field"),
        (status = 403, description = "A browser key without the conversation's token"),
        (status = 404, description = "Unknown conversation"),
        (status = 429, description = "Too many messages from this address or shopper (browser key)")))]
async fn send(
    State(state): State<AppState>,
    ChatKey(key): ChatKey,
    origin: ChatOrigin,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<TurnView>, Response> {
    let browser = key.scope == Scope::Write;
    if browser {
        origin.admit_client(MESSAGES_PATH)?;
    }
    let b: MessageBody = parse_body(&body, &["text"])?;
    tailor_engine::check_message("text", &b.text).map_err(ApiError::from)?;
    let conversation = check_token(&state, &key, &id, &headers).await?;
    if browser {
        let shopper = conversation.user_id.as_deref().or(conversation.anonymous_id.as_deref()).unwrap_or(&id);
        origin.admit_shopper(shopper, MESSAGES_PATH)?;
    }
    let turn = state.engine.converse(&id, &b.text, caller(&key, &origin)).await.map_err(ApiError::from)?;
    Ok(Json(turn))
}

/// The conversation's messages, oldest first (shopper, assistant, agent, system).
#[utoipa::path(get, path = "/v1/conversations/{id}/messages", tag = "assistant", security(("bearer" = [])),
    params(("id" = String, Path, description = "The conversation"), PageParams),
    responses((status = 200, body = Page<MessageView>), (status = 404, description = "Unknown conversation")))]
async fn messages(
    State(state): State<AppState>,
    ChatKey(key): ChatKey,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<MessageView>>, ApiError> {
    let page = PageQuery::from_query(&q)?;
    check_token(&state, &key, &id, &headers).await?;
    let after = page.position('n')?.unwrap_or(0);
    let items = state.engine.conversation_messages(&id, after, page.probe() as i64).await?;
    Ok(Json(page.cut(items, |m| cursor_of('n', m.n))))
}

/// How long a live feed waits for a notice before it looks in the database itself (messages
/// written by another node).
const FEED_POLL: Duration = Duration::from_secs(2);

/// A live feed of the conversation's new messages (Server-Sent Events, `message` events with a
/// message as JSON and its position as the event id): the assistant's replies and a person's.
/// `?after=N` starts after position N.
#[utoipa::path(get, path = "/v1/conversations/{id}/stream", tag = "assistant", security(("bearer" = [])),
    params(("id" = String, Path, description = "The conversation"),
        ("after" = Option<i64>, Query, description = "Start after this message position")),
    responses((status = 200, description = "text/event-stream of MessageView", body = MessageView),
        (status = 404, description = "Unknown conversation")))]
async fn stream(
    State(state): State<AppState>,
    ChatKey(key): ChatKey,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, std::convert::Infallible>>>, ApiError> {
    let after: i64 = match q.get("after") {
        None => 0,
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| ApiError::field("after", "a message position, 0 or more"))?,
    };
    check_token(&state, &key, &id, &headers).await?;
    // Subscribed before the backlog is read, so nothing written in between is missed.
    let rx = state.engine.conversation_updates();
    let engine = state.engine.clone();
    let feed = futures_util::stream::unfold(
        (engine, id, after, rx, std::collections::VecDeque::<MessageView>::new()),
        |(engine, id, mut after, mut rx, mut backlog)| async move {
            loop {
                if let Some(m) = backlog.pop_front() {
                    after = m.n;
                    let data = serde_json::to_string(&m).unwrap_or_default();
                    let event = Event::default().event("message").id(m.n.to_string()).data(data);
                    return Some((Ok(event), (engine, id, after, rx, backlog)));
                }
                match engine.conversation_messages(&id, after, 100).await {
                    Ok(ms) if !ms.is_empty() => {
                        backlog.extend(ms);
                        continue;
                    }
                    Ok(_) => {}
                    // The conversation was erased: the feed ends.
                    Err(_) => return None,
                }
                // Wait for a notice about this conversation, or look again after a while.
                let wait = async {
                    loop {
                        match rx.recv().await {
                            Ok((c, _)) if c == id => return true,
                            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => return false,
                        }
                    }
                };
                if let Ok(false) = tokio::time::timeout(FEED_POLL, wait).await {
                    return None;
                }
            }
        },
    );
    Ok(Sse::new(feed).keep_alive(KeepAlive::default()))
}

/// The hand-off inbox: conversations a person has or should take, oldest hand-off first, each
/// with its whole context (profile summary, cart, last orders, transcript, detected intent).
#[utoipa::path(get, path = "/v1/assistant/inbox", tag = "assistant", security(("bearer" = [])),
    params(PageParams), responses((status = 200, body = Page<InboxItem>)))]
async fn inbox(
    State(state): State<AppState>,
    _key: AgentKey,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Page<InboxItem>>, ApiError> {
    let page = PageQuery::from_query(&q)?;
    let upto = page.position('o')?.unwrap_or(0).saturating_add(page.probe() as i64);
    Ok(Json(page.slice(state.engine.assistant_inbox(None, upto).await?)?))
}

/// One conversation with its whole context, for the person taking it.
#[utoipa::path(get, path = "/v1/assistant/conversations/{id}", tag = "assistant", security(("bearer" = [])),
    params(("id" = String, Path, description = "The conversation")),
    responses((status = 200, body = InboxItem), (status = 404, description = "Unknown conversation")))]
async fn agent_view(
    State(state): State<AppState>,
    _key: AgentKey,
    Path(id): Path<String>,
) -> Result<Json<InboxItem>, ApiError> {
    Ok(Json(state.engine.conversation_context(&id).await?))
}

/// A person's reply to the shopper (only while the conversation is handed off); it reaches the
/// shopper's live feed.
#[utoipa::path(post, path = "/v1/assistant/conversations/{id}/replies", tag = "assistant", security(("bearer" = [])),
    request_body = AgentBody, params(("id" = String, Path, description = "The conversation")),
    responses((status = 201, body = MessageView), (status = 400, description = "Invalid field"),
        (status = 404, description = "Unknown conversation"), (status = 409, description = "Not handed off")))]
async fn agent_reply(
    State(state): State<AppState>,
    _key: AgentKey,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<MessageView>), ApiError> {
    let b: AgentBody = parse_body(&body, &["agent", "text"])?;
    Ok((StatusCode::CREATED, Json(state.engine.agent_reply(&id, &b.agent, &b.text).await?)))
}

/// Closes a hand-off: the assistant answers the conversation again.
#[utoipa::path(post, path = "/v1/assistant/conversations/{id}/close", tag = "assistant", security(("bearer" = [])),
    params(("id" = String, Path, description = "The conversation")),
    responses((status = 200, body = ConversationView), (status = 404, description = "Unknown conversation"),
        (status = 409, description = "Not handed off")))]
async fn close(
    State(state): State<AppState>,
    _key: AgentKey,
    Path(id): Path<String>,
) -> Result<Json<ConversationView>, ApiError> {
    Ok(Json(state.engine.close_handoff(&id).await?))
}

/// Stores a knowledge-base document (markdown: returns, hours, policies). The assistant quotes
/// its sections with their source; until a document is stored, the shipped one answers.
#[utoipa::path(put, path = "/v1/assistant/knowledge/{name}", tag = "assistant", security(("bearer" = [])),
    request_body = KnowledgeBody, params(("name" = String, Path, description = "The document's name, e.g. returns.md")),
    responses((status = 200, body = KnowledgeStored), (status = 400, description = "Invalid field")))]
async fn put_knowledge(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Json<KnowledgeStored>, ApiError> {
    let b: KnowledgeBody = parse_body(&body, &["markdown"])?;
    let sections = state.engine.put_knowledge(&name, &b.markdown).await?;
    Ok(Json(KnowledgeStored { name, sections }))
}

/// Removes a knowledge-base document.
#[utoipa::path(delete, path = "/v1/assistant/knowledge/{name}", tag = "assistant", security(("bearer" = [])),
    params(("name" = String, Path, description = "The document")),
    responses((status = 204), (status = 404, description = "Unknown document")))]
async fn delete_knowledge(
    State(state): State<AppState>,
    _key: AdminKey,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.engine.delete_knowledge(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
