//! PDF: a small layout engine (greedy line breaking, pages, lists, quotes, code, tables)
//! drawing with krilla and the DejaVu fonts shipped in `fonts/`.
//!
//! Layout and drawing are separate passes: [`layout`] turns blocks into pages of positioned
//! items, [`render`] draws them. No clock, no randomness: the same input gives the same bytes.

use krilla::action::{Action, LinkAction};
use krilla::annotation::{Annotation, LinkAnnotation, Target};
use std::num::NonZeroU16;
use tool_kit::ToolError;

use krilla::color::rgb;
use krilla::destination::XyzDestination;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::Metadata;
use krilla::outline::{Outline, OutlineNode};
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::tagging::{
    Artifact, ArtifactType, ContentTag, Identifier, ListNumbering, Node, SpanTag, TableHeaderScope, Tag, TagGroup,
    TagKind, TagTree,
};
use krilla::text::{Font, TextDirection};
use krilla::Document;

use crate::markdown::{Align, Block, Span};
use crate::Meta;

const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 56.7;
const BODY: f32 = 10.5;
const LEADING: f32 = 1.4;
/// Smallest size a table is set in to fit its columns.
const TABLE_MIN_SIZE: f32 = 6.0;

static REGULAR: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");
static ITALIC: &[u8] = include_bytes!("../fonts/DejaVuSans-Oblique.ttf");
static BOLD_ITALIC: &[u8] = include_bytes!("../fonts/DejaVuSans-BoldOblique.ttf");
static MONO: &[u8] = include_bytes!("../fonts/DejaVuSansMono.ttf");

/// Which of the five embedded faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Face {
    Regular,
    Bold,
    Italic,
    BoldItalic,
    Mono,
}

impl Face {
    fn of(span: &Span, bold: bool) -> Self {
        match (span.code, span.bold || bold, span.italic) {
            (true, ..) => Face::Mono,
            (false, true, true) => Face::BoldItalic,
            (false, true, false) => Face::Bold,
            (false, false, true) => Face::Italic,
            (false, false, false) => Face::Regular,
        }
    }

    fn data(self) -> &'static [u8] {
        match self {
            Face::Regular => REGULAR,
            Face::Bold => BOLD,
            Face::Italic => ITALIC,
            Face::BoldItalic => BOLD_ITALIC,
            Face::Mono => MONO,
        }
    }
}

/// One face's glyph table, with the advances of U+0000..U+00FF looked up in advance (the
/// common case: a cmap lookup per character dominates layout time otherwise).
struct FaceMetrics {
    face: Face,
    glyphs: ttf_parser::Face<'static>,
    latin1: [u16; 256],
    /// Whether the face has a glyph for each of U+0000..U+00FF.
    latin1_drawn: [bool; 256],
}

/// Glyph advances for measuring text.
struct Metrics {
    faces: Vec<FaceMetrics>,
}

fn lookup_advance(glyphs: &ttf_parser::Face, c: char) -> u16 {
    let gid = glyphs.glyph_index(c).unwrap_or(ttf_parser::GlyphId(0));
    glyphs.glyph_hor_advance(gid).unwrap_or(0)
}

impl Metrics {
    fn new() -> Result<Self, ToolError> {
        let faces = [Face::Regular, Face::Bold, Face::Italic, Face::BoldItalic, Face::Mono]
            .into_iter()
            .map(|face| {
                let glyphs =
                    ttf_parser::Face::parse(face.data(), 0).map_err(|e| ToolError::failed(format!("font: {e}"), e))?;
                let mut latin1 = [0u16; 256];
                let mut latin1_drawn = [false; 256];
                for (c, drawn) in ('\0'..='\u{ff}').zip(latin1_drawn.iter_mut()) {
                    *drawn = glyphs.glyph_index(c).is_some();
                }
                for (c, slot) in ('\0'..='\u{ff}').zip(latin1.iter_mut()) {
                    *slot = lookup_advance(&glyphs, c);
                }
                Ok(FaceMetrics { face, glyphs, latin1, latin1_drawn })
            })
            .collect::<Result<_, ToolError>>()?;
        Ok(Self { faces })
    }

    fn get(&self, face: Face) -> Option<&FaceMetrics> {
        self.faces.iter().find(|f| f.face == face)
    }

    /// The advance of one character, in font units (0 when the face is missing).
    fn advance(&self, face: Face, c: char) -> u64 {
        let Some(f) = self.get(face) else { return 0 };
        let advance = match f.latin1.get(c as usize) {
            Some(a) => *a,
            None => lookup_advance(&f.glyphs, c),
        };
        u64::from(advance)
    }

    /// The summed advances of `text`, in font units.
    fn units(&self, face: Face, text: &str) -> u64 {
        text.chars().map(|c| self.advance(face, c)).sum()
    }

    /// Font units to points at `size`. Sums stay integers until here, so a width summed
    /// piecewise is bit-identical to the same text measured at once.
    fn points(&self, face: Face, size: f32, units: u64) -> f32 {
        let Some(f) = self.get(face) else { return 0.0 };
        units as f32 * size / f32::from(f.glyphs.units_per_em())
    }

    fn width(&self, face: Face, size: f32, text: &str) -> f32 {
        self.points(face, size, self.units(face, text))
    }
}

/// One thing to draw, in page coordinates (origin top-left, y down).
#[derive(Debug, Clone)]
enum Item {
    Text { x: f32, baseline: f32, face: Face, size: f32, text: String, color: (u8, u8, u8) },
    Fill { rect: (f32, f32, f32, f32), color: (u8, u8, u8) },
    Stroke { rect: (f32, f32, f32, f32), color: (u8, u8, u8) },
    Link { rect: (f32, f32, f32, f32), url: String },
}

