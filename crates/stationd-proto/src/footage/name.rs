//! The dock's file naming pattern: what a recorder's file name says about it. GA/T 947 gives
//! no public naming rule and vendors differ (PROTOCOLS §4), so the pattern is configuration:
//!
//! `{recorder}_{officer}_{start:%Y%m%d%H%M%S}.{ext}`
//!
//! - `{recorder}`, `{officer}`, `{ext}`: a non-empty run of characters, as short as lets the
//!   rest match (the text after a field says where it ends); `{*}` skips such a run;
//! - `{start:FORMAT}`: the recording's start in local time, FORMAT made of `%Y` (4 digits),
//!   `%m`, `%d`, `%H`, `%M`, `%S` (2 digits each) and literal characters;
//! - anything else is literal and must appear as written (case-sensitive).
//!
//! Two fields may not touch (nothing would say where one ends); each field at most once.

/// A pattern, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameTemplate {
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    Field(Field),
    Time(Vec<TimePart>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Recorder,
    Officer,
    Ext,
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimePart {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Char(char),
}

/// A local date and time as a name writes it: year, month, day, hour, minute, second.
pub type LocalTime = (i32, u8, u8, u8, u8, u8);

/// What a name said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameFields {
    pub recorder: Option<String>,
    pub officer: Option<String>,
    pub ext: Option<String>,
    /// The start as written (local time): year, month, day, hour, minute, second.
    pub start: Option<LocalTime>,
}

/// Names longer than this are not matched (a file name is at most 255 bytes).
pub const MAX_NAME: usize = 255;

impl NameTemplate {
    pub fn parse(pattern: &str) -> Result<NameTemplate, String> {
        let mut tokens = Vec::new();
        let mut rest = pattern;
        let mut literal = String::new();
        let mut seen = Vec::new();
        while let Some(c) = rest.chars().next() {
            if c == '}' {
                return Err(format!("a '}}' without its '{{' in {pattern:?}"));
            }
            if c != '{' {
                literal.push(c);
                rest = &rest[c.len_utf8()..];
                continue;
            }
            let end = rest
                .find('}')
                .ok_or_else(|| format!("a '{{' without its '}}' in {pattern:?}"))?;
            let inner = &rest[1..end];
            rest = &rest[end + 1..];
            if !literal.is_empty() {
                tokens.push(Token::Literal(std::mem::take(&mut literal)));
            }
            let token = match inner.split_once(':') {
                Some(("start", format)) => Token::Time(time_format(format)?),
                None => Token::Field(match inner {
                    "recorder" => Field::Recorder,
                    "officer" => Field::Officer,
                    "ext" => Field::Ext,
                    "*" => Field::Skip,
                    "start" => {
                        return Err(
                            "{start} needs its format, e.g. {start:%Y%m%d%H%M%S}".to_string()
                        )
                    }
                    other => {
                        return Err(format!(
                            "unknown field {{{other}}}: the fields are {{recorder}}, {{officer}}, {{start:FORMAT}}, {{ext}} and {{*}}"
                        ))
                    }
                }),
                Some((other, _)) => {
                    return Err(format!("unknown field {{{other}:…}}: only {{start:FORMAT}} takes a format"))
                }
            };
            let key = match &token {
                Token::Field(Field::Skip) => None,
                Token::Field(f) => Some(format!("{f:?}")),
                Token::Time(_) => Some("start".into()),
                Token::Literal(_) => None,
            };
            if let Some(k) = key {
                if seen.contains(&k) {
                    return Err(format!(
                        "{{{}}} appears twice in {pattern:?}",
                        k.to_lowercase()
                    ));
                }
                seen.push(k);
            }
            if matches!(token, Token::Field(_)) && matches!(tokens.last(), Some(Token::Field(_))) {
                return Err(format!(
                    "two fields touch in {pattern:?}: put a separator between them so a name says where one ends"
                ));
            }
            tokens.push(token);
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        if tokens.is_empty() {
            return Err("the name pattern is empty".into());
        }
        Ok(NameTemplate { tokens })
    }

    /// What `name` (a file name, not a path) says, or None when it does not fit the pattern.
    pub fn read(&self, name: &str) -> Option<NameFields> {
        if name.len() > MAX_NAME {
            return None;
        }
        let mut fields = NameFields::default();
        let mut failed = std::collections::HashSet::new();
        let m = Matcher {
            tokens: &self.tokens,
            name,
        };
        m.read_at(0, 0, &mut fields, &mut failed).then_some(fields)
    }
}

fn time_format(format: &str) -> Result<Vec<TimePart>, String> {
    let mut parts = Vec::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            if c == '{' || c == '}' {
                return Err(format!("braces inside the time format {format:?}"));
            }
            parts.push(TimePart::Char(c));
            continue;
        }
        parts.push(match chars.next() {
            Some('Y') => TimePart::Year,
            Some('m') => TimePart::Month,
            Some('d') => TimePart::Day,
            Some('H') => TimePart::Hour,
            Some('M') => TimePart::Minute,
            Some('S') => TimePart::Second,
            other => {
                return Err(format!(
                    "%{} in the time format {format:?}: only %Y %m %d %H %M %S are read",
                    other.map(String::from).unwrap_or_default()
                ))
            }
        });
    }
    if !parts.contains(&TimePart::Year)
        || !parts.contains(&TimePart::Month)
        || !parts.contains(&TimePart::Day)
    {
        return Err(format!(
            "the time format {format:?} needs at least %Y, %m and %d"
        ));
    }
    Ok(parts)
}

