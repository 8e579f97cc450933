//! Central's equipment commands (signed and checked by the command core): `equipment.set` (the
//! whole register), `equipment.checkout`, `equipment.checkin`, `equipment.mark` (fault, lost,
//! back in service, the next maintenance date). The CLI calls the same [`Equipment`] methods.

use super::model::State;
use super::register::Item;
use super::{Equipment, EquipmentError, Mark};
use crate::commands::handlers::text_arg as text;
use crate::commands::handlers::{CommandContext, Handler, Outcome, Registry, Running};
use serde_json::{Map, Value};
use stationd_proto::staffing::presence::Source;
use std::sync::Arc;

/// Adds the equipment commands to `registry`.
pub fn register(registry: &mut Registry, equipment: &Arc<Equipment>) {
    for name in [
        "equipment.set",
        "equipment.checkout",
        "equipment.checkin",
        "equipment.mark",
    ] {
        registry.add(Arc::new(EquipmentCommand {
            name,
            equipment: equipment.clone(),
        }));
    }
}

struct EquipmentCommand {
    name: &'static str,
    equipment: Arc<Equipment>,
}

impl Handler for EquipmentCommand {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run<'a>(&'a self, args: &'a Map<String, Value>, _ctx: &'a CommandContext) -> Running<'a> {
        Box::pin(async move {
            let r = if self.name == "equipment.set" {
                match args.get("items").map(|v| serde_json::from_value::<Vec<Item>>(v.clone())) {
                    Some(Ok(items)) => self.equipment.set_register(items, "central").await,
                    Some(Err(e)) => return Outcome::BadArgs(format!("args.items: {e}")),
                    None => {
                        return Outcome::BadArgs(
                            "args.items (the whole register: [{id, class, name, serial, device, car, next_maintenance}, …]) is required".into(),
                        )
                    }
                }
            } else {
                let Some(item) = text(args, "item") else {
                    return Outcome::BadArgs("args.item (the item's id) is required".into());
                };
                let state = match self.name {
                    "equipment.checkout" => State::CheckedOut,
                    "equipment.checkin" => State::InService,
                    _ => match text(args, "state").as_deref().map(State::from_name) {
                        Some(Some(s)) => s,
                        _ => {
                            return Outcome::BadArgs(
                                "args.state (in_service, fault or lost) is required".into(),
                            )
                        }
                    },
                };
                self.equipment
                    .mark(Mark {
                        item,
                        state,
                        to: text(args, "to"),
                        note: text(args, "note").unwrap_or_default(),
                        next_maintenance: text(args, "next_maintenance"),
                        by: "central".into(),
                        source: Source::Central,
                    })
                    .await
            };
            match r {
                Ok(v) => Outcome::Done(v),
                Err(EquipmentError::Invalid(why)) => Outcome::BadArgs(why),
                Err(e) => Outcome::Failed {
                    reason: e.to_string(),
                    result: None,
                },
            }
        })
    }
}
