//! The report as one self-contained HTML page, for people: a summary, then
//! per page a table of its scripts. No script, no external resource (its
//! own policy forbids both), so it can be mailed, archived and opened
//! anywhere, and it prints.

use std::fmt::Write as _;

use super::{Report, Row};

const STYLE: &str = "
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2rem;color:#1b1f24;background:#fff}
h1{font-size:1.5rem;margin:0 0 .25rem}
h2{font-size:1.05rem;margin:2rem 0 .35rem;word-break:break-all}
.meta{color:#57606a;margin:.1rem 0}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}
th,td{border:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top;overflow-wrap:break-word}
table.scripts{table-layout:fixed}
th{background:#f6f8fa;font-weight:600}
td.script,td.hash,td.why{overflow-wrap:anywhere}
td.script,td.hash,.csp{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px;word-break:break-all}
.yes{background:#dafbe1;color:#116329;font-weight:600}
.no{background:#ffebe9;color:#a40e26;font-weight:600}
.unknown{background:#fff8c5;color:#7d4e00}
.summary{width:auto}
.pill{display:inline-block;border-radius:1em;padding:0 .6em;font-size:12px}
@media print{body{margin:0}h2{break-after:avoid}tr{break-inside:avoid}}
";

/// Escapes text for HTML content and attribute values.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters and bidi overrides from pages would not
            // show, or would make text read as something else.
            c if (c.is_control() && c != '\n' && c != '\t')
                || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{2028}' | '\u{2029}'
                    | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

fn flag(value: Option<bool>, yes: &str, no: &str) -> String {
    match value {
        Some(true) => format!("<td class=yes>{yes}</td>"),
        Some(false) => format!("<td class=no>{no}</td>"),
        None => "<td class=unknown>—</td>".to_owned(),
    }
}

/// The whole page, generated at `when`.
pub fn page(report: &Report, when: &str) -> String {
    let mut html = String::with_capacity(4096 + report.rows.len() * 600);
    html.push_str(
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>\n\
         <meta http-equiv=Content-Security-Policy content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=viewport content=\"width=device-width, initial-scale=1\">\n\
         <title>Script authorisation report</title>\n<style>",
    );
    html.push_str(STYLE);
    html.push_str("</style></head><body>\n<h1>Script authorisation report</h1>\n");
    let _ = writeln!(
        html,
        "<p class=meta>Generated {} by scriptscrape {} from {}</p>",
        esc(when),
        env!("CARGO_PKG_VERSION"),
        report
            .sources
            .iter()
            .map(|s| format!("<code>{}</code>", esc(s)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    summary(&mut html, report);
    for warning in &report.warnings {
        let _ = writeln!(html, "<p class=meta>Warning: {}</p>", esc(warning));
    }
    let mut rest = &report.rows[..];
    while let Some(first) = rest.first() {
        let end = rest
            .iter()
            .position(|r| r.page_url != first.page_url)
            .unwrap_or(rest.len());
        page_section(&mut html, &rest[..end]);
        rest = &rest[end..];
    }
    html.push_str("</body></html>\n");
    html
}

fn summary(html: &mut String, report: &Report) {
    let scripts = report.scripts();
    let unauthorised = report.unauthorised();
    let _ = writeln!(
        html,
        "<table class=summary>\
         <tr><th>Pages</th><td>{}</td></tr>\
         <tr><th>Scripts</th><td>{scripts}</td></tr>\
         <tr><th>Authorised</th><td class=yes>{}</td></tr>\
         <tr><th>Not authorised</th><td class={}>{unauthorised}</td></tr>\
         <tr><th>Pages not inventoried</th><td class={}>{}</td></tr>\
         <tr><th>Script content</th><td>{}</td></tr></table>",
        report.pages(),
        scripts - unauthorised,
        if unauthorised > 0 { "no" } else { "yes" },
        if report.not_inventoried() > 0 {
            "no"
        } else {
            "yes"
        },
        report.not_inventoried(),
        if report.fetched_content {
            "fetched (--fetch-scripts): hashes and SRI results below"
        } else {
            "not fetched: run the scrape with --fetch-scripts for content hashes and SRI results"
        },
    );
}

fn page_section(html: &mut String, rows: &[Row]) {
    let first = &rows[0];
    let _ = writeln!(html, "<h2>{}</h2>", esc(&first.page_url));
    if first.index.is_none() {
        let _ = writeln!(
            html,
            "<p class=\"meta no pill\">Not inventoried</p><p class=meta>{}</p>",
            esc(&first.reason)
        );
        return;
    }
    match &first.page_csp {
        Some(csp) => {
            let _ = writeln!(
                html,
                "<p class=meta>Content-Security-Policy: <span class=csp>{}</span></p>",
                esc(csp)
            );
        }
        None => html.push_str("<p class=meta>No Content-Security-Policy</p>\n"),
    }
    html.push_str(
        "<table class=scripts><colgroup><col style=\"width:3%\"><col style=\"width:20%\">\
         <col style=\"width:9%\"><col style=\"width:12%\"><col style=\"width:11%\">\
         <col style=\"width:16%\"><col style=\"width:15%\"><col style=\"width:7%\">\
         <col style=\"width:7%\"></colgroup>\n\
         <tr><th>#</th><th>Script</th><th>Authorised</th><th>Justification</th>\
         <th>Owner</th><th>Why</th><th>Content (sha384)</th><th>SRI</th><th>CSP</th></tr>\n",
    );
    for row in rows {
        let script = match (&row.script, row.inline) {
            (Some(s), Some(true)) => format!("inline {}", esc(s)),
            (Some(s), _) => esc(s),
            (None, _) => "(src not resolved)".to_owned(),
        };
        let content = match (&row.content_sha384, &row.content_error) {
            (Some(hash), _) => esc(hash),
            (None, Some(error)) => format!("not fetched: {}", esc(error)),
            (None, None) => String::new(),
        };
        let sri = match (row.integrity.as_deref(), row.integrity_ok) {
            (None, _) => "<td>none</td>".to_owned(),
            (Some(_), ok) => flag(ok, "matches", "fails"),
        };
        let _ = writeln!(
            html,
            "<tr><td>{}</td><td class=script>{script}</td>{}<td>{}</td><td>{}</td><td class=why>{}</td>\
             <td class=hash>{content}</td>{sri}{}</tr>",
            row.index.unwrap_or_default(),
            flag(row.authorised, "yes", "no"),
            esc(row.justification.as_deref().unwrap_or("")),
            esc(row.owner.as_deref().unwrap_or("")),
            esc(&row.reason),
            match (&row.page_csp, row.csp_allowed) {
                (None, _) => "<td>no policy</td>".to_owned(),
                (Some(_), allowed) => flag(allowed, "allowed", "blocked"),
            },
        );
    }
    html.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_from_pages_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script>&\"\u{1b}\u{202e}"),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;\\u{1b}\\u{202e}"
        );
        let report = Report {
            rows: vec![Row {
                page_url: "https://shop.example/<b>".into(),
                index: Some(0),
                script: Some("https://evil.example/\"><script>x()</script>".into()),
                inline: Some(false),
                authorised: Some(false),
                authorisation: "unlisted",
                reason: "no entry of the allow list fits".into(),
                ..Row::default()
            }],
            ..Report::default()
        };
        let html = page(&report, "2026-11-30T00:00:00Z");
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;x()"));
    }
}
