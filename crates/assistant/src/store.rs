//! Conversations, their messages and the retailer's knowledge base in the database: the
//! assistant's tables and the SQL over them (portable between SQLite and PostgreSQL). The engine
//! calls these inside its transactions; nothing here decides.

use sqlx::{AnyConnection, Row};
use tailor_store::{Db, DbError, Migration};

use crate::dialogue::Context;

/// The assistant's tables.
pub const MIGRATIONS: &[Migration] = &[Migration::portable(
    "assistant/001_conversations",
    "CREATE TABLE assistant_conversations (
        id TEXT PRIMARY KEY,
        user_id TEXT,
        anonymous_id TEXT,
        channel TEXT NOT NULL,
        store_id TEXT,
        token_hash TEXT NOT NULL,
        state TEXT NOT NULL,
        handoff_reason TEXT,
        handoff_at BIGINT,
        context TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL
    );
    CREATE INDEX assistant_conversations_state ON assistant_conversations (state, handoff_at);
    CREATE INDEX assistant_conversations_user ON assistant_conversations (user_id);
    CREATE INDEX assistant_conversations_anon ON assistant_conversations (anonymous_id);
    CREATE TABLE assistant_messages (
        conversation_id TEXT NOT NULL,
        n BIGINT NOT NULL,
        role TEXT NOT NULL,
        text TEXT NOT NULL,
        reply TEXT,
        at BIGINT NOT NULL,
        PRIMARY KEY (conversation_id, n)
    );
    CREATE TABLE assistant_knowledge (
        name TEXT PRIMARY KEY,
        body TEXT NOT NULL,
        updated_at BIGINT NOT NULL
    )",
)];

/// A conversation as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationRow {
    /// Its id.
    pub id: String,
    /// The shop's userId, for a signed-in shopper.
    pub user_id: Option<String>,
    /// The visitor's anonymousId.
    pub anonymous_id: Option<String>,
    /// web, sms or kiosk.
    pub channel: String,
    /// The store it started at.
    pub store_id: Option<String>,
    /// SHA-256 of the conversation token a browser presents.
    pub token_hash: String,
    /// `bot` or `handoff` (a person has it).
    pub state: String,
    /// Why it was handed off.
    pub handoff_reason: Option<String>,
    /// When it was handed off (unix ms).
    pub handoff_at: Option<i64>,
    /// Slots and context.
    pub context: Context,
    /// Created (unix ms).
    pub created_at: i64,
    /// Last change (unix ms).
    pub updated_at: i64,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct MessageRow {
    /// Position in the conversation, from 1.
    pub n: i64,
    /// `shopper`, `assistant`, `agent` or `system`.
    pub role: String,
    /// The text.
    pub text: String,
    /// The assistant's structured reply (JSON), for its messages.
    pub reply: Option<String>,
    /// When (unix ms).
    pub at: i64,
}

const COLUMNS: &str = "id, user_id, anonymous_id, channel, store_id, token_hash, state, handoff_reason, handoff_at, \
                       context, created_at, updated_at";

fn row_of(r: &tailor_store::AnyRow) -> ConversationRow {
    ConversationRow {
        id: r.get(0),
        user_id: r.get(1),
        anonymous_id: r.get(2),
        channel: r.get(3),
        store_id: r.get(4),
        token_hash: r.get(5),
        state: r.get(6),
        handoff_reason: r.get(7),
        handoff_at: r.get(8),
        // A context this build cannot read starts afresh rather than failing the conversation.
        context: serde_json::from_str(&r.get::<String, _>(9)).unwrap_or_default(),
        created_at: r.get(10),
        updated_at: r.get(11),
    }
}

fn context_json(c: &Context) -> String {
    serde_json::to_string(c).unwrap_or_else(|_| "{}".into())
}