/// Matches tokens against a name: lazy fields with backtracking, each (token, position) that
/// failed remembered, so a pattern of many fields stays linear-ish on a 255-byte name (the
/// fuzzer's worst cases) instead of exponential.
struct Matcher<'a> {
    tokens: &'a [Token],
    name: &'a str,
}

impl Matcher<'_> {
    fn read_at(
        &self,
        ti: usize,
        pos: usize,
        out: &mut NameFields,
        failed: &mut std::collections::HashSet<(usize, usize)>,
    ) -> bool {
        let input = &self.name[pos..];
        let Some(token) = self.tokens.get(ti) else {
            return input.is_empty();
        };
        if failed.contains(&(ti, pos)) {
            return false;
        }
        let ok = match token {
            Token::Literal(l) => {
                input.starts_with(l.as_str()) && self.read_at(ti + 1, pos + l.len(), out, failed)
            }
            Token::Time(parts) => match read_time(parts, input) {
                Some((value, after)) => {
                    let before = out.start;
                    out.start = Some(value);
                    let ok = self.read_at(ti + 1, self.name.len() - after.len(), out, failed);
                    if !ok {
                        out.start = before;
                    }
                    ok
                }
                None => false,
            },
            Token::Field(f) => {
                // The shortest non-empty run that lets the rest match; never across a '/'.
                let mut ok = false;
                for (i, c) in input.char_indices() {
                    if c == '/' {
                        break;
                    }
                    let end = i + c.len_utf8();
                    let saved = out.clone();
                    set(out, *f, &input[..end]);
                    if self.read_at(ti + 1, pos + end, out, failed) {
                        ok = true;
                        break;
                    }
                    *out = saved;
                }
                ok
            }
        };
        if !ok {
            failed.insert((ti, pos));
        }
        ok
    }
}

fn set(out: &mut NameFields, f: Field, value: &str) {
    let v = Some(value.to_string());
    match f {
        Field::Recorder => out.recorder = v,
        Field::Officer => out.officer = v,
        Field::Ext => out.ext = v,
        Field::Skip => {}
    }
}

fn read_time<'a>(parts: &[TimePart], input: &'a str) -> Option<(LocalTime, &'a str)> {
    let (mut y, mut mo, mut d, mut h, mut mi, mut s) = (0i32, 0u8, 0u8, 0u8, 0u8, 0u8);
    let mut rest = input;
    let digits = |rest: &mut &'a str, n: usize| -> Option<u32> {
        let head = rest.get(..n)?;
        if !head.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *rest = &rest[n..];
        head.parse().ok()
    };
    for p in parts {
        match p {
            TimePart::Year => y = digits(&mut rest, 4)? as i32,
            TimePart::Month => mo = digits(&mut rest, 2)? as u8,
            TimePart::Day => d = digits(&mut rest, 2)? as u8,
            TimePart::Hour => h = digits(&mut rest, 2)? as u8,
            TimePart::Minute => mi = digits(&mut rest, 2)? as u8,
            TimePart::Second => s = digits(&mut rest, 2)? as u8,
            TimePart::Char(c) => rest = rest.strip_prefix(*c)?,
        }
    }
    let valid = (1..=12).contains(&mo) && (1..=31).contains(&d) && h < 24 && mi < 60 && s < 61;
    valid.then_some(((y, mo, d, h, mi, s), rest))
}

