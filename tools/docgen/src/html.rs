//! A complete, standalone, escaped HTML document (inline CSS, no scripts, no remote resources).

use crate::markdown::{Align, Block, Span};
use crate::Meta;

/// Escape text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn spans(out: &mut String, spans: &[Span]) {
    for s in spans {
        if s.text == "\n" {
            out.push_str("<br>");
            continue;
        }
        let mut text = escape(&s.text);
        if s.code {
            text = format!("<code>{text}</code>");
        }
        if s.italic {
            text = format!("<em>{text}</em>");
        }
        if s.strike {
            text = format!("<del>{text}</del>");
        }
        if s.bold {
            text = format!("<strong>{text}</strong>");
        }
        if let Some(url) = &s.link {
            text = format!("<a href=\"{}\" rel=\"noopener noreferrer\">{text}</a>", escape(url));
        }
        out.push_str(&text);
    }
}

fn blocks(out: &mut String, list: &[Block]) {
    for block in list {
        match block {
            Block::Heading(level, s) => {
                out.push_str(&format!("<h{level}>"));
                spans(out, s);
                out.push_str(&format!("</h{level}>\n"));
            }
            Block::Paragraph(s) => {
                out.push_str("<p>");
                spans(out, s);
                out.push_str("</p>\n");
            }
            Block::Code(text) => out.push_str(&format!("<pre><code>{}</code></pre>\n", escape(text))),
            Block::List { start, items } => {
                match start {
                    Some(1) => out.push_str("<ol>\n"),
                    Some(n) => out.push_str(&format!("<ol start=\"{n}\">\n")),
                    None => out.push_str("<ul>\n"),
                }
                for item in items {
                    out.push_str("<li>");
                    // A single paragraph item renders tight, without <p>.
                    match item.as_slice() {
                        [Block::Paragraph(s), rest @ ..] => {
                            spans(out, s);
                            blocks(out, rest);
                        }
                        _ => blocks(out, item),
                    }
                    out.push_str("</li>\n");
                }
                out.push_str(if start.is_some() { "</ol>\n" } else { "</ul>\n" });
            }
            Block::Quote(inner) => {
                out.push_str("<blockquote>\n");
                blocks(out, inner);
                out.push_str("</blockquote>\n");
            }
            Block::Rule => out.push_str("<hr>\n"),
            Block::Table { head, rows, aligns } => {
                let style = |c: usize| match Align::of(aligns, c) {
                    Align::Left => "",
                    Align::Center => " style=\"text-align:center\"",
                    Align::Right => " style=\"text-align:right\"",
                };
                out.push_str("<table>\n<thead><tr>");
                for (c, cell) in head.iter().enumerate() {
                    out.push_str(&format!("<th{}>", style(c)));
                    spans(out, cell);
                    out.push_str("</th>");
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for row in rows {
                    out.push_str("<tr>");
                    for (c, cell) in row.iter().enumerate() {
                        out.push_str(&format!("<td{}>", style(c)));
                        spans(out, cell);
                        out.push_str("</td>");
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody>\n</table>\n");
            }
        }
    }
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;\
max-width:46em;margin:2em auto;padding:0 1em;line-height:1.5;color:#222}\
pre{background:#f4f4f4;padding:.75em;overflow-x:auto}code{font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace;font-size:.92em}\
blockquote{margin:1em 0;padding-left:1em;border-left:3px solid #ccc;color:#555}\
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:.3em .6em;text-align:left}th{background:#eee}";

/// Render the whole document.
pub fn render(doc: &[Block], meta: &Meta) -> Vec<u8> {
    let mut out = String::from("<!DOCTYPE html>\n<html lang=\"");
    out.push_str(&escape(meta.language.as_deref().unwrap_or("en")));
    out.push_str("\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n",
    );
    out.push_str(&format!("<title>{}</title>\n", escape(&meta.title)));
    if let Some(author) = &meta.author {
        out.push_str(&format!("<meta name=\"author\" content=\"{}\">\n", escape(author)));
    }
    if let Some(description) = &meta.description {
        out.push_str(&format!("<meta name=\"description\" content=\"{}\">\n", escape(description)));
    }
    if !meta.keywords.is_empty() {
        out.push_str(&format!("<meta name=\"keywords\" content=\"{}\">\n", escape(&meta.keywords.join(", "))));
    }
    for (key, value) in &meta.extra {
        out.push_str(&format!("<meta name=\"{}\" content=\"{}\">\n", escape(key), escape(value)));
    }
    out.push_str(&format!("<style>{STYLE}</style>\n</head>\n<body>\n"));
    blocks(&mut out, doc);
    out.push_str("</body>\n</html>\n");
    out.into_bytes()
}
