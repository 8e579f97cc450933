//! The station's people: who they are, their role and team, and the JT/T 808 IC card they sign
//! in at a car's terminal with. Read from the files administrators keep (CSV from a
//! spreadsheet, or TOML) for `stationd roster import`, or from central's `roster.set`; checked
//! the same way either way, with errors naming the row.

use crate::records::read_csv;
pub use crate::records::Format;
use serde::{Deserialize, Serialize};
use stationd_proto::staffing::crew::Role;

/// One person on the roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    /// Police or auxiliary number (`P-0417`, `A-1203`): what every payload names them by.
    pub id: String,
    /// Their name, kept on the box (it leaves only with `[staffing] share_names = true`).
    #[serde(default)]
    pub name: String,
    pub role: Role,
    /// Their team, as `[staffing] teams` names it; none for someone outside the rotation.
    #[serde(default)]
    pub team: Option<String>,
    /// The qualification-certificate code on their JT/T 808 IC card, when they drive.
    #[serde(default)]
    pub card: Option<String>,
}

/// The most people a roster may hold (a station has ~15; a district's import may be larger).
pub const MAX_PEOPLE: usize = 2_000;

/// The roster's CSV columns, as `Format::of` names them.
pub const COLUMNS: &str = "id,name,role,team[,card]";

/// Reads a roster file's text.
pub fn parse(text: &str, format: Format) -> Result<Vec<Person>, String> {
    match format {
        Format::Csv => parse_csv(text),
        Format::Toml => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct File {
                #[serde(default)]
                person: Vec<Person>,
            }
            let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
            Ok(file.person)
        }
    }
}

fn parse_csv(text: &str) -> Result<Vec<Person>, String> {
    let rows = read_csv(
        text,
        &["id", "name", "role", "team", "card"],
        &["id", "role"],
    )?;
    rows.into_iter()
        .map(|row| {
            let role = parse_role(&row.get("role").unwrap_or_default())
                .map_err(|e| format!("row {}: {e}", row.number))?;
            Ok(Person {
                id: row.get("id").unwrap_or_default(),
                name: row.get("name").unwrap_or_default(),
                role,
                team: row.get("team"),
                card: row.get("card"),
            })
        })
        .collect()
}

/// `officer`, `auxiliary` or `leader` (any case).
pub fn parse_role(text: &str) -> Result<Role, String> {
    match text.to_ascii_lowercase().as_str() {
        "officer" => Ok(Role::Officer),
        "auxiliary" => Ok(Role::Auxiliary),
        "leader" => Ok(Role::Leader),
        other => Err(format!(
            "role {other:?} is not one of officer, auxiliary, leader"
        )),
    }
}

/// The role as the contract says it.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Officer => "officer",
        Role::Auxiliary => "auxiliary",
        Role::Leader => "leader",
    }
}

/// Checks a whole roster: ids well formed and unique, teams known (when the station has a
/// rotation), cards unique.
pub fn check(people: &[Person], teams: Option<&[String]>) -> Result<(), String> {
    if people.len() > MAX_PEOPLE {
        return Err(format!(
            "{} people: a roster holds at most {MAX_PEOPLE}",
            people.len()
        ));
    }
    let mut ids = std::collections::BTreeSet::new();
    let mut cards = std::collections::BTreeMap::new();
    for (i, p) in people.iter().enumerate() {
        let at = format!("person {} ({:?})", i + 1, p.id);
        if !crate::event::is_valid_device_id(&p.id) {
            return Err(format!(
                "{at}: id must be 1-64 characters of [A-Za-z0-9_.-]"
            ));
        }
        if !ids.insert(p.id.as_str()) {
            return Err(format!("{at}: listed twice"));
        }
        if p.name.chars().count() > 64 {
            return Err(format!("{at}: name longer than 64 characters"));
        }
        if let (Some(team), Some(teams)) = (&p.team, teams) {
            if !teams.contains(team) {
                return Err(format!(
                    "{at}: team {team:?} is not one of the station's teams ({})",
                    teams.join(", ")
                ));
            }
        }
        if let Some(card) = &p.card {
            if card.is_empty() || card.len() > 20 {
                return Err(format!("{at}: card must be 1-20 characters"));
            }
            if let Some(other) = cards.insert(card.as_str(), p.id.as_str()) {
                return Err(format!("{at}: card {card:?} is also {other}'s"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spreadsheet_export_reads_with_its_quirks() {
        // A BOM, quoted names with commas, columns in another order, a blank row, spaces.
        let text = "\u{feff}ID,Role,Name,Team,Card\nP-0417, officer ,\"Li, Wei\",1,440301198001\n\nA-1203,Auxiliary,Zhang San,1,\nL-0001,leader,王队长,,\n";
        let people = parse(text, Format::Csv).unwrap();
        assert_eq!(people.len(), 3);
        assert_eq!(people[0].name, "Li, Wei");
        assert_eq!(people[0].role, Role::Officer);
        assert_eq!(people[0].card.as_deref(), Some("440301198001"));
        assert_eq!(people[1].card, None);
        assert_eq!(people[2].team, None);
        assert_eq!(people[2].name, "王队长");
        check(&people, Some(&["1".into(), "2".into()])).unwrap();
    }

    #[test]
    fn mistakes_name_the_row() {
        let bad_role = "id,name,role,team\nP-1,A,officer,1\nP-2,B,chief,1\n";
        assert_eq!(
            parse(bad_role, Format::Csv).unwrap_err(),
            "row 3: role \"chief\" is not one of officer, auxiliary, leader"
        );
        assert!(parse("id,name\nP-1,A\n", Format::Csv)
            .unwrap_err()
            .contains("needs the columns id, role"));
        assert!(parse("id,role,rank\nP-1,officer,3\n", Format::Csv)
            .unwrap_err()
            .contains("unknown column \"rank\""));
        let twice = parse("id,role\nP-1,officer\nP-1,auxiliary\n", Format::Csv).unwrap();
        assert_eq!(
            check(&twice, None).unwrap_err(),
            "person 2 (\"P-1\"): listed twice"
        );
        let team = parse("id,role,team\nP-1,officer,9\n", Format::Csv).unwrap();
        assert!(check(&team, Some(&["1".into()]))
            .unwrap_err()
            .contains("team \"9\" is not one of the station's teams (1)"));
        let spaces = parse("id,role\nP 1,officer\n", Format::Csv).unwrap();
        assert!(check(&spaces, None).unwrap_err().contains("id must be"));
        let cards = parse(
            "id,role,card\nP-1,officer,C1\nP-2,officer,C1\n",
            Format::Csv,
        )
        .unwrap();
        assert!(check(&cards, None)
            .unwrap_err()
            .contains("card \"C1\" is also P-1's"));
    }

    #[test]
    fn toml_rosters_say_the_same() {
        let text = r#"
[[person]]
id = "P-0417"
name = "Li Wei"
role = "officer"
team = "1"
card = "440301198001"
[[person]]
id = "A-1203"
role = "auxiliary"
"#;
        let people = parse(text, Format::Toml).unwrap();
        assert_eq!(people[1].name, "");
        assert_eq!(people[1].role, Role::Auxiliary);
        assert!(parse(
            "[[person]]\nid = \"x\"\nrole = \"officer\"\nrank = 1\n",
            Format::Toml
        )
        .unwrap_err()
        .contains("rank"));
    }
}