/// What a drawn item is in the document's structure (the tagged PDF's structure tree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    /// Decoration, repeated headers, page numbers: not read aloud.
    Artifact,
    /// Content of the structure element with this index.
    Elem(usize),
}

/// A structure element's kind (a tag in the structure tree).
#[derive(Debug, Clone)]
enum Kind {
    Document,
    Heading(u8, String),
    Paragraph,
    Code,
    List(bool),
    Item,
    Label,
    Body,
    Quote,
    Table,
    Row,
    HeaderCell,
    Cell,
    Link,
}

/// A child of a structure element, in reading order.
#[derive(Debug, Clone, Copy)]
enum Child {
    Elem(usize),
    /// The drawn item with this sequence number.
    Item(usize),
}

/// A structure element and its children.
#[derive(Debug, Clone)]
struct Elem {
    kind: Kind,
    children: Vec<Child>,
}

/// An item on a page with its place in the structure tree.
#[derive(Debug, Clone)]
struct Placed {
    item: Item,
    owner: Owner,
    seq: usize,
}

/// A piece of a line: text in one face.
struct Piece {
    text: String,
    face: Face,
    size: f32,
    link: Option<String>,
    color: (u8, u8, u8),
    /// Struck through: a line is drawn across the text.
    strike: bool,
}

struct Layout<'m> {
    metrics: &'m Metrics,
    pages: Vec<Vec<Placed>>,
    y: f32,
    /// Headings in order, for the outline: level, text, page index, top.
    headings: Vec<(u8, String, usize, f32)>,
    /// The structure tree; element 0 is the document.
    elems: Vec<Elem>,
    /// The open elements, innermost last.
    open: Vec<usize>,
    /// Items placed so far (the next item's sequence number).
    seq: usize,
    /// Text placed now is an artifact (a repeated table header).
    artifact: bool,
    /// Characters placed that their face has no glyph for (they would be drawn as boxes).
    missing: std::collections::BTreeSet<char>,
    /// Why the document cannot be laid out legibly (the first reason found).
    refused: Option<String>,
}

const TEXT: (u8, u8, u8) = (34, 34, 34);
const LINK: (u8, u8, u8) = (5, 99, 193);
const GRAY: (u8, u8, u8) = (90, 90, 90);

impl<'m> Layout<'m> {
    fn bottom() -> f32 {
        PAGE_H - MARGIN
    }

    fn new(metrics: &'m Metrics) -> Self {
        Layout {
            metrics,
            pages: vec![Vec::new()],
            y: MARGIN,
            headings: Vec::new(),
            elems: vec![Elem { kind: Kind::Document, children: Vec::new() }],
            open: vec![0],
            seq: 0,
            artifact: false,
            missing: std::collections::BTreeSet::new(),
            refused: None,
        }
    }

    fn page(&mut self) -> &mut Vec<Placed> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    /// Place `item` on the current page: text and links belong to the innermost open element,
    /// shapes are decoration.
    fn push(&mut self, item: Item) {
        if let Item::Text { face, text, .. } = &item {
            if let Some(f) = self.metrics.get(*face) {
                let drawn = |c: char| {
                    f.latin1_drawn.get(c as usize).copied().unwrap_or_else(|| f.glyphs.glyph_index(c).is_some())
                };
                let lacks = |c: &char| !invisible(*c) && !drawn(*c);
                self.missing.extend(text.chars().filter(lacks).take(64));
            }
        }
        let owner = match item {
            Item::Text { .. } | Item::Link { .. } if !self.artifact => {
                Owner::Elem(self.open.last().copied().unwrap_or(0))
            }
            _ => Owner::Artifact,
        };
        self.place(item, owner);
    }

    fn place(&mut self, item: Item, owner: Owner) {
        self.page();
        self.place_on(self.pages.len() - 1, item, owner);
    }

    /// Place `item` on page `page` (an earlier one, for a quote bar or a page number).
    fn place_on(&mut self, page: usize, item: Item, owner: Owner) {
        let seq = self.seq;
        self.seq += 1;
        if let Owner::Elem(e) = owner {
            self.elems[e].children.push(Child::Item(seq));
        }
        self.pages[page].push(Placed { item, owner, seq });
    }

    /// A new element inside the innermost open one (not opened).
    fn element(&mut self, kind: Kind) -> usize {
        let id = self.elems.len();
        self.elems.push(Elem { kind, children: Vec::new() });
        let parent = self.open.last().copied().unwrap_or(0);
        self.elems[parent].children.push(Child::Elem(id));
        id
    }

    /// Open a new element: what is placed until [`Layout::close`] belongs to it.
    fn open(&mut self, kind: Kind) -> usize {
        let id = self.element(kind);
        self.open.push(id);
        id
    }

    fn close(&mut self) {
        self.open.pop();
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = MARGIN;
    }

    /// Make room for `height`, starting a new page when it does not fit.
    fn room(&mut self, height: f32) {
        if self.y + height > Self::bottom() && self.y > MARGIN {
            self.new_page();
        }
    }