/// The start as Unix milliseconds, the name's local time being `utc_offset_min` minutes ahead
/// of UTC (China: +480). None for a date that does not exist (31 February).
pub fn start_unix_ms((y, mo, d, h, mi, s): LocalTime, utc_offset_min: i32) -> Option<i64> {
    let month = time::Month::try_from(mo).ok()?;
    let date = time::Date::from_calendar_date(y, month, d).ok()?;
    let t = time::Time::from_hms(h, mi, s.min(59)).ok()?;
    let local = time::PrimitiveDateTime::new(date, t).assume_utc();
    Some(local.unix_timestamp() * 1000 - i64::from(utc_offset_min) * 60_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE: &str = "{recorder}_{officer}_{start:%Y%m%d%H%M%S}.{ext}";

    #[test]
    fn the_issue_pattern_reads_a_name_and_refuses_others() {
        let t = NameTemplate::parse(ISSUE).unwrap();
        let f = t.read("DSJ-A1-0001_P-0417_20261201081502.MP4").unwrap();
        assert_eq!(f.recorder.as_deref(), Some("DSJ-A1-0001"));
        assert_eq!(f.officer.as_deref(), Some("P-0417"));
        assert_eq!(f.ext.as_deref(), Some("MP4"));
        assert_eq!(f.start, Some((2026, 12, 1, 8, 15, 2)));
        // 08:15:02 in Beijing is 00:15:02 UTC.
        assert_eq!(
            start_unix_ms(f.start.unwrap(), 480),
            Some(1_796_084_102_000)
        );
        // A recorder id with underscores of its own: the first '_' ends it, the rest goes to
        // the officer (the pattern should say `{*}` or use another separator for such docks).
        let f = t.read("DSJ_A1_P-0417_20261201081502.MP4").unwrap();
        assert_eq!(
            (f.recorder.as_deref(), f.officer.as_deref()),
            (Some("DSJ"), Some("A1_P-0417"))
        );
        // Many fields against a long name that almost fits: answered, not exponential.
        let many = NameTemplate::parse(&"{*}_".repeat(30)).unwrap();
        assert!(many.read(&format!("{}b", "a_".repeat(120))).is_none());
        assert!(many.read(&"a_".repeat(120)).is_some());
        for bad in [
            "notes.txt",
            "DSJ_P1_2026120108150.MP4",
            "DSJ_P1_20261301081502.MP4",
            "DSJ_P1_20261201081502",
        ] {
            assert!(t.read(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn other_vendors_patterns() {
        let t = NameTemplate::parse("{start:%Y-%m-%d_%H-%M-%S}_{officer}.{ext}").unwrap();
        let f = t.read("2026-12-01_08-15-02_000417.jpg").unwrap();
        assert_eq!((f.officer.as_deref(), f.recorder), (Some("000417"), None));
        let t = NameTemplate::parse("{*}@{recorder}.{ext}").unwrap();
        assert_eq!(
            t.read("clip 3@DSJ9.avi").unwrap().recorder.as_deref(),
            Some("DSJ9")
        );
    }

    #[test]
    fn mistakes_in_a_pattern_are_named() {
        for (p, says) in [
            ("{recorder}{officer}.{ext}", "touch"),
            ("{recorder}_{recorder}", "twice"),
            ("{who}", "unknown field"),
            ("{start}", "needs its format"),
            ("{start:%Y%j}", "only %Y"),
            ("{start:%H%M}", "at least"),
            ("a{b", "without its"),
            ("", "empty"),
        ] {
            let e = NameTemplate::parse(p).unwrap_err();
            assert!(e.contains(says), "{p}: {e}");
        }
    }

    #[test]
    fn a_date_that_does_not_exist_has_no_time() {
        assert_eq!(start_unix_ms((2026, 2, 31, 0, 0, 0), 0), None);
        assert_eq!(start_unix_ms((1970, 1, 1, 8, 0, 0), 480), Some(0));
    }
}
