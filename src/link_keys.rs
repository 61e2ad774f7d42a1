//! The keys that sign customer links: given in the settings (`web.link_keys`), or read from
//! the key file they name (`web.link_keys_file`), which is created with one random key the
//! first time, readable by its owner only. The only module that reads or writes that file;
//! what a key signs and verifies is `core::links`'.

use std::path::Path;

use crate::config::{ConfigError, LinkKeySource, WebSettings};
use crate::core::links::{LinkSigner, Links, key_line, parse_keys};

/// The link signer of `web`'s keys, reading (and, the first time, creating) the key file.
pub fn signer(web: &WebSettings) -> Result<LinkSigner, ConfigError> {
    let problem = |value: String, problem: String| ConfigError {
        source_name: web.link_keys_source.clone(),
        key: match web.link_keys {
            LinkKeySource::Given(_) => "web.link_keys".into(),
            LinkKeySource::File(_) => "web.link_keys_file".into(),
        },
        value,
        problem,
    };
    let text = match &web.link_keys {
        LinkKeySource::Given(keys) => keys.expose().to_owned(),
        LinkKeySource::File(path) => {
            let shown = format!("\"{}\"", path.display());
            if !path.exists() {
                create_key_file(path).map_err(|e| {
                    problem(
                        shown.clone(),
                        format!("cannot create the link key file: {e}"),
                    )
                })?;
            }
            std::fs::read_to_string(path).map_err(|e| {
                problem(shown.clone(), format!("cannot read the link key file: {e}"))
            })?
        }
    };
    parse_keys(&text)
        .map(|keys| LinkSigner::new(keys).expect("parse_keys returns a key"))
        .map_err(|p| problem("[redacted]".into(), p))
}

/// How emails link to the pages: `web`'s public URL, the signer and the links' lifetime.
pub fn links(web: &WebSettings) -> Result<Links, ConfigError> {
    Ok(Links::new(
        &web.public_url,
        signer(web)?,
        chrono::TimeDelta::days(i64::from(web.link_ttl_days)),
    ))
}

/// A key file with one random key, readable by its owner only.
fn create_key_file(path: &Path) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| std::io::Error::other(e.to_string()))?;
    let line = key_line("k1", &secret);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path)?;
    writeln!(
        file,
        "# subsave link keys: ID:SECRET, one per line; the first signs, all verify.\n# Every instance must share this file. Rotate by adding a new first line; drop an old\n# line once the links it signed have expired (web.link_ttl_days)."
    )?;
    writeln!(file, "{line}")
}
