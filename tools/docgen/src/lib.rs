//! `document_generate`: deterministic PDF, DOCX and HTML documents from Markdown.
//!
//! The same arguments give the same bytes, in every process on every machine: no clocks, no
//! random ids, no hash-map iteration, fixed zip times. The document comes back as an MCP
//! embedded resource with its SHA-256.
//!
//! | module | role |
//! |---|---|
//! | [`markdown`] | Markdown → block model (safe links, raw HTML as text, limits) |
//! | [`html`] | standalone escaped HTML |
//! | [`docx`] | WordprocessingML written directly |
//! | [`pdf`] | layout and drawing with krilla and embedded DejaVu fonts |

pub mod docx;
pub mod html;
pub mod markdown;
pub mod pdf;

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tool_kit::{CallOutcome, ToolError, ToolServer, ToolSpec};

/// Default cap on the Markdown content, in bytes.
pub const DEFAULT_MAX_CONTENT_BYTES: usize = 512 * 1024;
const MAX_METADATA_ENTRIES: usize = 50;
const MAX_FIELD_CHARS: usize = 1000;

/// Document metadata, normalised from the arguments.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// Title (arguments' `title`, else the first heading, else "Document").
    pub title: String,
    /// Author.
    pub author: Option<String>,
    /// `metadata.description` (or `subject`).
    pub description: Option<String>,
    /// `metadata.keywords` (a list or a comma-separated string).
    pub keywords: Vec<String>,
    /// `metadata.language` (e.g. `en`).
    pub language: Option<String>,
    /// Other `metadata` entries, sorted by key.
    pub extra: Vec<(String, String)>,
}

/// A generated document.
#[derive(Debug, Clone)]
pub struct Generated {
    /// `pdf`, `docx` or `html`.
    pub format: &'static str,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Page count (PDF only).
    pub pages: Option<usize>,
}

fn short(value: &Value, name: &str) -> Result<Option<String>, ToolError> {
    match value.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= MAX_FIELD_CHARS => Ok(Some(markdown::printable(s).into_owned())),
        Some(Value::String(_)) => Err(format!("{name} is longer than {MAX_FIELD_CHARS} characters").into()),
        Some(_) => Err(format!("{name} must be a string").into()),
    }
}

fn meta(arguments: &Value, blocks: &[markdown::Block]) -> Result<Meta, ToolError> {
    let first_heading = blocks.iter().find_map(|b| match b {
        markdown::Block::Heading(_, spans) => Some(markdown::plain(spans)),
        _ => None,
    });
    let mut meta = Meta {
        title: short(arguments, "title")?.or(first_heading).unwrap_or_else(|| "Document".into()),
        author: short(arguments, "author")?,
        ..Meta::default()
    };
    let empty = Map::new();
    let extra = match arguments.get("metadata") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(m)) if m.len() <= MAX_METADATA_ENTRIES => m,
        Some(Value::Object(_)) => return Err(format!("metadata has more than {MAX_METADATA_ENTRIES} entries").into()),
        Some(_) => return Err("metadata must be an object of strings".into()),
    };
    for (key, value) in extra {
        if key.chars().count() > 100 {
            return Err("metadata keys must be at most 100 characters".into());
        }
        match (key.as_str(), value) {
            ("keywords", Value::Array(items)) => {
                for item in items {
                    let keyword = item.as_str().ok_or("metadata.keywords must hold strings")?;
                    meta.keywords.push(markdown::printable(keyword).into_owned());
                }
            }
            ("keywords", Value::String(s)) => {
                meta.keywords =
                    markdown::printable(s).split(',').map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()).collect()
            }
            (_, Value::String(s)) if s.chars().count() <= MAX_FIELD_CHARS => {
                let (key, s) = (markdown::printable(key).into_owned(), markdown::printable(s).into_owned());
                match key.as_str() {
                    "description" | "subject" => meta.description = Some(s),
                    "language" | "lang" => meta.language = Some(s),
                    _ => meta.extra.push((key, s)),
                }
            }
            (_, Value::String(_)) => {
                return Err(format!("metadata.{key} is longer than {MAX_FIELD_CHARS} characters").into())
            }
            (_, other) => meta.extra.push((markdown::printable(key).into_owned(), other.to_string())),
        }
    }
    Ok(meta)
}