    /// Break styled spans into lines no wider than `width`.
    fn lines(&self, spans: &[Span], size: f32, bold: bool, color: (u8, u8, u8), width: f32) -> Vec<Vec<Piece>> {
        let mut lines: Vec<Vec<Piece>> = vec![Vec::new()];
        let mut used = 0.0;
        for span in spans {
            if span.text == "\n" {
                lines.push(Vec::new());
                used = 0.0;
                continue;
            }
            let face = Face::of(span, bold);
            let size = if span.code { size * 0.92 } else { size };
            let color = if span.link.is_some() { LINK } else { color };
            // Words with their trailing spaces, so breaks fall between words.
            let mut words: Vec<String> = Vec::new();
            for (i, part) in span.text.split(' ').enumerate() {
                if i > 0 {
                    if let Some(last) = words.last_mut() {
                        last.push(' ')
                    } else {
                        words.push(" ".into())
                    }
                }
                if !part.is_empty() {
                    words.push(part.to_owned());
                }
            }
            for word in words {
                let w = self.metrics.width(face, size, &word);
                let line_empty = lines.last().is_none_or(|l| l.is_empty());
                if used + self.metrics.width(face, size, word.trim_end()) > width && !line_empty {
                    lines.push(Vec::new());
                    used = 0.0;
                }
                let word = if !span.code && lines.last().is_none_or(|l| l.is_empty()) {
                    word.trim_start().to_owned()
                } else {
                    word
                };
                // A word wider than the line is cut by characters. Advances are summed once
                // (font units, exact integers), so a very long word costs linear time: the
                // rest is never re-measured per line.
                let (end, end_units) = (word.trim_end().len(), self.metrics.units(face, word.trim_end()));
                let (mut done, mut done_units) = (0usize, 0u64);
                loop {
                    let rest = &word[done..];
                    let rest_trimmed = if done < end { end_units - done_units } else { 0 };
                    if rest.is_empty() || self.metrics.points(face, size, rest_trimmed) <= width - used {
                        break;
                    }
                    let (mut cut, mut cut_units, mut sum) = (0usize, 0u64, 0u64);
                    for (i, c) in rest.char_indices() {
                        sum += self.metrics.advance(face, c);
                        if self.metrics.points(face, size, sum) > width - used {
                            break;
                        }
                        (cut, cut_units) = (i + c.len_utf8(), sum);
                    }
                    if cut == 0 && lines.last().is_some_and(|l| !l.is_empty()) {
                        lines.push(Vec::new());
                        used = 0.0;
                        continue;
                    }
                    if cut == 0 {
                        // Not even one character fits: place one per line.
                        let first = rest.chars().next().unwrap_or(' ');
                        (cut, cut_units) = (first.len_utf8(), self.metrics.advance(face, first));
                    }
                    push_piece(lines.last_mut(), &rest[..cut], face, size, &span.link, color, span.strike);
                    lines.push(Vec::new());
                    used = 0.0;
                    done += cut;
                    done_units += cut_units;
                }
                let rest = &word[done..];
                if !rest.is_empty() {
                    push_piece(lines.last_mut(), rest, face, size, &span.link, color, span.strike);
                    used += if done == 0 {
                        w
                    } else {
                        self.metrics.points(face, size, self.metrics.units(face, &word) - done_units)
                    };
                }
            }
        }
        lines
    }

    /// Place one laid-out line: its pieces left to right from `x`, links as annotations.
    fn draw_line(&mut self, line: Vec<Piece>, x: f32, baseline: f32, size: f32, line_h: f32) {
        let mut cx = x;
        for piece in line {
            let w = self.metrics.width(piece.face, piece.size, &piece.text);
            let linked = piece.link.is_some() && !self.artifact;
            if linked {
                self.open(Kind::Link);
            }
            let Piece { text, face, size: piece_size, color, strike, link } = piece;
            if strike {
                // Across the middle of the lower-case letters, in the text's colour.
                let (thick, ink) = (piece_size * 0.06, self.metrics.width(face, piece_size, text.trim_end()));
                self.push(Item::Fill { rect: (cx, baseline - piece_size * 0.3, ink, thick), color });
            }
            self.push(Item::Text { x: cx, baseline, face, size: piece_size, text, color });
            if let Some(url) = link {
                self.push(Item::Link { rect: (cx, baseline - size, w.max(1.0), line_h), url });
            }
            if linked {
                self.close();
            }
            cx += w;
        }
    }

    /// Lay out text lines at `x`, advancing the cursor.
    fn text(&mut self, spans: &[Span], x: f32, width: f32, size: f32, bold: bool, color: (u8, u8, u8)) {
        let line_h = size * LEADING;
        for line in self.lines(spans, size, bold, color, width) {
            self.room(line_h);
            self.draw_line(line, x, self.y + size, size, line_h);
            self.y += line_h;
        }
    }