/// Stores a new conversation.
pub async fn create(conn: &mut AnyConnection, c: &ConversationRow) -> Result<(), DbError> {
    sqlx::query(&format!(
        "INSERT INTO assistant_conversations ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    ))
    .bind(&c.id)
    .bind(&c.user_id)
    .bind(&c.anonymous_id)
    .bind(&c.channel)
    .bind(&c.store_id)
    .bind(&c.token_hash)
    .bind(&c.state)
    .bind(&c.handoff_reason)
    .bind(c.handoff_at)
    .bind(context_json(&c.context))
    .bind(c.created_at)
    .bind(c.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A conversation by id.
pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<ConversationRow>, DbError> {
    let r = sqlx::query(&format!("SELECT {COLUMNS} FROM assistant_conversations WHERE id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(r.as_ref().map(row_of))
}

/// Saves a conversation's state, hand-off and context.
pub async fn save(conn: &mut AnyConnection, c: &ConversationRow) -> Result<(), DbError> {
    sqlx::query(
        "UPDATE assistant_conversations SET state = $2, handoff_reason = $3, handoff_at = $4, context = $5, \
         store_id = $6, updated_at = $7 WHERE id = $1",
    )
    .bind(&c.id)
    .bind(&c.state)
    .bind(&c.handoff_reason)
    .bind(c.handoff_at)
    .bind(context_json(&c.context))
    .bind(&c.store_id)
    .bind(c.updated_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Appends a message; returns its position.
pub async fn append(
    conn: &mut AnyConnection,
    conversation: &str,
    role: &str,
    text: &str,
    reply: Option<&str>,
    at: i64,
) -> Result<i64, DbError> {
    // One statement (the position is computed where the row is written): the turns' writes
    // share one connection, and each statement is a round trip to its thread.
    let n: i64 = sqlx::query(
        "INSERT INTO assistant_messages (conversation_id, n, role, text, reply, at) \
         SELECT $1, COALESCE(MAX(n), 0) + 1, $2, $3, $4, $5 FROM assistant_messages WHERE conversation_id = $1 \
         RETURNING n",
    )
    .bind(conversation)
    .bind(role)
    .bind(text)
    .bind(reply)
    .bind(at)
    .fetch_one(&mut *conn)
    .await?
    .get(0);
    Ok(n)
}

/// Messages after position `after`, oldest first, at most `limit`.
pub async fn messages(
    conn: &mut AnyConnection,
    conversation: &str,
    after: i64,
    limit: i64,
) -> Result<Vec<MessageRow>, DbError> {
    let rows = sqlx::query(
        "SELECT n, role, text, reply, at FROM assistant_messages WHERE conversation_id = $1 AND n > $2 \
         ORDER BY n LIMIT $3",
    )
    .bind(conversation)
    .bind(after)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| MessageRow { n: r.get(0), role: r.get(1), text: r.get(2), reply: r.get(3), at: r.get(4) })
        .collect())
}

/// Conversations waiting for or held by a person, oldest hand-off first, after the cursor
/// (`handoff_at`, `id`), at most `limit`.
pub async fn inbox(
    conn: &mut AnyConnection,
    after: Option<(i64, String)>,
    limit: i64,
) -> Result<Vec<ConversationRow>, DbError> {
    let (at, id) = after.unwrap_or((i64::MIN, String::new()));
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM assistant_conversations WHERE state = 'handoff' \
         AND (handoff_at > $1 OR (handoff_at = $1 AND id > $2)) ORDER BY handoff_at, id LIMIT $3"
    ))
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.iter().map(row_of).collect())
}

/// Conversations of these identifier values (userIds and anonymousIds, compared in lower case),
/// for export and erasure.
pub async fn of_people(conn: &mut AnyConnection, ids: &[String]) -> Result<Vec<ConversationRow>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let inn = tailor_store::placeholders(1, ids.len());
    let sql = format!(
        "SELECT {COLUMNS} FROM assistant_conversations WHERE LOWER(user_id) IN {inn} OR LOWER(anonymous_id) IN {inn}"
    );
    let lower: Vec<String> = ids.iter().map(|i| i.to_lowercase()).collect();
    let rows = tailor_store::bind_all(sqlx::query(&sql), &lower).fetch_all(&mut *conn).await?;
    Ok(rows.iter().map(row_of).collect())
}

/// Deletes conversations and their messages.
pub async fn delete(conn: &mut AnyConnection, ids: &[String]) -> Result<u64, DbError> {
    if ids.is_empty() {
        return Ok(0);
    }
    let inn = tailor_store::placeholders(1, ids.len());
    tailor_store::bind_all(sqlx::query(&format!("DELETE FROM assistant_messages WHERE conversation_id IN {inn}")), ids)
        .execute(&mut *conn)
        .await?;
    let n = tailor_store::bind_all(sqlx::query(&format!("DELETE FROM assistant_conversations WHERE id IN {inn}")), ids)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    Ok(n)
}

/// Stores (or replaces) a knowledge-base document.
pub async fn put_document(db: &Db, name: &str, body: &str, at: i64) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO assistant_knowledge (name, body, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at",
    )
    .bind(name)
    .bind(body)
    .bind(at)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Deletes a knowledge-base document; whether it existed.
pub async fn delete_document(db: &Db, name: &str) -> Result<bool, DbError> {
    let n = sqlx::query("DELETE FROM assistant_knowledge WHERE name = $1").bind(name).execute(db.writer()).await?;
    Ok(n.rows_affected() > 0)
}

/// The knowledge-base documents (name, markdown) and the latest change time.
pub async fn documents(conn: &mut AnyConnection) -> Result<(Vec<(String, String)>, i64), DbError> {
    let rows = sqlx::query("SELECT name, body, updated_at FROM assistant_knowledge ORDER BY name")
        .fetch_all(&mut *conn)
        .await?;
    let latest = rows.iter().map(|r| r.get::<i64, _>(2)).max().unwrap_or(0);
    Ok((rows.iter().map(|r| (r.get(0), r.get(1))).collect(), latest))
}
