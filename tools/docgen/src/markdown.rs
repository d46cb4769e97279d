//! Markdown (CommonMark + tables) parsed into a small block model that every renderer shares.
//!
//! Raw HTML in the input becomes literal text, and links keep only safe targets (`http`,
//! `https`, `mailto`, relative); `javascript:` and other schemes lose their link. Nesting
//! depth and table width are capped so hostile input stays cheap.

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use tool_kit::ToolError;

/// Deepest nesting of lists and quotes accepted.
pub const MAX_DEPTH: usize = 32;
/// Most table columns accepted.
pub const MAX_COLUMNS: usize = 64;

/// A run of text with one style.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Span {
    /// The text (`"\n"` for a hard line break).
    pub text: String,
    /// Strong emphasis.
    pub bold: bool,
    /// Emphasis.
    pub italic: bool,
    /// Inline code (monospace).
    pub code: bool,
    /// Struck through (`~~text~~`): a price crossed out must not read as a price.
    pub strike: bool,
    /// A safe link target.
    pub link: Option<String>,
}

/// A block of the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// `#`…`######`
    Heading(u8, Vec<Span>),
    /// A paragraph.
    Paragraph(Vec<Span>),
    /// A fenced or indented code block, verbatim.
    Code(String),
    /// A list: `start` is `Some(n)` for a numbered list.
    List {
        /// First number of an ordered list.
        start: Option<u64>,
        /// Each item's blocks.
        items: Vec<Vec<Block>>,
    },
    /// A block quote.
    Quote(Vec<Block>),
    /// A horizontal rule.
    Rule,
    /// A table: header cells and body rows (each cell a list of spans).
    Table {
        /// Header cells.
        head: Vec<Vec<Span>>,
        /// Body rows.
        rows: Vec<Vec<Vec<Span>>>,
        /// Each column's alignment (`:---`, `:---:`, `---:`), honoured by every format.
        aligns: Vec<Align>,
    },
}

/// Keep a link target only if it is safe to follow.
pub fn safe_link(url: &str) -> Option<String> {
    let cleaned: String = url.chars().filter(|c| !c.is_whitespace() && !c.is_control()).collect();
    let scheme_end = cleaned.find(':');
    let has_scheme = scheme_end.is_some_and(|i| {
        let scheme = &cleaned[..i];
        !scheme.is_empty() && !cleaned[..i].contains(['/', '?', '#'])
    });
    if !has_scheme {
        return Some(url.trim().to_owned());
    }
    let scheme = cleaned[..scheme_end.unwrap_or(0)].to_ascii_lowercase();
    matches!(scheme.as_str(), "http" | "https" | "mailto").then(|| url.trim().to_owned())
}

enum Frame {
    Root(Vec<Block>),
    Quote(Vec<Block>),
    List(Option<u64>, Vec<Vec<Block>>),
    Item(Vec<Block>),
}

impl Frame {
    fn blocks(&mut self) -> Option<&mut Vec<Block>> {
        match self {
            Frame::Root(b) | Frame::Quote(b) | Frame::Item(b) => Some(b),
            Frame::List(..) => None,
        }
    }
}

/// A table column's alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Align {
    /// `---` or `:---`.
    #[default]
    Left,
    /// `:---:`.
    Center,
    /// `---:` (numbers, so their digits line up).
    Right,
}

impl Align {
    /// The alignment of column `c` (left when the table names none).
    pub fn of(aligns: &[Align], c: usize) -> Align {
        aligns.get(c).copied().unwrap_or_default()
    }
}

#[derive(Default)]
struct Table {
    aligns: Vec<Align>,
    head: Vec<Vec<Span>>,
    rows: Vec<Vec<Vec<Span>>>,
    row: Vec<Vec<Span>>,
}

struct Builder {
    frames: Vec<Frame>,
    inline: Option<Vec<Span>>,
    heading: Option<u8>,
    code: Option<String>,
    table: Option<Table>,
    bold: usize,
    italic: usize,
    strike: usize,
    links: Vec<Option<String>>,
}

/// What no format can hold: characters XML 1.0 forbids (C0 controls but tab, newline and
/// carriage return; U+FFFE, U+FFFF), the C1 controls and DEL (drawn as boxes, refused by
/// Word-compatible readers in DOCX), and other non-characters.
fn unprintable(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n'))
        || matches!(c as u32, 0xFDD0..=0xFDEF)
        || (c as u32 & 0xFFFE) == 0xFFFE
}

