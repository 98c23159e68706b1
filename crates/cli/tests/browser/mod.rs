//! What the browser tests share: the installed browser, keys and a served data directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_tailor");

/// The browser scripts' folder, when Chromium and playwright-core are installed (CI must have
/// them; elsewhere the test skips with a message).
pub fn browser() -> Option<PathBuf> {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/console");
    let ready = tests.join("node_modules/playwright-core").exists() && Path::new("/usr/bin/chromium").exists();
    if !ready {
        assert!(std::env::var_os("CI").is_none(), "CI must run the browser test: scripts/browser.sh installs it");
        eprintln!("skipping: run scripts/browser.sh to install Chromium and playwright-core");
        return None;
    }
    Some(tests)
}

/// A new key of `scope` on the data directory.
pub fn key(dir: &Path, scope: &str) -> String {
    let out =
        Command::new(BIN).args(["keys", "create", "--scope", scope, "--data-dir"]).arg(dir).output().expect("keys");
    String::from_utf8(out.stdout).expect("utf8").trim().to_string()
}

/// `tailor serve` on `dir` on a free port: the process and its base URL.
pub fn serve(dir: &Path) -> (Child, String) {
    let mut server = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("TAILOR_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("serve");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout")).read_line(&mut line).expect("banner");
    let base = line.trim().rsplit(' ').next().expect("url").to_string();
    (server, base)
}
