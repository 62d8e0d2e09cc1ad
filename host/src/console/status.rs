//! The public status pages: `/status/{slug}` (HTML that needs no script), `/status/{slug}.json`
//! (the same data) and `/status/{slug}/feed.atom` (an Atom feed of incident updates). No
//! authentication: a page that is unknown or disabled is 404, and only the tenant's public
//! incidents appear.

use std::fmt::Write;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::http::header::{ACCESS_CONTROL_ALLOW_ORIGIN, CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;

use crate::api::extract::origin;
use crate::api::{AppState, blocking};
use crate::context::IncidentStatus;
use crate::error::{ApiError, ApiResult};
use crate::notifications::incidents;
use crate::notifications::status_page::{self, Condition, FEED_ENTRIES, PublicIncident, Status, StatusPage};

/// Visitors may keep a page this long.
const MAX_AGE: &str = "public, max-age=30";

/// `/status/{slug}` and `/status/{slug}.json`.
pub async fn page(State(state): State<AppState>, Path(page): Path<String>) -> ApiResult<Response> {
    if let Some(slug) = page.strip_suffix(".json") {
        let (_, status) = load(&state, slug).await?;
        let headers = [(CACHE_CONTROL, MAX_AGE), (ACCESS_CONTROL_ALLOW_ORIGIN, "*")];
        return Ok((headers, axum::Json(status)).into_response());
    }
    let (slug, status) = load(&state, &page).await?;
    let headers = [(CONTENT_TYPE, "text/html; charset=utf-8"), (CACHE_CONTROL, MAX_AGE)];
    Ok((headers, html(&slug, &status)).into_response())
}

/// `/status/{slug}/feed.atom`.
pub async fn feed(State(state): State<AppState>, Path(slug): Path<String>, headers: HeaderMap) -> ApiResult<Response> {
    let (slug, status) = load(&state, &slug).await?;
    let origin = origin(&headers);
    let headers = [(CONTENT_TYPE, "application/atom+xml; charset=utf-8"), (CACHE_CONTROL, MAX_AGE)];
    Ok((headers, atom(&slug, &status, origin.as_deref().unwrap_or_default())).into_response())
}

/// The page's status now, or 404 for a slug no enabled page has.
async fn load(state: &AppState, slug: &str) -> ApiResult<(String, Status)> {
    let (store, slug, now) = (state.store.clone(), slug.to_string(), state.clock.now());
    blocking(move || {
        let not_found = || ApiError::not_found(format_args!("status page `{slug}`"));
        let (tenant, page) = store.status_page_by_slug::<StatusPage>(&slug)?.ok_or_else(not_found)?;
        if !page.spec.enabled {
            return Err(not_found());
        }
        let public = incidents::public_since(&store, &tenant, status_page::history_start(&page.spec, now))?;
        Ok((slug.clone(), status_page::status(&page.spec, &public, now)))
    })
    .await
}

/// Text made safe for HTML and XML, in content and in quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn status_label(status: IncidentStatus) -> &'static str {
    match status {
        IncidentStatus::Investigating => "Investigating",
        IncidentStatus::Identified => "Identified",
        IncidentStatus::Monitoring => "Monitoring",
        IncidentStatus::Scheduled => "Scheduled",
        IncidentStatus::InProgress => "In progress",
        IncidentStatus::Resolved => "Resolved",
    }
}

/// A moment as visitors read it (UTC, to the minute), in a `<time>`.
fn time(at: Timestamp) -> String {
    format!(r#"<time datetime="{at}">{}</time>"#, at.strftime("%Y-%m-%d %H:%M UTC"))
}

fn condition(c: Condition) -> String {
    format!(r#"<span class="condition condition-{}">{}</span>"#, c.name(), c.label())
}

fn html(slug: &str, status: &Status) -> String {
    let title = escape(&status.title);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} status</title>
<link rel="stylesheet" href="/console/status.css">
<link rel="alternate" type="application/atom+xml" title="{title} incident updates" href="/status/{slug}/feed.atom">
</head>
<body>
<header><h1>{title}</h1></header>
<main>
<p class="overall condition-{}" role="status">{}</p>
"#,
        status.status.name(),
        status.description,
    );
    components(&mut out, status);
    incident_list(&mut out, "Active incidents", "incidents", &status.incidents);
    incident_list(&mut out, "Scheduled maintenance", "maintenance", &status.maintenance);
    let past = format!("Past incidents (last {} days)", status.history_days);
    incident_list(&mut out, &past, "past", &status.past_incidents);
    let _ = write!(
        out,
        r#"</main>
<footer><p>Updated {}. <a href="/status/{slug}.json">JSON</a> · <a href="/status/{slug}/feed.atom">Atom feed</a></p></footer>
</body>
</html>
"#,
        time(status.updated_at)
    );
    out
}

