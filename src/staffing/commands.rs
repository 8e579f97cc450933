//! Central's staffing commands (signed and checked by the command core like every command):
//! `roster.set`, `duty.set`, `crew.set`, `roster.override`, `roster.override_remove`. Each
//! hands its arguments to [`Staffing`]'s methods, the same ones the CLI uses.

use super::model::{Override, OverrideKind};
use super::roster::Person;
use super::{Staffing, StaffingError};
use crate::commands::handlers::{CommandContext, Handler, Outcome, Registry, Running};
use serde_json::{json, Map, Value};
use stationd_proto::staffing::presence::Source;
use std::sync::Arc;

/// Adds the staffing commands to `registry`.
pub fn register(registry: &mut Registry, staffing: &Arc<Staffing>) {
    for name in [
        "roster.set",
        "duty.set",
        "crew.set",
        "roster.override",
        "roster.override_remove",
    ] {
        registry.add(Arc::new(StaffingCommand {
            name,
            staffing: staffing.clone(),
        }));
    }
}

struct StaffingCommand {
    name: &'static str,
    staffing: Arc<Staffing>,
}

impl Handler for StaffingCommand {
    fn name(&self) -> &'static str {
        self.name
    }

    fn run<'a>(&'a self, args: &'a Map<String, Value>, _ctx: &'a CommandContext) -> Running<'a> {
        Box::pin(async move {
            let r = match self.name {
                "roster.set" => self.roster_set(args).await,
                "duty.set" => self.duty_set(args).await,
                "crew.set" => self.crew_set(args).await,
                "roster.override" => self.add_override(args).await,
                _ => self.remove_override(args).await,
            };
            match r {
                Ok(v) => Outcome::Done(v),
                Err(Refusal::Args(why)) | Err(Refusal::Staffing(StaffingError::Invalid(why))) => {
                    Outcome::BadArgs(why)
                }
                Err(Refusal::Staffing(e)) => Outcome::Failed {
                    reason: e.to_string(),
                    result: None,
                },
            }
        })
    }
}

enum Refusal {
    Args(String),
    Staffing(StaffingError),
}

impl From<StaffingError> for Refusal {
    fn from(e: StaffingError) -> Refusal {
        Refusal::Staffing(e)
    }
}

fn text<'a>(args: &'a Map<String, Value>, key: &str, what: &str) -> Result<&'a str, Refusal> {
    args.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| Refusal::Args(format!("args.{key} ({what}) is required")))
}

fn time(args: &Map<String, Value>, key: &str) -> Result<Option<i64>, Refusal> {
    match args.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => crate::event::parse_ts_ms(s).map(Some).ok_or_else(|| {
            Refusal::Args(format!(
                "args.{key} {s:?} is not a time like \"2026-12-02T08:00:00+08:00\""
            ))
        }),
        Some(_) => Err(Refusal::Args(format!(
            "args.{key} must be a time string like \"2026-12-02T08:00:00+08:00\""
        ))),
    }
}

impl StaffingCommand {
    /// `{people: [{id, name, role, team, card}, …]}`: the whole roster, replacing the one held.
    async fn roster_set(&self, args: &Map<String, Value>) -> Result<Value, Refusal> {
        let people = args.get("people").ok_or_else(|| {
            Refusal::Args(
                "args.people (the whole roster: [{id, name, role, team, card}, …]) is required"
                    .into(),
            )
        })?;
        let people: Vec<Person> = serde_json::from_value(people.clone())
            .map_err(|e| Refusal::Args(format!("args.people: {e}")))?;
        Ok(self.staffing.set_roster(people, "central").await?)
    }

    /// `{person, present, note?}`.
    async fn duty_set(&self, args: &Map<String, Value>) -> Result<Value, Refusal> {
        let person = text(args, "person", "the person's id")?;
        let present = args
            .get("present")
            .and_then(Value::as_bool)
            .ok_or_else(|| Refusal::Args("args.present (true or false) is required".into()))?;
        let note = args.get("note").and_then(Value::as_str).unwrap_or("");
        let detail = if note.is_empty() {
            "central".to_string()
        } else {
            format!("central: {note}")
        };
        let p = self
            .staffing
            .duty(person, present, Source::Central, detail)
            .await?;
        Ok(super::payload::duty_answer(&p))
    }

    /// `{car, members: [ids]}`.
    async fn crew_set(&self, args: &Map<String, Value>) -> Result<Value, Refusal> {
        let car = text(args, "car", "the car's id")?;
        let members: Vec<String> = match args.get("members") {
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|_| Refusal::Args("args.members must be a list of person ids".into()))?,
            None => {
                return Err(Refusal::Args(
                    "args.members (person ids; [] stands the crew down) is required".into(),
                ))
            }
        };
        let c = self.staffing.set_crew(car, members, "command").await?;
        Ok(super::payload::crew_answer(&c))
    }

    /// `{person, kind: sick|leave|swap, team?, from?, until}`.
    async fn add_override(&self, args: &Map<String, Value>) -> Result<Value, Refusal> {
        let person = text(args, "person", "the person's id")?;
        let kind_text = text(args, "kind", "sick, leave or swap")?;
        let kind = OverrideKind::from_name(kind_text).ok_or_else(|| {
            Refusal::Args(format!(
                "args.kind {kind_text:?} is not one of sick, leave, swap"
            ))
        })?;
        let from_ms = time(args, "from")?.unwrap_or_else(crate::clock::unix_ms);
        let until_ms = time(args, "until")?
            .ok_or_else(|| Refusal::Args("args.until (when it ends) is required".into()))?;
        let id = self
            .staffing
            .add_override(Override {
                id: 0,
                person: person.to_string(),
                kind,
                team: args.get("team").and_then(Value::as_str).map(str::to_string),
                from_ms,
                until_ms,
                note: args
                    .get("note")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                by: "central".into(),
            })
            .await?;
        Ok(json!({"id": id}))
    }

    /// `{id}`.
    async fn remove_override(&self, args: &Map<String, Value>) -> Result<Value, Refusal> {
        let id = args
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| Refusal::Args("args.id (the exception's number) is required".into()))?;
        self.staffing.remove_override(id, "central").await?;
        Ok(json!({"id": id, "removed": true}))
    }
}
