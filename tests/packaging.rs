//! The packaging as shipped: the Docker build context holds what the Dockerfile copies and
//! that is enough for cargo to resolve the build offline and locked; the image serves both
//! listeners (ops and public) as a non-root user with a health check; compose.yaml publishes
//! only the public listener and pins every image; the systemd unit does not restart on a
//! configuration error. (No Docker daemon runs here: the image itself is not built by the
//! tests, and the Dockerfile and compose.yaml are read as text.)

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

/// The port of a `HOST:PORT` listen address in config/default.toml (`http.listen` is the ops
/// listener, `web.listen` the public one).
fn default_port(section: &str) -> u16 {
    let text = std::fs::read_to_string(repo().join("config/default.toml")).unwrap();
    let config: toml::Table = text.parse().unwrap();
    let listen = config
        .get(section)
        .and_then(|s| s.get("listen"))
        .and_then(toml::Value::as_str)
        .unwrap_or_else(|| panic!("config/default.toml has no {section}.listen"));
    let (_, port) = listen
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("{section}.listen {listen:?} has no port"));
    port.parse().unwrap()
}

/// The Dockerfile's instructions as (KEYWORD, arguments): comments and blank lines dropped,
/// continuation lines (ending in `\`) joined.
fn dockerfile_instructions(dockerfile: &str) -> Vec<(String, String)> {
    let mut instructions = Vec::new();
    let mut pending = String::new();
    for line in dockerfile.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                pending.push_str(part.trim());
                pending.push(' ');
            }
            None => {
                pending.push_str(trimmed);
                let whole = std::mem::take(&mut pending);
                let (keyword, args) = whole
                    .split_once(char::is_whitespace)
                    .unwrap_or((&whole, ""));
                instructions.push((keyword.to_uppercase(), args.trim().to_string()));
            }
        }
    }
    assert!(pending.is_empty(), "the Dockerfile ends in a continuation");
    instructions
}

/// The instructions of the final (runtime) stage: those after the last `FROM`.
fn runtime_stage(dockerfile: &str) -> Vec<(String, String)> {
    let instructions = dockerfile_instructions(dockerfile);
    let last_from = instructions
        .iter()
        .rposition(|(keyword, _)| keyword == "FROM")
        .expect("the Dockerfile has a FROM");
    instructions[last_from + 1..].to_vec()
}

fn unquote(value: &str) -> String {
    value
        .trim()
        .trim_matches('"')
        .trim_matches('\'')
        .to_string()
}

#[test]
fn the_image_serves_both_listeners_as_a_non_root_user() {
    let ops = default_port("http");
    let public = default_port("web");
    assert_ne!(ops, public);
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let stage = runtime_stage(&dockerfile);

    // Both ports are exposed.
    let exposed: Vec<u16> = stage
        .iter()
        .filter(|(keyword, _)| keyword == "EXPOSE")
        .flat_map(|(_, args)| args.split_whitespace())
        .map(|port| port.trim_end_matches("/tcp").parse().unwrap())
        .collect();
    assert!(
        exposed.contains(&ops),
        "EXPOSE lacks the ops port {ops}: {exposed:?}"
    );
    assert!(
        exposed.contains(&public),
        "EXPOSE lacks the public port {public}: {exposed:?}"
    );

    // Both listeners listen on all interfaces of the container (KEY=VALUE form).
    let env: Vec<(String, String)> = stage
        .iter()
        .filter(|(keyword, _)| keyword == "ENV")
        .flat_map(|(_, args)| args.split_whitespace())
        .map(|pair| {
            let (key, value) = pair
                .split_once('=')
                .unwrap_or_else(|| panic!("ENV {pair:?} is not KEY=VALUE"));
            (key.to_string(), unquote(value))
        })
        .collect();
    let env_value = |key: &str| {
        env.iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("the image does not set {key}"))
    };
    assert_eq!(env_value("SUBSAVE_HTTP__LISTEN"), format!("0.0.0.0:{ops}"));
    assert_eq!(
        env_value("SUBSAVE_WEB__LISTEN"),
        format!("0.0.0.0:{public}")
    );

    // It runs as a non-root user.
    let user = stage
        .iter()
        .rev()
        .find(|(keyword, _)| keyword == "USER")
        .map(|(_, args)| args.clone())
        .expect("the runtime stage sets USER");
    let user_name = user.split(':').next().unwrap_or_default();
    assert!(
        !user_name.is_empty() && user_name != "root" && user_name != "0",
        "the image runs as {user:?}"
    );

    // Its health check probes the ops listener.
    let healthcheck = stage
        .iter()
        .find(|(keyword, _)| keyword == "HEALTHCHECK")
        .map(|(_, args)| args.clone())
        .expect("the image has a HEALTHCHECK");
    assert!(
        healthcheck.contains("CMD") && healthcheck.contains(&format!(":{ops}/healthz")),
        "the HEALTHCHECK does not probe /healthz on the ops port: {healthcheck}"
    );
}

