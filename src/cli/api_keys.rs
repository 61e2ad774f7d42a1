//! `subsave api-keys create|list|revoke`.

use std::io::Write;

use clap::Subcommand;

use super::{CliError, JsonFlag, outln, rfc3339, write_json};
use crate::app::{App, api_keys};
use crate::core::model::Scope;

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Create a key for the HTTP API and print it, once: only its hash is kept.
    Create {
        /// What uses the key, e.g. storefront (it names the key in events: api:storefront).
        #[arg(long)]
        name: String,
        /// read, write (read and change customers, subscriptions, coupons) or admin (all).
        #[arg(long, value_parser = parse_scope)]
        scope: Scope,
        #[command(flatten)]
        output: JsonFlag,
    },
    /// List the keys: names, scopes, first characters, created, last used, revoked.
    List(JsonFlag),
    /// Revoke a key by name: requests with it get 401 from now on.
    Revoke {
        /// The key's name.
        name: String,
    },
}

fn parse_scope(input: &str) -> Result<Scope, String> {
    input.parse()
}

pub(super) async fn run(
    app: &App,
    command: ApiKeysCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        ApiKeysCommand::Create {
            name,
            scope,
            output,
        } => {
            let created = api_keys::create(app, &name, scope).await?;
            if output.json {
                return write_json(out, &created);
            }
            outln!(
                out,
                "API key \"{}\" ({}) created. It is shown this once; store it now:\n{}",
                created.api_key.name,
                created.api_key.scope,
                created.key
            );
        }
        ApiKeysCommand::List(output) => {
            let keys = api_keys::list(app).await?;
            if output.json {
                return write_json(out, &keys);
            }
            outln!(
                out,
                "{:<20} {:<6} {:<11} {:<21} {:<21} revoked",
                "name",
                "scope",
                "key",
                "created",
                "last used"
            );
            for k in keys {
                outln!(
                    out,
                    "{:<20} {:<6} {:<11} {:<21} {:<21} {}",
                    k.name,
                    k.scope,
                    format!("{}…", k.key_prefix),
                    rfc3339(k.created_at),
                    k.last_used_at.map(rfc3339).unwrap_or_else(|| "-".into()),
                    k.revoked_at.map(rfc3339).unwrap_or_else(|| "-".into())
                );
            }
        }
        ApiKeysCommand::Revoke { name } => {
            let key = api_keys::revoke(app, &name).await?;
            outln!(out, "API key \"{}\" revoked", key.name);
        }
    }
    Ok(())
}
