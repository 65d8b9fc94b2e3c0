//! For the tests that drive Horizon from outside Rust (the Python client,
//! schemathesis, the browser console): a Python virtual environment and npm
//! packages installed on first use under `target/test-tools/`, and the
//! system's Chromium. A missing tool fails the test when [`crate::required`]
//! says so (CI) and skips it loudly otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The workspace root (two levels above this crate's manifest).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/test-services lies two levels below the workspace root")
        .to_path_buf()
}

/// Where installed test tools live: `target/test-tools/` (or under
/// `CARGO_TARGET_DIR`).
pub fn tools_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("test-tools")
}

/// Holds an exclusive lock file while it lives, so concurrent tests do not
/// install into the same place at once.
struct DirLock(PathBuf);

impl DirLock {
    fn acquire(path: PathBuf) -> Self {
        // A lock left by a killed run is taken over after ten minutes.
        for _ in 0..1200 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => return Self(path),
                Err(_) => {
                    let stale = std::fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|t| t.elapsed().ok())
                        .is_some_and(|age| age > Duration::from_secs(600));
                    if stale {
                        let _ = std::fs::remove_file(&path);
                    }
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
        panic!("could not lock {} within 10 minutes", path.display());
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn run(test: &str, what: &str, cmd: &mut Command) -> bool {
    match cmd.output() {
        Ok(out) if out.status.success() => true,
        Ok(out) => panic!(
            "{test}: {what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => crate::skip(test, &format!("{what} could not start: {e}")),
    }
}

/// A virtual environment named `name` with `requirements` installed (pip
/// arguments: package specs or local paths, which are reinstalled every
/// call so that edits are picked up). Returns its `python`, or `None` after
/// a loud skip when Python 3 is missing and tools are not required.
pub fn python_env(test: &str, name: &str, requirements: &[&str]) -> Option<PathBuf> {
    let dir = tools_dir();
    std::fs::create_dir_all(&dir).expect("create target/test-tools");
    let _lock = DirLock::acquire(dir.join(format!("py-{name}.lock")));
    let venv = dir.join(format!("py-{name}"));
    let python = venv.join("bin").join("python");
    if !python.exists() {
        let base = std::env::var("HORIZON_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        if !run(
            test,
            "creating a Python venv",
            Command::new(&base).args(["-m", "venv"]).arg(&venv),
        ) {
            return None;
        }
    }
    // The list of what is installed, so that an unchanged list of registry
    // packages is not asked of pip again.
    let stamp = venv.join("horizon-requirements.txt");
    let wanted = requirements.join("\n");
    let local: Vec<&str> = requirements
        .iter()
        .copied()
        .filter(|r| r.starts_with('.') || r.starts_with('/'))
        .collect();
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        let mut pip = Command::new(&python);
        pip.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ]);
        pip.args(requirements).current_dir(workspace_root());
        if !run(test, "pip install", &mut pip) {
            return None;
        }
        std::fs::write(&stamp, &wanted).expect("write the requirements stamp");
    } else if !local.is_empty() {
        let mut pip = Command::new(&python);
        pip.args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--force-reinstall",
        ]);
        pip.args(&local).current_dir(workspace_root());
        if !run(test, "pip install (local packages)", &mut pip) {
            return None;
        }
    }
    Some(python)
}

/// Runs `npm install` in `dir` (relative to the workspace root) when its
/// `node_modules` is missing or older than `package.json`. Returns `false`
/// after a loud skip when npm is missing and tools are not required.
pub fn npm_install(test: &str, dir: &str) -> bool {
    let dir = workspace_root().join(dir);
    let _lock = DirLock::acquire(dir.join(".npm-install.lock"));
    let modules = dir.join("node_modules");
    let manifest_time = std::fs::metadata(dir.join("package.json")).and_then(|m| m.modified());
    let modules_time = std::fs::metadata(&modules).and_then(|m| m.modified());
    if let (Ok(m), Ok(n)) = (&manifest_time, &modules_time) {
        if n >= m {
            return true;
        }
    }
    let ok = run(
        test,
        "npm install",
        Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&dir),
    );
    if ok {
        // Touch so the next call sees it as fresh.
        let _ = std::fs::File::options()
            .write(true)
            .open(&modules)
            .and_then(|f| f.set_modified(std::time::SystemTime::now()));
    }
    ok
}

/// The system's Chromium (`HORIZON_TEST_CHROMIUM`, else `chromium`,
/// `chromium-browser` or `google-chrome` on the PATH), or `None` after a
/// loud skip.
pub fn chromium(test: &str) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HORIZON_TEST_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    crate::skip(
        test,
        "no Chromium on the PATH (apt-get install chromium, or set HORIZON_TEST_CHROMIUM)",
    );
    None
}