    fn blocks(&mut self, blocks: &[Block], x: f32, width: f32, quote: bool) {
        let color = if quote { GRAY } else { TEXT };
        for block in blocks {
            match block {
                Block::Heading(level, spans) => {
                    let size = [20.0, 16.0, 13.5, 12.0, 11.0, 10.5][usize::from(level.saturating_sub(1)).min(5)];
                    // Keep a heading with at least two lines of what follows.
                    self.room(size * 2.2 + BODY * LEADING * 2.0);
                    self.y += size * 0.6;
                    let text = crate::markdown::plain(spans).trim().to_owned();
                    self.headings.push((*level, text.clone(), self.pages.len() - 1, self.y));
                    self.open(Kind::Heading(*level, text));
                    self.text(spans, x, width, size, true, color);
                    self.close();
                    self.y += size * 0.3;
                }
                Block::Paragraph(spans) => {
                    self.open(Kind::Paragraph);
                    self.text(spans, x, width, BODY, false, color);
                    self.close();
                    self.y += BODY * 0.6;
                }
                Block::Code(code) => {
                    self.open(Kind::Code);
                    self.code(code, x, width);
                    self.close();
                }
                Block::List { start, items } => {
                    self.open(Kind::List(start.is_some()));
                    let marker = |i: usize| match start {
                        Some(n) => format!("{}.", n.saturating_add(i as u64)),
                        None => "•".to_owned(),
                    };
                    // Room for the widest number (`123456789.`), so it stays inside the margin.
                    let widest = (0..items.len())
                        .map(|i| self.metrics.width(Face::Regular, BODY, &marker(i)))
                        .fold(0.0, f32::max);
                    let indent = f32::max(18.0, widest + 6.0);
                    for (i, item) in items.iter().enumerate() {
                        self.open(Kind::Item);
                        let marker = marker(i);
                        self.room(BODY * LEADING);
                        let mx = x + indent - 2.0 - self.metrics.width(Face::Regular, BODY, &marker) - 4.0;
                        let item_marker = Item::Text {
                            x: mx,
                            baseline: self.y + BODY,
                            face: Face::Regular,
                            size: BODY,
                            text: marker,
                            color,
                        };
                        self.open(Kind::Label);
                        self.push(item_marker);
                        self.close();
                        let before = self.y;
                        self.open(Kind::Body);
                        self.blocks(item, x + indent, width - indent, quote);
                        self.close();
                        if (self.y - before).abs() < f32::EPSILON {
                            self.y += BODY * LEADING;
                        }
                        self.y -= BODY * 0.3;
                        self.close();
                    }
                    self.close();
                    self.y += BODY * 0.4;
                }
                Block::Quote(inner) => {
                    let (first, top) = (self.pages.len() - 1, self.y);
                    self.open(Kind::Quote);
                    self.blocks(inner, x + 14.0, width - 14.0, true);
                    self.close();
                    // The bar runs beside the quote on every page it covers.
                    let last = self.pages.len() - 1;
                    for page in first..=last {
                        let from = if page == first { top } else { MARGIN };
                        let to = if page == last { self.y - BODY * 0.6 } else { Self::bottom() };
                        if to > from {
                            let bar = Item::Fill { rect: (x + 2.0, from, 2.5, to - from), color: (200, 200, 200) };
                            self.place_on(page, bar, Owner::Artifact);
                        }
                    }
                }
                Block::Rule => {
                    self.room(12.0);
                    self.y += 5.0;
                    self.push(Item::Fill { rect: (x, self.y, width, 0.8), color: (170, 170, 170) });
                    self.y += 9.0;
                }
                Block::Table { head, rows, aligns } => self.table(head, rows, aligns, x, width),
            }
        }
    }

    fn code(&mut self, code: &str, x: f32, width: f32) {
        let size = 9.0;
        let line_h = size * 1.35;
        let spans: Vec<Span> = code
            .split('\n')
            .enumerate()
            .flat_map(|(i, line)| {
                let text = Span { text: line.to_owned(), code: true, ..Span::default() };
                if i == 0 {
                    vec![text]
                } else {
                    vec![Span { text: "\n".into(), ..Span::default() }, text]
                }
            })
            .collect();
        let lines = self.lines(&spans, size / 0.92, false, TEXT, width - 12.0);
        self.y += 2.0;
        for line in lines {
            self.room(line_h);
            self.push(Item::Fill { rect: (x, self.y, width, line_h), color: (244, 244, 244) });
            let mut cx = x + 6.0;
            for piece in line {
                let w = self.metrics.width(piece.face, piece.size, &piece.text);
                let item = Item::Text {
                    x: cx,
                    baseline: self.y + size,
                    face: Face::Mono,
                    size,
                    text: piece.text,
                    color: TEXT,
                };
                self.push(item);
                cx += w;
            }
            self.y += line_h;
        }
        self.y += BODY * 0.8;
    }

    /// Column widths from their content: each column gets at least its longest word (so a
    /// figure is never broken), and the room left goes where the text is longest; when
    /// everything fits on one line, widths follow the text.
    fn column_widths(
        &self,
        head: &[Vec<Span>],
        rows: &[Vec<Vec<Span>>],
        cols: usize,
        width: f32,
        size: f32,
    ) -> (Vec<f32>, f32) {
        const PAD: f32 = 8.0;
        let (mut longest_word, mut one_line) = (vec![PAD; cols], vec![PAD; cols]);
        for (row, head) in std::iter::once((head, true)).chain(rows.iter().map(|r| (r.as_slice(), false))) {
            for (c, cell) in row.iter().enumerate().take(cols) {
                let mut line = 0.0;
                for span in cell {
                    let face = Face::of(span, head);
                    let size = if span.code { size * 0.92 } else { size };
                    for word in span.text.split_whitespace() {
                        longest_word[c] = f32::max(longest_word[c], self.metrics.width(face, size, word) + PAD);
                    }
                    line += self.metrics.width(face, size, &span.text);
                }
                one_line[c] = f32::max(one_line[c], line + PAD);
            }
        }
        let sum = |v: &[f32]| v.iter().sum::<f32>();
        let words = sum(&longest_word);
        if sum(&one_line) <= width {
            let spare = (width - sum(&one_line)) / cols as f32;
            return (one_line.iter().map(|w| w + spare).collect(), words);
        }
        if words >= width {
            // Even the longest words do not fit side by side: shrink them alike (words get cut).
            let scale = width / words;
            return (longest_word.iter().map(|w| w * scale).collect(), words);
        }
        let spare = width - words;
        let wants: Vec<f32> = one_line.iter().zip(&longest_word).map(|(o, l)| o - l).collect();
        let total = sum(&wants).max(f32::EPSILON);
        (longest_word.iter().zip(&wants).map(|(l, w)| l + spare * w / total).collect(), words)
    }

    /// A row's cells broken into lines for their columns.
    fn lay_row(&self, row: &[Vec<Span>], head: bool, g: &TableGeometry) -> Vec<Vec<Vec<Piece>>> {
        let empty = Vec::new();
        (0..g.cols.len())
            .map(|c| self.lines(row.get(c).unwrap_or(&empty), g.size, head, TEXT, g.cols[c].1 - 8.0))
            .collect()
    }

