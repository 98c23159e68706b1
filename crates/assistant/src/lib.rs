//! The shopping assistant: understanding, dialogue flows ([`dialogue`]), reply templates, the
//! retailer's knowledge base ([`knowledge`]) and the conversation tables ([`store`]).
//! Understanding: intents, entities and out-of-scope detection, trained from a CSV the retailer edits, on all-MiniLM-L6-v2 sentence
//! embeddings (run with candle) combined with character/word n-grams, or on n-grams alone when
//! the model weights are absent. Pure compute: the only I/O is reading the training file and the
//! model files it is pointed at. Dialogue flows sit on top of [`understanding::Understood`]:
//! they decide, this crate only says what the shopper asked. [`generate`] phrases replies: templates,
//! optionally rephrased by a small LLM whose drafts must pass a grounding check.

pub mod dialogue;
pub mod eval;
pub mod generate;
pub mod knowledge;
pub mod models;
pub mod store;
pub mod understanding;

pub use understanding::{Entity, Understanding, UnderstandingModel, Understood};

/// Errors of the assistant's understanding.
#[derive(Debug, thiserror::Error)]
pub enum AssistantError {
    /// A training or evaluation file is malformed; names the file and line.
    #[error("{origin}:{line}: {message}")]
    Data {
        /// The file (or a label for the source).
        origin: String,
        /// 1-based line.
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The sentence-encoder files are missing or malformed.
    #[error("model: {0}")]
    Model(String),
    /// A file could not be read or written.
    #[error("io: {0}")]
    Io(String),
    /// A stored understanding model is of another format version or corrupt.
    #[error("artifact: {0}")]
    Artifact(String),
}

impl From<candle_core::Error> for AssistantError {
    fn from(e: candle_core::Error) -> Self {
        AssistantError::Model(e.to_string())
    }
}