/// Text as every format can carry it: a page or line break pasted from a PDF (form feed,
/// vertical tab, NEL, line/paragraph separators) and a tab become a space; other unprintable
/// characters ([`unprintable`]) are dropped. Applied to every span (raw or entity-decoded, so
/// `&#12;` too), the title and the metadata, before any format renders them.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let breaks = |c: char| matches!(c, '\t' | '\u{b}' | '\u{c}' | '\u{85}' | '\u{2028}' | '\u{2029}');
    if !text.chars().any(|c| breaks(c) || unprintable(c)) {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars()
        .filter_map(|c| {
            if breaks(c) {
                Some(' ')
            } else if unprintable(c) {
                None
            } else {
                Some(c)
            }
        })
        .collect()
}

/// A code block's text: tabs expanded to the next multiple of 4 columns (fonts draw a tab as a
/// box), page breaks made line breaks, other unprintable characters dropped.
fn printable_code(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut column = 0usize;
    for c in text.chars() {
        match c {
            '\t' => {
                let n = 4 - column % 4;
                out.extend(std::iter::repeat_n(' ', n));
                column += n;
            }
            '\n' | '\u{b}' | '\u{c}' | '\u{85}' | '\u{2028}' | '\u{2029}' => {
                out.push('\n');
                column = 0;
            }
            c if unprintable(c) => {}
            c => {
                out.push(c);
                column += 1;
            }
        }
    }
    out
}

impl Builder {
    fn push_block(&mut self, block: Block) {
        if let Some(blocks) = self.frames.last_mut().and_then(Frame::blocks) {
            blocks.push(block);
        }
    }

    /// Inline content outside a paragraph (tight list items) opens an implicit paragraph.
    fn span(&mut self, text: &str, code: bool) {
        if self.inline.is_none() {
            self.inline = Some(Vec::new());
        }
        let span = Span {
            text: text.to_owned(),
            bold: self.bold > 0,
            italic: self.italic > 0,
            code,
            strike: self.strike > 0,
            link: self.links.last().cloned().flatten(),
        };
        if let Some(spans) = self.inline.as_mut() {
            match spans.last_mut() {
                Some(last)
                    if (last.bold, last.italic, last.code, last.strike, &last.link)
                        == (span.bold, span.italic, span.code, span.strike, &span.link)
                        && text != "\n"
                        && last.text != "\n" =>
                {
                    last.text.push_str(text)
                }
                _ => spans.push(span),
            }
        }
    }

    fn flush_implicit(&mut self) {
        if self.table.is_none() && self.heading.is_none() {
            if let Some(spans) = self.inline.take() {
                self.push_block(Block::Paragraph(spans));
            }
        }
    }

    fn open(&mut self, frame: Frame) -> Result<(), ToolError> {
        self.flush_implicit();
        // Levels as a reader counts them: a list or a quote is one (its items are not another).
        let levels = self.frames.iter().filter(|f| matches!(f, Frame::List(..) | Frame::Quote(_))).count();
        if levels >= MAX_DEPTH && matches!(frame, Frame::List(..) | Frame::Quote(_)) {
            return Err(format!("the Markdown nests lists and quotes deeper than {MAX_DEPTH} levels").into());
        }
        self.frames.push(frame);
        Ok(())
    }
}

