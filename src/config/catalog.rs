//! `[catalog]`: the product catalog, from the file it names or the built-in one, parsed into the
//! core's `Catalog` (every price, discount and rule checked there).

use figment::Figment;
use figment::providers::{Format, Toml};
use figment::value::magic::RelativePathBuf;
use serde::Deserialize;

use super::{ConfigError, DEFAULT_CATALOG, DEFAULT_CATALOG_NAME, Layers, from_figment};
use crate::core::catalog::{Catalog, RawCatalog};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCatalogRef {
    pub(super) file: Option<RelativePathBuf>,
}

/// `[catalog]`: where the catalog came from (a path, or the built-in one's name) and the
/// catalog.
pub(super) fn parse(l: &Layers, raw: RawCatalogRef) -> Result<(String, Catalog), ConfigError> {
    let (catalog_source, catalog) = match raw.file.as_ref().map(|p| p.relative()) {
        Some(path) => {
            if !path.is_file() {
                return Err(l.field(
                    "catalog.file",
                    &path.display().to_string(),
                    "no such file: point it at a catalog TOML like config/catalog.toml, or remove it to use the built-in catalog".into(),
                ));
            }
            let name = path.display().to_string();
            (
                name.clone(),
                load_catalog(Figment::from(Toml::file_exact(path)), &name)?,
            )
        }
        None => (
            DEFAULT_CATALOG_NAME.to_owned(),
            load_catalog(
                Figment::from(Toml::string(DEFAULT_CATALOG)),
                DEFAULT_CATALOG_NAME,
            )?,
        ),
    };

    Ok((catalog_source, catalog))
}

/// Parses a catalog from TOML text (the embedded default, or a test's own).
pub fn load_catalog_text(text: &str) -> Result<Catalog, ConfigError> {
    load_catalog(Figment::from(Toml::string(text)), DEFAULT_CATALOG_NAME)
}

fn load_catalog(figment: Figment, name: &str) -> Result<Catalog, ConfigError> {
    let raw: RawCatalog = figment.extract().map_err(|e| from_figment(&figment, e))?;
    Catalog::from_raw(raw).map_err(|f| ConfigError::from_field(name, f))
}