    fn table(&mut self, head: &[Vec<Span>], rows: &[Vec<Vec<Span>>], aligns: &[Align], x: f32, width: f32) {
        let cols = rows.iter().map(Vec::len).chain([head.len()]).max().unwrap_or(1).max(1);
        // A table whose longest words do not fit side by side is set smaller, down to 6 pt;
        // one too wide even then (a column narrower than a letter) is refused, never drawn
        // with letters spilling over the cell borders.
        let mut size = 9.5;
        let (mut widths, words) = self.column_widths(head, rows, cols, width, size);
        if words > width {
            // Word widths grow with the size, the cells' padding (8 pt each) does not.
            let pad = 8.0 * cols as f32;
            let per_point = (words - pad) / size;
            size = f32::max(TABLE_MIN_SIZE, (width - pad) / per_point * 0.99);
            widths = self.column_widths(head, rows, cols, width, size).0;
        }
        let letter = self.metrics.width(Face::Bold, size, "W") + 8.0;
        if width / (cols as f32) < letter {
            let most = (width / letter).floor();
            self.refused.get_or_insert(format!(
                "a table of {cols} columns does not fit the width of a PDF page (at most {most} at {size:.1} pt); \
                 split it, or use format \"docx\" or \"html\""
            ));
        }
        let mut at = x;
        let cols: Vec<(f32, f32)> = widths
            .into_iter()
            .map(|w| {
                at += w;
                (at - w, w)
            })
            .collect();
        let g = TableGeometry { cols, size, line_h: size * LEADING };
        let head_cells = self.lay_row(head, true, &g);
        let head_h = row_height(&head_cells, g.line_h);
        // The header never stands alone at the bottom of a page: it goes with the first row
        // (or the first page's worth of it).
        let first_h = rows.first().map_or(0.0, |r| row_height(&self.lay_row(r, false, &g), g.line_h));
        let page = Self::bottom() - MARGIN;
        self.room((head_h + first_h.min(page / 2.0)).min(page));
        // A header taller than a third of a page is not repeated.
        let repeat = (head_h <= page / 3.0).then_some((head, head_h));
        self.open(Kind::Table);
        self.place_row(head_cells, true, aligns, &g, None);
        for row in rows {
            let cells = self.lay_row(row, false, &g);
            self.place_row(cells, false, aligns, &g, repeat);
        }
        self.close();
        self.y += BODY * 0.8;
    }

    /// Place a row at the cursor. A row that does not fit goes to the next page; a row taller
    /// than a page holds is split between lines, the rest continuing on the next page, so no
    /// text ever runs off the bottom. Each continuation page starts with `header` (the header row
    /// and its height) again.
    fn place_row(
        &mut self,
        mut cells: Vec<Vec<Vec<Piece>>>,
        head: bool,
        aligns: &[Align],
        g: &TableGeometry,
        header: Option<(&[Vec<Span>], f32)>,
    ) {
        let reserve = header.map_or(0.0, |(_, height)| height);
        // One row and one cell element each, however many pages the row runs over.
        self.open(Kind::Row);
        let owners: Vec<Owner> = (0..cells.len())
            .map(|_| Owner::Elem(self.element(if head { Kind::HeaderCell } else { Kind::Cell })))
            .collect();
        self.close();
        loop {
            let height = row_height(&cells, g.line_h);
            let room = Self::bottom() - self.y;
            if height <= room {
                self.table_row(cells, height, head, aligns, g, &owners);
                return;
            }
            let fit = ((room - 6.0) / g.line_h).floor().max(0.0) as usize;
            if height > Self::bottom() - MARGIN - reserve && fit >= 1 {
                let rest: Vec<_> = cells.iter_mut().map(|c| c.split_off(fit.min(c.len()))).collect();
                let part = std::mem::replace(&mut cells, rest);
                let part_h = row_height(&part, g.line_h);
                self.table_row(part, part_h, head, aligns, g, &owners);
            }
            self.new_page();
            if let Some((h, height)) = header {
                // The repeated header is pagination: read once, at the table's top.
                let repeated = self.lay_row(h, true, g);
                let artifacts = vec![Owner::Artifact; repeated.len()];
                self.table_row(repeated, height, true, aligns, g, &artifacts);
            }
        }
    }

    /// Draw one table row at the cursor (shaded when it is the header), each cell's lines
    /// placed as its column's alignment asks, and advance past it.
    #[allow(clippy::too_many_arguments)]
    fn table_row(
        &mut self,
        cells: Vec<Vec<Vec<Piece>>>,
        height: f32,
        head: bool,
        aligns: &[Align],
        g: &TableGeometry,
        owners: &[Owner],
    ) {
        let top = self.y;
        for (c, lines) in cells.into_iter().enumerate() {
            // The cell's text belongs to its cell element (or is an artifact).
            let owner = owners.get(c).copied().unwrap_or(Owner::Artifact);
            let was_artifact = self.artifact;
            match owner {
                Owner::Elem(e) => self.open.push(e),
                Owner::Artifact => self.artifact = true,
            }
            let (cx, col_w) = g.cols[c];
            if head {
                self.push(Item::Fill { rect: (cx, top, col_w, height), color: (238, 238, 238) });
            }
            self.push(Item::Stroke { rect: (cx, top, col_w, height), color: (187, 187, 187) });
            for (l, line) in lines.into_iter().enumerate() {
                // Centred or right-aligned within the cell's inner width, as the column asks.
                let used: f32 = line.iter().map(|p| self.metrics.width(p.face, p.size, &p.text)).sum();
                let inner = col_w - 8.0;
                let shift = match Align::of(aligns, c) {
                    Align::Left => 0.0,
                    Align::Center => ((inner - used) / 2.0).max(0.0),
                    Align::Right => (inner - used).max(0.0),
                };
                self.draw_line(line, cx + 4.0 + shift, top + 3.0 + l as f32 * g.line_h + g.size, g.size, g.line_h);
            }
            match owner {
                Owner::Elem(_) => self.close(),
                Owner::Artifact => self.artifact = was_artifact,
            }
        }
        self.y = top + height;
    }
}