#[derive(Debug, Default)]
struct ComposeService {
    name: String,
    image: Option<String>,
    build: bool,
    /// The `ports:` entries, short syntax (`[IP:]HOST:CONTAINER[/PROTOCOL]`).
    ports: Vec<String>,
}

/// compose.yaml's services, read line by line: top-level keys at column 0, services at two
/// spaces, their keys at four, list items below them (the file's own layout).
fn compose_services(compose: &str) -> Vec<ComposeService> {
    let mut services: Vec<ComposeService> = Vec::new();
    let mut in_services = false;
    let mut in_ports = false;
    for raw in compose.lines() {
        let line = raw.split(" #").next().unwrap_or_default().trim_end();
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let indent = line.len() - content.len();
        if indent == 0 {
            in_services = content == "services:";
            in_ports = false;
            continue;
        }
        if !in_services {
            continue;
        }
        if indent == 2 {
            services.push(ComposeService {
                name: content.trim_end_matches(':').to_string(),
                ..ComposeService::default()
            });
            in_ports = false;
            continue;
        }
        let Some(service) = services.last_mut() else {
            continue;
        };
        if indent == 4 {
            in_ports = content == "ports:";
            if let Some(image) = content.strip_prefix("image:") {
                service.image = Some(unquote(image));
            }
            if content.starts_with("build:") {
                service.build = true;
            }
        } else if in_ports && let Some(port) = content.strip_prefix("- ") {
            service.ports.push(unquote(port));
        }
    }
    services
}

/// The container port of a short-syntax port entry: what follows the last `:`.
fn container_port(entry: &str) -> u16 {
    assert!(
        !entry.contains(": "),
        "long-syntax port {entry:?}: use the short syntax"
    );
    let (_, container) = entry
        .rsplit_once(':')
        .unwrap_or_else(|| panic!("port {entry:?} publishes a random host port"));
    container
        .trim_end_matches("/tcp")
        .parse()
        .unwrap_or_else(|_| panic!("port {entry:?} is not HOST:CONTAINER"))
}

#[test]
fn compose_publishes_the_public_port_only_and_pins_its_images() {
    let ops = default_port("http");
    let public = default_port("web");
    let compose = std::fs::read_to_string(repo().join("compose.yaml")).unwrap();
    let services = compose_services(&compose);
    let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
    for expected in ["postgres", "mailpit", "subsave"] {
        assert!(
            names.contains(&expected),
            "no service {expected} in {names:?}"
        );
    }

    let subsave = services
        .iter()
        .find(|s| s.name == "subsave")
        .expect("a subsave service");
    assert!(subsave.build, "the subsave service builds the Dockerfile");
    let published: Vec<u16> = subsave.ports.iter().map(|p| container_port(p)).collect();
    assert!(
        published.contains(&public),
        "subsave does not publish the public port {public}: {:?}",
        subsave.ports
    );
    assert!(
        !published.contains(&ops),
        "subsave publishes the ops port {ops} (/metrics): {:?}",
        subsave.ports
    );

    // Every image is pinned to a version tag (or a digest): not untagged, not `latest`, and
    // more than a major version (`postgres:15` moves).
    for service in &services {
        let Some(image) = &service.image else {
            assert!(
                service.build,
                "{} has neither image nor build",
                service.name
            );
            continue;
        };
        if image.contains("@sha256:") {
            continue;
        }
        let last_part = image.rsplit('/').next().unwrap_or_default();
        let tag = last_part
            .split_once(':')
            .map(|(_, tag)| tag)
            .unwrap_or_else(|| panic!("{}: image {image} is untagged", service.name));
        assert!(
            tag != "latest" && tag.contains('.') && tag.chars().any(|c| c.is_ascii_digit()),
            "{}: image {image} is not pinned to a version",
            service.name
        );
    }
}
