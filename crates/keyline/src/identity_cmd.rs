//! `keyline keygen`, `keyline id`, `keyline import`.

use std::io::Read;

use keyline_core::{Home, Identity, ImportSource};
use serde_json::json;

use crate::cli::ImportCommand;
use crate::error::{CliError, Result};
use crate::output::emit;

/// Creates the identity; refuses to replace one without `--force`.
pub(crate) fn keygen(home: &Home, force: bool, json: bool) -> Result<()> {
    home.ensure()?;
    let identity = Identity::generate()?;
    identity.save(home.identity_path(), force)?;
    let ids = identity.public();
    let path = home.identity_path();
    emit(json, &json!({"created": path, "public": ids}), || {
        format!(
            "created {} (mode 0600)\n{}",
            path.display(),
            describe(&identity)
        )
    });
    Ok(())
}

/// Prints the public keys.
pub(crate) fn id(home: &Home, json: bool) -> Result<()> {
    let identity = Identity::load(home.identity_path())?;
    emit(json, &json!(identity.public()), || describe(&identity));
    Ok(())
}

/// Loads the identity, creating it (and saying so on stderr) on first use.
pub(crate) fn load_or_create(home: &Home) -> Result<Identity> {
    let path = home.identity_path();
    if path.exists() {
        return Ok(Identity::load(&path)?);
    }
    home.ensure()?;
    let identity = Identity::generate()?;
    identity.save(&path, false)?;
    tracing::info!(path = %path.display(), ssb_id = %identity.public().ssb_id, "created a new identity");
    Ok(identity)
}

pub(crate) fn import(home: &Home, what: ImportCommand, json: bool) -> Result<()> {
    let path = home.identity_path();
    let identity = match what {
        ImportCommand::Ssb { file } => {
            Identity::import_into_file(&path, ImportSource::SsbSecretFile(&file))?
        }
        ImportCommand::Nsec { key } => {
            let key = if key == "-" {
                read_stdin_secret()?
            } else {
                zeroize::Zeroizing::new(key)
            };
            Identity::import_into_file(&path, ImportSource::Nsec(key.trim()))?
        }
    };
    emit(
        json,
        &json!({"updated": path, "public": identity.public()}),
        || format!("updated {}\n{}", path.display(), describe(&identity)),
    );
    Ok(())
}

fn read_stdin_secret() -> Result<zeroize::Zeroizing<String>> {
    let mut text = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut text)
        .map_err(CliError::io("reading the key from standard input"))?;
    Ok(text)
}

fn describe(identity: &Identity) -> String {
    let ids = identity.public();
    format!(
        "ssb id      {}\ned25519     {}\n            {}\nnostr       {}\nsecp256k1   {}\n            {}",
        ids.ssb_id,
        ids.ed25519_hex,
        ids.ed25519_fingerprint,
        ids.npub,
        ids.secp256k1_hex,
        ids.secp256k1_fingerprint
    )
}