/// The height of a row of cells: its tallest cell's lines plus padding.
fn row_height(cells: &[Vec<Vec<Piece>>], line_h: f32) -> f32 {
    cells.iter().map(Vec::len).max().unwrap_or(1).max(1) as f32 * line_h + 6.0
}

/// Where a table's columns are (left edge, width) and how its text is set.
struct TableGeometry {
    cols: Vec<(f32, f32)>,
    size: f32,
    line_h: f32,
}

fn push_piece(
    line: Option<&mut Vec<Piece>>,
    text: &str,
    face: Face,
    size: f32,
    link: &Option<String>,
    color: (u8, u8, u8),
    strike: bool,
) {
    let Some(line) = line else { return };
    match line.last_mut() {
        Some(last)
            if last.face == face
                && last.size == size
                && &last.link == link
                && last.color == color
                && last.strike == strike =>
        {
            last.text.push_str(text)
        }
        _ => line.push(Piece { text: text.to_owned(), face, size, link: link.clone(), color, strike }),
    }
}

fn rect(r: (f32, f32, f32, f32)) -> Option<Rect> {
    Rect::from_xywh(r.0, r.1, r.2.max(0.1), r.3.max(0.1))
}

/// Characters that draw nothing (zero-width joiners and spaces, variation selectors, the
/// byte-order mark, soft hyphens): a font need not have them.
fn invisible(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{fe00}'..='\u{fe0f}')
        || ('\u{e0100}'..='\u{e01ef}').contains(&c)
}

/// Refuse a document with characters the embedded fonts cannot draw, naming them, rather than
/// drawing empty boxes.
fn check_drawable(missing: &std::collections::BTreeSet<char>) -> Result<(), ToolError> {
    if missing.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = missing.iter().take(12).map(|c| format!("'{c}' U+{:04X}", u32::from(*c))).collect();
    let more = if missing.len() > 12 { format!(" and {} more", missing.len() - 12) } else { String::new() };
    Err(format!(
        "the PDF's fonts (DejaVu: Latin, Greek, Cyrillic, Arabic, Hebrew, symbols) cannot draw {}{more}; they \
         would show as empty boxes. Use format \"docx\" or \"html\", which use the reader's fonts, or remove them",
        shown.join(", ")
    )
    .into())
}

/// Whether a character is written right to left (bidi class R or AL: Hebrew, Arabic…).
fn right_to_left(c: char) -> bool {
    matches!(unicode_bidi::bidi_class(c), unicode_bidi::BidiClass::R | unicode_bidi::BidiClass::AL)
}

/// `text` as runs in visual (left-to-right drawing) order, each with its direction, by the
/// Unicode bidi algorithm (the paragraph direction from its first strong character), so each
/// run can be shaped alone: Arabic joined and drawn right to left, Latin and digits inside it
/// left to right.
fn visual_runs(text: &str) -> Vec<(&str, bool)> {
    if !text.chars().any(right_to_left) {
        return vec![(text, false)];
    }
    let info = unicode_bidi::BidiInfo::new(text, None);
    let mut out = Vec::new();
    for para in &info.paragraphs {
        let (levels, runs) = info.visual_runs(para, para.range.clone());
        for run in runs {
            let rtl = levels.get(run.start).is_some_and(|l| l.is_rtl());
            out.push((&text[run], rtl));
        }
    }
    out
}

/// The page number at the foot of each page (`3 / 12`), an artifact.
fn number_pages(layout: &mut Layout) {
    let count = layout.pages.len();
    for i in 0..count {
        let label = format!("{} / {count}", i + 1);
        let size = 8.5;
        let x = (PAGE_W - layout.metrics.width(Face::Regular, size, &label)) / 2.0;
        let item =
            Item::Text { x, baseline: PAGE_H - MARGIN / 2.0, face: Face::Regular, size, text: label, color: GRAY };
        layout.place_on(i, item, Owner::Artifact);
    }
}

/// The PDF outline (bookmarks): the headings, nested by level.
fn outline(headings: &[(u8, String, usize, f32)]) -> Outline {
    let mut root = Outline::new();
    // Open headings, innermost last; a heading closes those at its level or deeper.
    let mut open: Vec<(u8, OutlineNode)> = Vec::new();
    fn close(open: &mut Vec<(u8, OutlineNode)>, root: &mut Outline) {
        if let Some((_, node)) = open.pop() {
            match open.last_mut() {
                Some((_, parent)) => parent.push_child(node),
                None => root.push_child(node),
            }
        }
    }
    for (level, text, page, y) in headings {
        while open.last().is_some_and(|(l, _)| l >= level) {
            close(&mut open, &mut root);
        }
        let title = if text.is_empty() { "(untitled)".to_owned() } else { text.clone() };
        open.push((*level, OutlineNode::new(title, XyzDestination::new(*page, Point::from_xy(MARGIN, *y)))));
    }
    while !open.is_empty() {
        close(&mut open, &mut root);
    }
    root
}

