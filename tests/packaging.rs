//! The packaging as shipped: the Docker build context holds what the Dockerfile copies and
//! that is enough for cargo to resolve the build offline and locked; the systemd unit does
//! not restart on a configuration error. (No Docker daemon runs here: the image itself is not
//! built by the tests.)

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The sources of the build stage's `COPY` instructions (between the first `FROM` and the
/// second).
fn build_stage_copies(dockerfile: &str) -> Vec<String> {
    let build_stage = dockerfile
        .split("\nFROM ")
        .nth(1)
        .expect("the Dockerfile has a build stage");
    build_stage
        .lines()
        .filter_map(|line| line.trim().strip_prefix("COPY "))
        .filter(|args| !args.starts_with("--from"))
        .flat_map(|args| {
            let words: Vec<&str> = args.split_whitespace().collect();
            words[..words.len() - 1]
                .iter()
                .map(|w| w.to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap();
    }
}

#[test]
fn the_docker_context_has_what_the_build_needs() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let copies = build_stage_copies(&dockerfile);
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "src",
        "migrations",
        "templates",
    ] {
        assert!(
            copies.iter().any(|c| c == needed),
            "the Dockerfile does not copy {needed}"
        );
    }
    // .dockerignore lets in every path the Dockerfile copies (both stages), and nothing of
    // target/ or .git.
    let ignore = std::fs::read_to_string(repo().join(".dockerignore")).unwrap();
    let allowed: Vec<&str> = ignore
        .lines()
        .filter_map(|l| l.trim().strip_prefix('!'))
        .collect();
    assert!(
        ignore.lines().any(|l| l.trim() == "*"),
        "the context starts empty"
    );
    for copied in copies
        .iter()
        .map(String::as_str)
        .chain(["config/catalog.toml"])
    {
        let top = copied.split('/').next().unwrap();
        assert!(
            allowed.contains(&top),
            "{copied} is not in the build context"
        );
    }
    assert!(!allowed.iter().any(|a| *a == "target" || *a == ".git"));

    // Exactly those paths resolve the build, locked and offline.
    let context =
        std::env::temp_dir().join(format!("subsave-docker-context-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&context);
    std::fs::create_dir_all(&context).unwrap();
    for copied in &copies {
        copy_tree(&repo().join(copied), &context.join(copied));
    }
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--locked", "--offline", "--format-version", "1"])
        .current_dir(&context)
        .output()
        .expect("cargo runs");
    let _ = std::fs::remove_dir_all(&context);
    assert!(
        out.status.success(),
        "cargo metadata in the Docker context failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_systemd_unit_does_not_restart_on_a_config_error() {
    let unit = std::fs::read_to_string(repo().join("deploy/subsave.service")).unwrap();
    for line in [
        "RestartPreventExitStatus=2",
        "StateDirectory=subsave",
        "ExecStartPre=/usr/local/bin/subsave check-config",
        "KillSignal=SIGTERM",
    ] {
        assert!(unit.lines().any(|l| l.trim() == line), "missing {line}");
    }
}