impl Builder {
    /// A block or inline element opens.
    fn start(&mut self, tag: Tag) -> Result<(), ToolError> {
        match tag {
            Tag::Paragraph => {
                self.flush_implicit();
                self.inline = Some(Vec::new());
            }
            Tag::Heading { level, .. } => {
                self.flush_implicit();
                self.heading = Some(level as u8);
                self.inline = Some(Vec::new());
            }
            Tag::BlockQuote(_) => self.open(Frame::Quote(Vec::new()))?,
            Tag::CodeBlock(_) => {
                self.flush_implicit();
                self.code = Some(String::new());
            }
            Tag::List(start) => self.open(Frame::List(start, Vec::new()))?,
            Tag::Item => self.open(Frame::Item(Vec::new()))?,
            Tag::Table(aligns) => {
                if aligns.len() > MAX_COLUMNS {
                    return Err(
                        format!("a table has {} columns; at most {MAX_COLUMNS} are accepted", aligns.len()).into()
                    );
                }
                self.flush_implicit();
                let aligns = aligns
                    .iter()
                    .map(|a| match a {
                        pulldown_cmark::Alignment::Center => Align::Center,
                        pulldown_cmark::Alignment::Right => Align::Right,
                        _ => Align::Left,
                    })
                    .collect();
                self.table = Some(Table { aligns, ..Table::default() });
            }
            Tag::TableCell => self.inline = Some(Vec::new()),
            Tag::Emphasis => self.italic += 1,
            Tag::Strong => self.bold += 1,
            Tag::Strikethrough => self.strike += 1,
            // `<someone@example.com>` is an email autolink: its target is `mailto:`, not a
            // relative path named like an address.
            Tag::Link { link_type: pulldown_cmark::LinkType::Email, dest_url, .. } => {
                self.links.push(safe_link(&format!("mailto:{dest_url}")))
            }
            Tag::Link { dest_url, .. } => self.links.push(safe_link(&dest_url)),
            Tag::Image { .. } => self.links.push(None),
            _ => {}
        }
        Ok(())
    }

    /// A block or inline element closes.
    fn end(&mut self, end: TagEnd) {
        match end {
            TagEnd::Paragraph => {
                if let Some(spans) = self.inline.take() {
                    self.push_block(Block::Paragraph(spans));
                }
            }
            TagEnd::Heading(_) => {
                let spans = self.inline.take().unwrap_or_default();
                let level = self.heading.take().unwrap_or(1);
                self.push_block(Block::Heading(level, spans));
            }
            TagEnd::CodeBlock => {
                let text = printable_code(&self.code.take().unwrap_or_default());
                self.push_block(Block::Code(text.trim_end_matches('\n').to_owned()));
            }
            TagEnd::BlockQuote(_) => {
                self.flush_implicit();
                if let Some(Frame::Quote(blocks)) = self.frames.pop() {
                    self.push_block(Block::Quote(blocks));
                }
            }
            TagEnd::Item => {
                self.flush_implicit();
                if let Some(Frame::Item(blocks)) = self.frames.pop() {
                    if let Some(Frame::List(_, items)) = self.frames.last_mut() {
                        items.push(blocks);
                    }
                }
            }
            TagEnd::List(_) => {
                if let Some(Frame::List(start, items)) = self.frames.pop() {
                    self.push_block(Block::List { start, items });
                }
            }
            TagEnd::TableCell => {
                let cell = self.inline.take().unwrap_or_default();
                if let Some(t) = self.table.as_mut() {
                    t.row.push(cell);
                }
            }
            TagEnd::TableHead => {
                if let Some(t) = self.table.as_mut() {
                    t.head = std::mem::take(&mut t.row);
                }
            }
            TagEnd::TableRow => {
                if let Some(t) = self.table.as_mut() {
                    let row = std::mem::take(&mut t.row);
                    t.rows.push(row);
                }
            }
            TagEnd::Table => {
                if let Some(t) = self.table.take() {
                    self.push_block(Block::Table { head: t.head, rows: t.rows, aligns: t.aligns });
                }
            }
            TagEnd::Emphasis => self.italic = self.italic.saturating_sub(1),
            TagEnd::Strong => self.bold = self.bold.saturating_sub(1),
            TagEnd::Strikethrough => self.strike = self.strike.saturating_sub(1),
            TagEnd::Link | TagEnd::Image => {
                self.links.pop();
            }
            _ => {}
        }
    }
}

