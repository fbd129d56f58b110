//! The eligibility answer: kept whole as JSON, with a small typed view of what the person
//! at the reception desk reads (validity in words, name, insurer, copay, dates,
//! advisories, check id).

use std::fmt::Write as _;

use anyhow::anyhow;
use serde_json::Value;

/// The server's answer to a card check.
#[derive(Debug, Clone)]
pub struct Answer {
    raw: Value,
    validity: u8,
}

impl Answer {
    /// Wraps the answer JSON; it must carry `validity` 1-6.
    ///
    /// # Errors
    /// If `validity` is missing or out of range.
    pub fn new(raw: Value) -> anyhow::Result<Answer> {
        let validity = raw
            .get("validity")
            .and_then(Value::as_u64)
            .filter(|v| (1..=6).contains(v))
            .ok_or_else(|| anyhow!("the eligibility answer has no valid \"validity\""))?;
        // Range-checked just above.
        let validity = validity as u8;
        Ok(Answer { raw, validity })
    }

    /// The whole answer as the server sent it.
    pub fn raw(&self) -> &Value {
        &self.raw
    }

    /// 資格有効性, 1-6.
    pub fn validity(&self) -> u8 {
        self.validity
    }

    /// Whether care can be billed to the insurance (validity 1 or 6).
    pub fn is_valid(&self) -> bool {
        matches!(self.validity, 1 | 6)
    }

    /// The validity in words, Japanese term in brackets.
    pub fn validity_words(&self) -> &'static str {
        match self.validity {
            1 => "VALID (有効)",
            2 => "NOT VALID: the coverage was lost (無効)",
            3 => "NOT VALID, but a newer coverage exists (無効（新しい資格あり）)",
            4 => "NO SUCH COVERAGE (該当資格なし)",
            5 => "SEVERAL COVERAGES MATCH (複数該当)",
            _ => "VALID, not registered: public assistance only (有効（未登録）)",
        }
    }

    /// A coverage field as text (strings as they are, numbers printed), if present.
    pub fn coverage(&self, field: &str) -> Option<String> {
        match self.raw.get("coverage")?.get(field)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// The copay as a percentage: `"030"` and `30` are 30 %, `0.3` is 30 % too.
    pub fn copay_percent(&self) -> Option<u32> {
        let v = self.raw.get("coverage")?.get("copay_ratio")?;
        let n = match v {
            Value::String(s) => s.trim().parse::<f64>().ok()?,
            Value::Number(n) => n.as_f64()?,
            _ => return None,
        };
        let percent = if n > 0.0 && n < 1.0 { n * 100.0 } else { n };
        // Rounded, and a ratio is within 0-100, so the cast cannot truncate.
        (0.0..=100.0)
            .contains(&percent)
            .then(|| percent.round() as u32)
    }

    /// The advisories' messages (an advisory is a string or an object with `message`).
    pub fn advisories(&self) -> Vec<String> {
        let Some(list) = self.raw.get("advisories").and_then(Value::as_array) else {
            return Vec::new();
        };
        list.iter()
            .filter_map(|a| match a {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o
                    .get("message")
                    .or_else(|| o.get("code"))
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                _ => None,
            })
            .collect()
    }

    /// The server's id of this check, to quote when asking about it.
    pub fn check_id(&self) -> Option<&str> {
        self.raw.get("check_id").and_then(Value::as_str)
    }

    /// The answer as printed at the desk.
    pub fn desk_text(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let mut line = |label: &str, value: Option<String>| {
            if let Some(v) = value {
                let _ = writeln!(out, "  {label:<16}{v}");
            }
        };
        line("Eligibility", Some(self.validity_words().to_owned()));
        let name = match (self.coverage("name"), self.coverage("name_kana")) {
            (Some(n), Some(k)) => Some(format!("{n} ({k})")),
            (n, k) => n.or(k),
        };
        line("Name", name);
        line("Birth date", self.coverage("birth_date"));
        line(
            "Sex",
            self.coverage("sex").map(|s| sex_words(&s).to_owned()),
        );
        let insurer = match (
            self.coverage("insurer_name"),
            self.coverage("insurer_number"),
        ) {
            (Some(n), Some(no)) => Some(format!("{n} ({no})")),
            (n, no) => n.or(no),
        };
        line("Insurer", insurer);
        let card = [
            self.coverage("symbol"),
            self.coverage("number"),
            self.coverage("branch"),
        ];
        if card.iter().any(Option::is_some) {
            let parts: Vec<String> = card.into_iter().map(Option::unwrap_or_default).collect();
            line("Symbol/number", Some(parts.join(" / ")));
        }
        line("Copay", self.copay_percent().map(|p| format!("{p} %")));
        line("Covered from", self.coverage("acquired_on"));
        line("Covered until", self.coverage("lost_on"));
        for advisory in self.advisories() {
            line("Advisory", Some(advisory));
        }
        line("Check id", self.check_id().map(str::to_owned));
        out
    }
}

fn sex_words(code: &str) -> &str {
    match code {
        "1" => "male",
        "2" => "female",
        "3" => "not set",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Answer {
        Answer::new(json!({
            "validity": 1,
            "coverage": {
                "insurer_number": "06139999", "insurer_name": "Synthetic Kenpo",
                "symbol": "12", "number": "345", "branch": "01",
                "name": "Test Taro", "name_kana": "テスト タロウ", "birth_date": "1980-01-02",
                "sex": "1", "copay_ratio": "030", "acquired_on": "2020-04-01", "lost_on": null
            },
            "advisories": ["the card certificate expires within 3 months", {"code": "x", "message": "m"}],
            "check_id": "chk-1"
        }))
        .expect("valid answer")
    }

    #[test]
    fn desk_text_has_what_the_desk_needs() {
        let text = sample().desk_text();
        for want in [
            "VALID (有効)",
            "Test Taro (テスト タロウ)",
            "Synthetic Kenpo (06139999)",
            "12 / 345 / 01",
            "30 %",
            "2020-04-01",
            "expires within 3 months",
            "Advisory        m",
            "chk-1",
            "male",
        ] {
            assert!(text.contains(want), "{want:?} missing in\n{text}");
        }
        assert!(!text.contains("Covered until"));
    }

    #[test]
    fn copay_forms() {
        for (v, want) in [
            (json!("010"), 10),
            (json!(20), 20),
            (json!(0.3), 30),
            (json!("030"), 30),
        ] {
            let a =
                Answer::new(json!({"validity": 1, "coverage": {"copay_ratio": v}})).expect("ok");
            assert_eq!(a.copay_percent(), Some(want));
        }
    }

    #[test]
    fn validity_is_required() {
        assert!(Answer::new(json!({"validity": 9})).is_err());
        assert!(Answer::new(json!({})).is_err());
        assert!(!Answer::new(json!({"validity": 2})).expect("ok").is_valid());
    }
}