/// The components, by group (in the order the page lists them), each with its row of days.
fn components(out: &mut String, status: &Status) {
    if status.components.is_empty() {
        return;
    }
    out.push_str("<section id=\"components\"><h2>Components</h2>\n");
    let mut groups: Vec<Option<&str>> = Vec::new();
    for c in &status.components {
        if !groups.contains(&c.group.as_deref()) {
            groups.push(c.group.as_deref());
        }
    }
    for group in groups {
        if let Some(group) = group {
            let _ = writeln!(out, "<h3>{}</h3>", escape(group));
        }
        out.push_str("<ul class=\"components\">\n");
        for c in status.components.iter().filter(|c| c.group.as_deref() == group) {
            let _ = write!(
                out,
                r#"<li><span class="component">{}</span> {}<div class="days" aria-label="The last {} days">"#,
                escape(&c.name),
                condition(c.status),
                c.days.len()
            );
            for day in &c.days {
                let _ = write!(
                    out,
                    r#"<span class="day condition-{}" title="{}: {}"></span>"#,
                    day.status.name(),
                    day.date,
                    day.status.label()
                );
            }
            out.push_str("</div></li>\n");
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
}

fn incident_list(out: &mut String, heading: &str, id: &str, list: &[PublicIncident]) {
    let _ = writeln!(out, r#"<section id="{id}"><h2>{heading}</h2>"#);
    if list.is_empty() {
        out.push_str("<p class=\"muted\">None.</p>\n");
    }
    for incident in list {
        let _ = write!(
            out,
            r#"<article class="incident" id="{}"><h3>{}</h3><p>{} · {}"#,
            escape(&incident.id),
            escape(&incident.title),
            condition(incident.impact),
            status_label(incident.status)
        );
        if !incident.components.is_empty() {
            let names: Vec<String> = incident.components.iter().map(|c| escape(c)).collect();
            let _ = write!(out, " · Affects {}", names.join(", "));
        }
        if let (Some(start), Some(end)) = (incident.starts_at, incident.ends_at) {
            let _ = write!(out, " · Window {} to {}", time(start), time(end));
        }
        out.push_str("</p>\n<ul class=\"timeline\">\n");
        for update in &incident.updates {
            let _ = write!(out, "<li>{} <strong>{}</strong>", time(update.at), status_label(update.status));
            if let Some(message) = &update.message {
                let _ = write!(out, " {}", escape(message));
            }
            out.push_str("</li>\n");
        }
        out.push_str("</ul></article>\n");
    }
    out.push_str("</section>\n");
}

/// An Atom 1.0 feed of the page's incident updates, newest first. `origin` makes its links
/// absolute (empty: relative to the feed).
fn atom(slug: &str, status: &Status, origin: &str) -> String {
    let page = format!("{origin}/status/{slug}");
    let mut entries: Vec<(&PublicIncident, usize)> = status
        .incidents
        .iter()
        .chain(&status.maintenance)
        .chain(&status.past_incidents)
        .flat_map(|i| (0..i.updates.len()).map(move |n| (i, n)))
        .collect();
    entries.sort_by_key(|(i, n)| std::cmp::Reverse(i.updates[*n].at));
    entries.truncate(FEED_ENTRIES);
    let updated = entries.first().map(|(i, n)| i.updates[*n].at).unwrap_or(status.updated_at);
    let title = escape(&status.title);
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
<title>{title} status</title>
<id>urn:klaxon:status:{slug}</id>
<link rel="self" type="application/atom+xml" href="{page}/feed.atom"/>
<link rel="alternate" type="text/html" href="{page}"/>
<updated>{updated}</updated>
<author><name>{title}</name></author>
"#
    );
    for (incident, n) in entries {
        let update = &incident.updates[n];
        // Updates are newest first; the entry's number counts from the incident's first.
        let number = incident.updates.len() - 1 - n;
        let summary = update.message.as_deref().unwrap_or(status_label(update.status));
        let _ = write!(
            out,
            r#"<entry>
<title>{}: {}</title>
<id>urn:klaxon:status:{slug}:{}:{number}</id>
<link rel="alternate" type="text/html" href="{page}#{}"/>
<updated>{}</updated>
<content type="text">{}</content>
</entry>
"#,
            escape(&incident.title),
            status_label(update.status),
            escape(&incident.id),
            escape(&incident.id),
            update.at,
            escape(summary)
        );
    }
    out.push_str("</feed>\n");
    out
}
