//! The record files administrators keep and import — the roster, the equipment register — as a
//! spreadsheet exports them (CSV: a BOM, quoting, columns in any order, blank rows) or as TOML.
//! One reader for both, so their errors read alike and name the row.

use std::collections::HashMap;
use std::path::Path;

/// A record file's format, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Toml,
}

impl Format {
    /// `.csv` or `.toml`; otherwise an error saying what each holds (`columns` of the CSV,
    /// the TOML's `[[table]]`).
    pub fn of(path: &Path, columns: &str, table: &str) -> Result<Format, String> {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("csv") => Ok(Format::Csv),
            Some(e) if e.eq_ignore_ascii_case("toml") => Ok(Format::Toml),
            _ => Err(format!(
                "{}: give a .csv (columns {columns}) or a .toml ([[{table}]] tables)",
                path.display()
            )),
        }
    }
}

/// One CSV row: its number in the file (the header is row 1) and its non-empty cells.
#[derive(Debug)]
pub struct Row {
    pub number: usize,
    cells: HashMap<String, String>,
}

impl Row {
    /// The cell under `column`, trimmed; None when empty or absent.
    pub fn get(&self, column: &str) -> Option<String> {
        self.cells.get(column).cloned()
    }
}

/// Reads CSV text whose header names columns among `known` (any case, any order) and includes
/// every one of `required`. Blank rows are skipped.
pub fn read_csv(text: &str, known: &[&str], required: &[&str]) -> Result<Vec<Row>, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format!("header row: {e}"))?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    if let Some(unknown) = headers.iter().find(|h| !known.contains(&h.as_str())) {
        return Err(format!(
            "header row: unknown column {unknown:?} (known: {})",
            known.join(", ")
        ));
    }
    if required.iter().any(|r| !headers.iter().any(|h| h == r)) {
        return Err(format!(
            "header row: needs the columns {} (found {})",
            required.join(", "),
            headers.join(",")
        ));
    }
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let number = i + 2;
        let record = record.map_err(|e| format!("row {number}: {e}"))?;
        let cells: HashMap<String, String> = headers
            .iter()
            .zip(record.iter())
            .filter(|(_, v)| !v.is_empty())
            .map(|(h, v)| (h.clone(), v.to_string()))
            .collect();
        if !cells.is_empty() {
            rows.push(Row { number, cells });
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spreadsheet_export_reads_and_mistakes_name_the_header() {
        let rows = read_csv(
            "\u{feff}ID, Name\n1,\"a, b\"\n,\n2,\n",
            &["id", "name"],
            &["id"],
        )
        .unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].number, rows[0].get("name").as_deref()),
            (2, Some("a, b"))
        );
        assert_eq!((rows[1].number, rows[1].get("name")), (4, None));
        assert!(read_csv("id,rank\n", &["id"], &["id"])
            .unwrap_err()
            .contains("unknown column \"rank\""));
        assert!(read_csv("name\n", &["id", "name"], &["id"])
            .unwrap_err()
            .contains("needs the columns id"));
        assert!(Format::of(Path::new("x.xlsx"), "a,b", "item")
            .unwrap_err()
            .contains("[[item]]"));
        assert_eq!(Format::of(Path::new("/etc/R.CSV"), "", ""), Ok(Format::Csv));
    }
}