/// Generate a document from `document_generate` arguments.
pub fn generate(arguments: &Value, max_content_bytes: usize) -> Result<Generated, ToolError> {
    let content = match arguments.get("content") {
        Some(Value::String(s)) => s,
        Some(_) => return Err("content must be a string of Markdown".into()),
        None => return Err("content is required (Markdown text)".into()),
    };
    if content.trim().is_empty() {
        return Err("content is empty".into());
    }
    if content.len() > max_content_bytes {
        return Err(format!("content is {} bytes; the limit is {max_content_bytes}", content.len()).into());
    }
    let format = arguments.get("format").and_then(Value::as_str).unwrap_or("").to_ascii_lowercase();
    let blocks = markdown::parse(content)?;
    let meta = meta(arguments, &blocks)?;
    match format.as_str() {
        "pdf" => {
            pdf::render(&blocks, &meta).map(|(bytes, pages)| Generated { format: "pdf", bytes, pages: Some(pages) })
        }
        "docx" => docx::render(&blocks, &meta).map(|bytes| Generated { format: "docx", bytes, pages: None }),
        "html" => Ok(Generated { format: "html", bytes: html::render(&blocks, &meta), pages: None }),
        "" => Err("format is required: pdf, docx or html".into()),
        other => Err(format!("unknown format {other:?}: use pdf, docx or html").into()),
    }
}

fn mime(format: &str) -> &'static str {
    match format {
        "pdf" => "application/pdf",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        _ => "text/html; charset=utf-8",
    }
}

/// A file name from the title: ASCII letters, digits and dashes.
pub fn filename(title: &str, format: &str) -> String {
    let mut slug = String::new();
    for c in title.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    let slug: String = if slug.is_empty() { "document".into() } else { slug.chars().take(60).collect() };
    format!("{slug}.{format}")
}

/// Answer a `tools/call`: the document as an embedded resource plus its description.
pub fn call(arguments: &Value, max_content_bytes: usize) -> CallOutcome {
    let doc = generate(arguments, max_content_bytes)?;
    let title = short(arguments, "title")?.unwrap_or_default();
    let title = if title.is_empty() {
        markdown::parse(arguments["content"].as_str().unwrap_or(""))?
            .iter()
            .find_map(|b| match b {
                markdown::Block::Heading(_, s) => Some(markdown::plain(s)),
                _ => None,
            })
            .unwrap_or_default()
    } else {
        title
    };
    let name = filename(&title, doc.format);
    let sha256 = hex(&Sha256::digest(&doc.bytes));
    let mut structured = json!({
        "format": doc.format,
        "filename": name,
        "mime_type": mime(doc.format),
        "size_bytes": doc.bytes.len(),
        "sha256": sha256,
    });
    let mut text = format!("Generated {name}: {} bytes", doc.bytes.len());
    if let Some(pages) = doc.pages {
        structured["pages"] = json!(pages);
        text.push_str(&format!(", {pages} page{}", if pages == 1 { "" } else { "s" }));
    }
    text.push_str(&format!(", sha256 {sha256}."));
    Ok(json!({
        "content": [
            { "type": "text", "text": text },
            { "type": "resource", "resource": {
                "uri": format!("docgen://documents/{sha256}/{name}"),
                "mimeType": mime(doc.format),
                "blob": base64::engine::general_purpose::STANDARD.encode(&doc.bytes),
            } }
        ],
        "structuredContent": structured,
        "isError": false,
    }))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The tool server answering `document_generate`.
pub fn server(max_content_bytes: usize) -> ToolServer {
    ToolServer {
        name: "mcp-gateway-docgen",
        version: env!("CARGO_PKG_VERSION"),
        tools: vec![ToolSpec {
            name: "document_generate",
            description: "Render Markdown (CommonMark + tables) into a PDF, DOCX or HTML document. Deterministic: \
                the same arguments give byte-identical output. Returns the file as an embedded resource with its SHA-256.",
            input_schema: json!({
                "type": "object",
                "required": ["content", "format"],
                "properties": {
                    "content": { "type": "string", "description": "Markdown: headings, emphasis, code, lists, quotes, links, rules, tables", "maxLength": max_content_bytes },
                    "format": { "type": "string", "enum": ["pdf", "docx", "html"] },
                    "title": { "type": "string", "maxLength": MAX_FIELD_CHARS, "description": "defaults to the first heading" },
                    "author": { "type": "string", "maxLength": MAX_FIELD_CHARS },
                    "metadata": { "type": "object", "maxProperties": MAX_METADATA_ENTRIES,
                        "description": "description, keywords (list), language, and any other string properties",
                        "additionalProperties": { "type": ["string", "array"] } }
                }
            }),
            output_schema: Some(json!({
                "type": "object",
                "required": ["format", "filename", "size_bytes", "sha256"],
                "properties": {
                    "format": { "type": "string" }, "filename": { "type": "string" }, "mime_type": { "type": "string" },
                    "size_bytes": { "type": "integer" }, "sha256": { "type": "string" }, "pages": { "type": "integer" }
                }
            })),
        }],
        call: Arc::new(move |_, arguments| call(&arguments, max_content_bytes)),
        max_body_bytes: max_content_bytes.saturating_mul(2).saturating_add(64 * 1024),
        call_timeout: std::time::Duration::from_secs(30),
    }
}