/// The tag for a structure element.
fn tag(kind: &Kind) -> TagKind {
    match kind {
        Kind::Document => Tag::Div.into(),
        Kind::Quote => Tag::BlockQuote.into(),
        Kind::Heading(level, title) => {
            Tag::Hn(NonZeroU16::new(u16::from(*level).max(1)).unwrap_or(NonZeroU16::MIN), Some(title.clone())).into()
        }
        Kind::Paragraph => Tag::P.into(),
        Kind::Code => Tag::Code.into(),
        Kind::List(true) => Tag::L(ListNumbering::Decimal).into(),
        Kind::List(false) => Tag::L(ListNumbering::Disc).into(),
        Kind::Item => Tag::LI.into(),
        Kind::Label => Tag::Lbl.into(),
        Kind::Body => Tag::LBody.into(),
        Kind::Table => Tag::Table.into(),
        Kind::Row => Tag::TR.into(),
        Kind::HeaderCell => Tag::TH(TableHeaderScope::Column).into(),
        Kind::Cell => Tag::TD.into(),
        Kind::Link => Tag::Link.into(),
    }
}

/// The children of element `e` as structure-tree nodes, in reading order; each identifier
/// is taken once (an identifier must have exactly one parent).
fn nodes(elems: &[Elem], e: usize, ids: &mut [Option<Identifier>]) -> Vec<Node> {
    let mut out = Vec::new();
    for child in &elems[e].children {
        match *child {
            Child::Item(seq) => {
                if let Some(id) = ids.get_mut(seq).and_then(Option::take) {
                    out.push(id.into());
                }
            }
            Child::Elem(c) => {
                let children = nodes(elems, c, ids);
                if !children.is_empty() {
                    out.push(TagGroup::with_children(tag(&elems[c].kind), children).into());
                }
            }
        }
    }
    out
}

