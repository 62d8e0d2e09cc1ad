//! Printing an answer: as the API's JSON, or as a table (a list's items in columns, anything
//! else as one field per line).

use serde_json::Value;

/// The widest a table cell gets before it is cut.
const MAX_CELL: usize = 60;

pub fn json(answer: &Value) -> String {
    if answer.is_null() {
        return String::new();
    }
    serde_json::to_string_pretty(answer).expect("a Value serializes") + "\n"
}

/// `columns` are dotted paths into each item of `items`; an answer without `items`, or an
/// operation without columns, prints field by field.
pub fn table(answer: &Value, columns: &[&str]) -> String {
    match (answer.get("items").and_then(Value::as_array), columns.is_empty()) {
        (Some(items), false) => rows(columns, items),
        _ => fields(answer),
    }
}

/// A page's pointer to the next one (`next_before`, `next_after`), as the flag that asks for it.
pub fn more(answer: &Value) -> Option<String> {
    let object = answer.as_object()?;
    object.iter().find_map(|(key, value)| {
        let param = key.strip_prefix("next_")?;
        Some(format!("more: add --{param} {}", value.as_str()?))
    })
}

fn rows(columns: &[&str], items: &[Value]) -> String {
    let header: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
    let body: Vec<Vec<String>> =
        items.iter().map(|item| columns.iter().map(|c| cut(cell(pick(item, c)))).collect()).collect();
    aligned(std::iter::once(header).chain(body).collect())
}

fn fields(answer: &Value) -> String {
    match answer {
        Value::Object(object) => {
            aligned(object.iter().map(|(key, value)| vec![key.clone(), cell(Some(value))]).collect())
        }
        Value::Null => String::new(),
        other => format!("{}\n", cell(Some(other))),
    }
}

fn pick<'a>(item: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(item, |value, key| value.get(key))
}

fn cell(value: Option<&Value>) -> String {
    let text = match value {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    text.replace(['\n', '\t'], " ")
}

/// A list's cell, cut to `MAX_CELL` characters; a record's fields print whole.
fn cut(text: String) -> String {
    match text.char_indices().nth(MAX_CELL) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// Rows with each column padded to its widest cell, two spaces apart.
fn aligned(rows: Vec<Vec<String>>) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| rows.iter().filter_map(|r| r.get(i)).map(|c| c.chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let last = row.len().saturating_sub(1);
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i < last {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_list_prints_its_columns_aligned_with_nested_and_missing_values() {
        let answer = json!({ "items": [
            { "id": "rule_1", "condition": { "kind": "threshold" }, "enabled": true },
            { "id": "rule_22", "condition": { "kind": "inactivity" } },
        ]});
        let printed = table(&answer, &["id", "condition.kind", "enabled"]);
        assert_eq!(
            printed,
            "ID       CONDITION.KIND  ENABLED\nrule_1   threshold       true\nrule_22  inactivity      -\n"
        );
    }

    #[test]
    fn one_record_prints_a_field_per_line_whole() {
        let answer = json!({ "token": "x".repeat(70), "limits": { "fuel": 5 } });
        let printed = table(&answer, &[]);
        assert_eq!(printed, format!("limits  {{\"fuel\":5}}\ntoken   {}\n", "x".repeat(70)));
    }

    #[test]
    fn a_long_cell_in_a_list_is_cut() {
        let printed = table(&json!({ "items": [{ "message": "y".repeat(70) }] }), &["message"]);
        assert_eq!(printed, format!("MESSAGE\n{}…\n", "y".repeat(60)));
    }

    #[test]
    fn a_page_names_the_flag_for_the_next_one() {
        assert_eq!(more(&json!({ "items": [], "next_before": "ntf_9" })).as_deref(), Some("more: add --before ntf_9"));
        assert_eq!(more(&json!({ "items": [] })), None);
    }
}
