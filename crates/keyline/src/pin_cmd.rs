//! `keyline pin list|add|remove`.

use keyline_core::{Home, PinStore};
use serde_json::json;

use crate::cli::PinCommand;
use crate::error::Result;
use crate::output::emit;

pub(crate) async fn run(home: &Home, command: PinCommand, json: bool) -> Result<()> {
    home.ensure()?;
    let store = PinStore::open(&home.db_path()).await?;
    match command {
        PinCommand::List { protocol } => {
            let pins = store.list(protocol.as_deref()).await?;
            let rows: Vec<_> = pins
                .iter()
                .map(|p| {
                    json!({
                        "protocol": p.protocol,
                        "peer": p.peer,
                        "key": hex::encode(&p.key),
                        "fingerprint": p.fingerprint(),
                        "first_seen": p.first_seen,
                        "note": p.note,
                    })
                })
                .collect();
            emit(json, &json!(rows), || {
                if pins.is_empty() {
                    return "no pinned peers".to_string();
                }
                pins.iter()
                    .map(|p| {
                        let note = p
                            .note
                            .as_deref()
                            .map(|n| format!("  # {n}"))
                            .unwrap_or_default();
                        format!("{:<6} {:<28} {}{note}", p.protocol, p.peer, p.fingerprint())
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        PinCommand::Add {
            protocol,
            peer,
            key,
            note,
            replace,
        } => {
            let key = keyline_core::keys::parse_ed25519_public(&key)?;
            store
                .add(&protocol, &peer, &key, note.as_deref(), replace)
                .await?;
            let fingerprint = keyline_core::keys::fingerprint(&key);
            emit(
                json,
                &json!({"pinned": {"protocol": protocol, "peer": peer, "fingerprint": fingerprint}}),
                || format!("pinned {protocol} {peer} {fingerprint}"),
            );
        }
        PinCommand::Remove { protocol, peer } => {
            let removed = store.remove(&protocol, &peer).await?;
            emit(json, &json!({"removed": removed}), || {
                if removed {
                    format!("removed {protocol} {peer}")
                } else {
                    format!("no pin for {protocol} {peer}")
                }
            });
        }
    }
    Ok(())
}