/// Render the whole document as PDF bytes; returns the bytes and the page count. The PDF is
/// tagged (a structure tree in reading order: headings, paragraphs, lists, quotes, tables with
/// header cells, links; decoration, repeated headers and page numbers are artifacts), carries
/// the document language when given, an outline of the headings and page numbers.
pub fn render(doc: &[Block], meta: &Meta) -> Result<(Vec<u8>, usize), ToolError> {
    let metrics = Metrics::new()?;
    let mut layout = Layout::new(&metrics);
    layout.blocks(doc, MARGIN, PAGE_W - 2.0 * MARGIN, false);
    check_drawable(&layout.missing)?;
    if let Some(why) = layout.refused.take() {
        return Err(why.into());
    }
    number_pages(&mut layout);
    let fonts: Vec<(Face, Font)> = [Face::Regular, Face::Bold, Face::Italic, Face::BoldItalic, Face::Mono]
        .into_iter()
        .map(|f| {
            Font::new(f.data().into(), 0)
                .map(|font| (f, font))
                .ok_or_else(|| "cannot load the embedded font".to_owned())
        })
        .collect::<Result<_, _>>()?;
    let font = |face: Face| fonts.iter().find(|(f, _)| *f == face).map(|(_, font)| font.clone());

    let mut document = Document::new();
    let mut metadata = Metadata::new().title(meta.title.clone()).creator("mcp-gateway docgen".into());
    if let Some(author) = &meta.author {
        metadata = metadata.authors(vec![author.clone()]);
    }
    if let Some(d) = &meta.description {
        metadata = metadata.description(d.clone());
    }
    if !meta.keywords.is_empty() {
        metadata = metadata.keywords(meta.keywords.clone());
    }
    if let Some(l) = &meta.language {
        metadata = metadata.language(l.clone());
    }
    document.set_metadata(metadata);
    document.set_outline(outline(&layout.headings));
    let settings = PageSettings::from_wh(PAGE_W, PAGE_H).ok_or("bad page size")?;
    let count = layout.pages.len();
    let mut ids: Vec<Option<Identifier>> = vec![None; layout.seq];
    let paint = |c: (u8, u8, u8)| -> krilla::paint::Paint { rgb::Color::new(c.0, c.1, c.2).into() };
    for items in std::mem::take(&mut layout.pages) {
        let mut page = document.start_page_with(settings.clone());
        let mut links = Vec::new();
        {
            let mut surface = page.surface();
            for Placed { item, owner, seq } in items {
                // Text drawn in visual order is read in its logical order.
                let logical = match &item {
                    Item::Text { text, .. } if text.chars().any(right_to_left) => Some(text.clone()),
                    _ => None,
                };
                let content = match (&item, owner) {
                    (Item::Text { .. }, Owner::Elem(_)) => {
                        ContentTag::Span(SpanTag::empty().with_actual_text(logical.as_deref()))
                    }
                    (Item::Text { .. }, Owner::Artifact) => {
                        ContentTag::Artifact(Artifact::with_kind(ArtifactType::Page))
                    }
                    (Item::Link { .. }, _) => {
                        if let Item::Link { rect: r, url } = item {
                            links.push((r, url, owner, seq));
                        }
                        continue;
                    }
                    _ => ContentTag::Artifact(Artifact::with_kind(ArtifactType::Layout)),
                };
                let id = surface.start_tagged(content);
                if owner != Owner::Artifact {
                    ids[seq] = Some(id);
                }
                match item {
                    Item::Text { x, baseline, face, size, text, color } => {
                        if let Some(f) = font(face) {
                            surface.set_fill(Some(Fill { paint: paint(color), ..Fill::default() }));
                            let mut cx = x;
                            for (run, rtl) in visual_runs(&text) {
                                let direction =
                                    if rtl { TextDirection::RightToLeft } else { TextDirection::LeftToRight };
                                surface.draw_text(Point::from_xy(cx, baseline), f.clone(), size, run, false, direction);
                                cx += metrics.width(face, size, run);
                            }
                        }
                    }
                    Item::Fill { rect: r, color } => {
                        let mut pb = PathBuilder::new();
                        if let Some(r) = rect(r) {
                            pb.push_rect(r);
                        }
                        if let Some(path) = pb.finish() {
                            surface.set_stroke(None);
                            surface.set_fill(Some(Fill { paint: paint(color), ..Fill::default() }));
                            surface.draw_path(&path);
                        }
                    }
                    Item::Stroke { rect: r, color } => {
                        let mut pb = PathBuilder::new();
                        if let Some(r) = rect(r) {
                            pb.push_rect(r);
                        }
                        if let Some(path) = pb.finish() {
                            surface.set_fill(None);
                            surface.set_stroke(Some(Stroke { paint: paint(color), width: 0.6, ..Stroke::default() }));
                            surface.draw_path(&path);
                            surface.set_stroke(None);
                        }
                    }
                    Item::Link { .. } => {}
                }
                surface.end_tagged();
            }
            surface.finish();
        }
        for (r, url, owner, seq) in links {
            if let Some(r) = rect(r) {
                let target = Target::Action(Action::Link(LinkAction::new(url)));
                let annotation = Annotation::new_link(LinkAnnotation::new(r, target), None);
                match owner {
                    Owner::Elem(_) => ids[seq] = Some(page.add_tagged_annotation(annotation)),
                    Owner::Artifact => page.add_annotation(annotation),
                }
            }
        }
        page.finish();
    }
    let mut tree = TagTree::new().with_lang(meta.language.clone());
    for node in nodes(&layout.elems, 0, &mut ids) {
        tree.push(node);
    }
    document.set_tag_tree(tree);
    let bytes = document.finish().map_err(|e| format!("PDF serialisation failed: {e:?}"))?;
    Ok((bytes, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout_pages(markdown: &str) -> usize {
        let blocks = crate::markdown::parse(markdown).unwrap();
        let metrics = Metrics::new().unwrap();
        let mut layout = Layout::new(&metrics);
        layout.blocks(&blocks, MARGIN, PAGE_W - 2.0 * MARGIN, false);
        layout.pages.len()
    }

    /// The layout alone (what the line breaker costs, without krilla's drawing, which is
    /// slow in unoptimised test builds) must stay linear for a content-limit-sized word.
    #[test]
    fn a_content_limit_sized_word_or_code_line_is_laid_out_in_linear_time() {
        let n = crate::DEFAULT_MAX_CONTENT_BYTES - 64;
        for (what, markdown) in [("word", "x".repeat(n)), ("code line", format!("```\n{}\n```\n", "y".repeat(n)))] {
            let started = std::time::Instant::now();
            let pages = layout_pages(&markdown);
            let took = started.elapsed();
            assert!(took < std::time::Duration::from_secs(10), "{what}: layout took {took:?}");
            assert!(pages > 100, "{what}: {pages} pages");
        }
    }

    /// Before: a list numbered from 123456789 drew its numbers left of the page margin.
    #[test]
    fn long_list_numbers_stay_inside_the_margin() {
        let blocks = crate::markdown::parse("123456789. first\n123456790. second\n").unwrap();
        let metrics = Metrics::new().unwrap();
        let mut layout = Layout::new(&metrics);
        layout.blocks(&blocks, MARGIN, PAGE_W - 2.0 * MARGIN, false);
        for p in &layout.pages[0] {
            if let Item::Text { x, .. } = p.item {
                assert!(x >= MARGIN - 0.01, "text at {x}, left of the margin {MARGIN}");
            }
        }
        let texts: Vec<&str> = layout.pages[0]
            .iter()
            .filter_map(|p| if let Item::Text { text, .. } = &p.item { Some(text.as_str()) } else { None })
            .collect();
        assert!(texts.contains(&"123456789.") && texts.contains(&"123456790."), "{texts:?}");
    }

    /// Before: a quote running onto the next page lost its bar on every page.
    #[test]
    fn a_quote_bar_runs_beside_the_quote_on_every_page() {
        let lines: String = (0..150).map(|i| format!("> quoted line {i}\n>\n")).collect();
        let blocks = crate::markdown::parse(&lines).unwrap();
        let metrics = Metrics::new().unwrap();
        let mut layout = Layout::new(&metrics);
        layout.blocks(&blocks, MARGIN, PAGE_W - 2.0 * MARGIN, false);
        assert!(layout.pages.len() >= 3);
        for (n, page) in layout.pages.iter().enumerate() {
            let bar = page.iter().any(|p| matches!(p.item, Item::Fill { rect: (x, _, w, h), .. } if x == MARGIN + 2.0 && w == 2.5 && h > 100.0));
            assert!(bar, "page {n} has no quote bar");
        }
    }

    #[test]
    fn words_are_cut_where_the_line_is_full() {
        let metrics = Metrics::new().unwrap();
        let layout = Layout::new(&metrics);
        let span = Span { text: format!("{} tail", "é".repeat(500)), ..Span::default() };
        let lines = layout.lines(std::slice::from_ref(&span), BODY, false, TEXT, 200.0);
        let text: String = lines.iter().flatten().map(|p| p.text.as_str()).collect();
        assert_eq!(text, span.text, "nothing lost or duplicated");
        for line in &lines {
            let w: f32 = line.iter().map(|p| metrics.width(p.face, p.size, p.text.trim_end())).sum();
            assert!(w <= 200.0, "{w}");
        }
        let full = &lines[0][0].text;
        let one_more = format!("{full}é");
        assert!(metrics.width(Face::Regular, BODY, &one_more) > 200.0, "each cut line is as full as it can be");
    }
}