/// Parse `content` into blocks.
pub fn parse(content: &str) -> Result<Vec<Block>, ToolError> {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut b = Builder {
        frames: vec![Frame::Root(Vec::new())],
        inline: None,
        heading: None,
        code: None,
        table: None,
        bold: 0,
        italic: 0,
        strike: 0,
        links: Vec::new(),
    };
    for event in Parser::new_ext(content, options) {
        match event {
            Event::Start(tag) => b.start(tag)?,
            Event::End(end) => b.end(end),
            Event::Text(t) => match b.code.as_mut() {
                Some(code) => code.push_str(&t),
                None => b.span(&printable(&t), false),
            },
            Event::Code(t) => b.span(&printable(&t), true),
            // Raw HTML is shown as the text it is, never interpreted.
            Event::Html(t) | Event::InlineHtml(t) => match b.code.as_mut() {
                Some(code) => code.push_str(&t),
                None => b.span(&printable(&t), false),
            },
            Event::SoftBreak => b.span(" ", false),
            Event::HardBreak => b.span("\n", false),
            Event::Rule => {
                b.flush_implicit();
                b.push_block(Block::Rule);
            }
            Event::TaskListMarker(done) => b.span(if done { "☑ " } else { "☐ " }, false),
            Event::FootnoteReference(t) => b.span(&format!("[{t}]"), false),
            _ => {}
        }
    }
    b.flush_implicit();
    match b.frames.pop() {
        Some(Frame::Root(blocks)) => Ok(blocks),
        _ => Err("internal error: unbalanced Markdown structure".into()),
    }
}

/// The plain text of some spans.
pub fn plain(spans: &[Span]) -> String {
    spans.iter().map(|s| s.text.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_supported_element() {
        let md = "# Title\n\nSome *em* and **strong** and `code` and [a link](https://x.test).\n\n\
                  - one\n- two\n  1. nested\n\n> quoted\n\n---\n\n```\nfn main() {}\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n";
        let blocks = parse(md).unwrap();
        assert!(matches!(&blocks[0], Block::Heading(1, s) if plain(s) == "Title"));
        let Block::Paragraph(spans) = &blocks[1] else { panic!("{blocks:?}") };
        assert!(spans.iter().any(|s| s.italic && s.text == "em"));
        assert!(spans.iter().any(|s| s.bold && s.text == "strong"));
        assert!(spans.iter().any(|s| s.code && s.text == "code"));
        assert!(spans.iter().any(|s| s.link.as_deref() == Some("https://x.test")));
        let Block::List { start: None, items } = &blocks[2] else { panic!("{blocks:?}") };
        assert_eq!(items.len(), 2);
        assert!(matches!(&items[1][1], Block::List { start: Some(1), .. }));
        assert!(matches!(&blocks[3], Block::Quote(_)));
        assert_eq!(blocks[4], Block::Rule);
        assert_eq!(blocks[5], Block::Code("fn main() {}".into()));
        assert!(matches!(&blocks[6], Block::Table { head, rows, .. } if head.len() == 2 && rows.len() == 1));
    }

    #[test]
    fn unsafe_links_lose_their_target_and_html_stays_text() {
        assert_eq!(safe_link("javascript:alert(1)"), None);
        assert_eq!(safe_link("JaVa\tScRiPt:alert(1)"), None);
        assert_eq!(safe_link("data:text/html,x"), None);
        assert_eq!(safe_link("https://ok.test/a?b=c:d"), Some("https://ok.test/a?b=c:d".into()));
        assert_eq!(safe_link("/relative:path"), Some("/relative:path".into()));
        assert_eq!(safe_link("mailto:a@b.test"), Some("mailto:a@b.test".into()));
        let blocks = parse("<script>alert(1)</script>\n\nhi <b>x</b>").unwrap();
        assert!(matches!(&blocks[0], Block::Paragraph(s) if plain(s).contains("<script>")));
    }

    #[test]
    fn absurd_nesting_and_width_are_refused() {
        assert!(parse(&">".repeat(10_000)).unwrap_err().to_string().contains("deeper"));
        assert!(parse(&"1. ".repeat(1000)).unwrap_err().to_string().contains("deeper"));
        // A list level counts once (its items are not another level): 17 levels are accepted
        // (before: refused as deeper than 32), 33 are not.
        let nested =
            |levels: usize| (0..levels).map(|i| format!("{}- level {i}\n", "  ".repeat(i))).collect::<String>();
        assert!(parse(&nested(17)).is_ok());
        assert!(parse(&nested(32)).is_ok());
        assert!(parse(&nested(33)).unwrap_err().to_string().contains("deeper"));
        let wide = format!("|{}\n|{}\n", "a|".repeat(1000), "-|".repeat(1000));
        assert!(parse(&wide).unwrap_err().to_string().contains("columns"));
    }
}
