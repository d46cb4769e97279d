//! The layout pass: blocks become pages of positioned items, each owned by an element of
//! the structure tree (text flow, lists, quotes, code; tables are in [`super::table`]).

use super::*;

/// One thing to draw, in page coordinates (origin top-left, y down).
#[derive(Debug, Clone)]
pub(super) enum Item {
    Text { x: f32, baseline: f32, face: Face, size: f32, text: String, color: (u8, u8, u8) },
    Fill { rect: (f32, f32, f32, f32), color: (u8, u8, u8) },
    Stroke { rect: (f32, f32, f32, f32), color: (u8, u8, u8) },
    Link { rect: (f32, f32, f32, f32), url: String },
}

/// What a drawn item is in the document's structure (the tagged PDF's structure tree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Owner {
    /// Decoration, repeated headers, page numbers: not read aloud.
    Artifact,
    /// Content of the structure element with this index.
    Elem(usize),
}

/// A structure element's kind (a tag in the structure tree).
#[derive(Debug, Clone)]
pub(super) enum Kind {
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
pub(super) enum Child {
    Elem(usize),
    /// The drawn item with this sequence number.
    Item(usize),
}

/// A structure element and its children.
#[derive(Debug, Clone)]
pub(super) struct Elem {
    pub(super) kind: Kind,
    pub(super) children: Vec<Child>,
}

/// An item on a page with its place in the structure tree.
#[derive(Debug, Clone)]
pub(super) struct Placed {
    pub(super) item: Item,
    pub(super) owner: Owner,
    pub(super) seq: usize,
}

/// A piece of a line: text in one face.
pub(super) struct Piece {
    pub(super) text: String,
    pub(super) face: Face,
    pub(super) size: f32,
    pub(super) link: Option<String>,
    pub(super) color: (u8, u8, u8),
    /// Struck through: a line is drawn across the text.
    pub(super) strike: bool,
}

pub(super) struct Layout<'m> {
    pub(super) metrics: &'m Metrics,
    pub(super) pages: Vec<Vec<Placed>>,
    pub(super) y: f32,
    /// Headings in order, for the outline: level, text, page index, top.
    pub(super) headings: Vec<(u8, String, usize, f32)>,
    /// The structure tree; element 0 is the document.
    pub(super) elems: Vec<Elem>,
    /// The open elements, innermost last.
    pub(super) open: Vec<usize>,
    /// Items placed so far (the next item's sequence number).
    pub(super) seq: usize,
    /// Text placed now is an artifact (a repeated table header).
    pub(super) artifact: bool,
    /// Characters placed that their face has no glyph for (they would be drawn as boxes).
    pub(super) missing: std::collections::BTreeSet<char>,
    /// Why the document cannot be laid out legibly (the first reason found).
    pub(super) refused: Option<String>,
}

pub(super) const TEXT: (u8, u8, u8) = (34, 34, 34);
pub(super) const LINK: (u8, u8, u8) = (5, 99, 193);
pub(super) const GRAY: (u8, u8, u8) = (90, 90, 90);

impl<'m> Layout<'m> {
    pub(super) fn bottom() -> f32 {
        PAGE_H - MARGIN
    }

    pub(super) fn new(metrics: &'m Metrics) -> Self {
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

    pub(super) fn page(&mut self) -> &mut Vec<Placed> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    /// Place `item` on the current page: text and links belong to the innermost open element,
    /// shapes are decoration.
    pub(super) fn push(&mut self, item: Item) {
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

    pub(super) fn place(&mut self, item: Item, owner: Owner) {
        self.page();
        self.place_on(self.pages.len() - 1, item, owner);
    }

    /// Place `item` on page `page` (an earlier one, for a quote bar or a page number).
    pub(super) fn place_on(&mut self, page: usize, item: Item, owner: Owner) {
        let seq = self.seq;
        self.seq += 1;
        if let Owner::Elem(e) = owner {
            self.elems[e].children.push(Child::Item(seq));
        }
        self.pages[page].push(Placed { item, owner, seq });
    }

    /// A new element inside the innermost open one (not opened).
    pub(super) fn element(&mut self, kind: Kind) -> usize {
        let id = self.elems.len();
        self.elems.push(Elem { kind, children: Vec::new() });
        let parent = self.open.last().copied().unwrap_or(0);
        self.elems[parent].children.push(Child::Elem(id));
        id
    }

    /// Open a new element: what is placed until [`Layout::close`] belongs to it.
    pub(super) fn open(&mut self, kind: Kind) -> usize {
        let id = self.element(kind);
        self.open.push(id);
        id
    }

    pub(super) fn close(&mut self) {
        self.open.pop();
    }

    pub(super) fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = MARGIN;
    }

    /// Make room for `height`, starting a new page when it does not fit.
    pub(super) fn room(&mut self, height: f32) {
        if self.y + height > Self::bottom() && self.y > MARGIN {
            self.new_page();
        }
    }

    /// Break styled spans into lines no wider than `width`.
    pub(super) fn lines(
        &self,
        spans: &[Span],
        size: f32,
        bold: bool,
        color: (u8, u8, u8),
        width: f32,
    ) -> Vec<Vec<Piece>> {
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
            for word in words(&span.text) {
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
    pub(super) fn draw_line(&mut self, line: Vec<Piece>, x: f32, baseline: f32, size: f32, line_h: f32) {
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
    pub(super) fn text(&mut self, spans: &[Span], x: f32, width: f32, size: f32, bold: bool, color: (u8, u8, u8)) {
        let line_h = size * LEADING;
        for line in self.lines(spans, size, bold, color, width) {
            self.room(line_h);
            self.draw_line(line, x, self.y + size, size, line_h);
            self.y += line_h;
        }
    }

    pub(super) fn blocks(&mut self, blocks: &[Block], x: f32, width: f32, quote: bool) {
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
                Block::List { start, items } => self.list(*start, items, x, width, quote),
                Block::Quote(inner) => self.quote(inner, x, width),
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

    /// A list: each item's marker (a bullet, or its number) in the margin beside its blocks.
    fn list(&mut self, start: Option<u64>, items: &[Vec<Block>], x: f32, width: f32, quote: bool) {
        let color = if quote { GRAY } else { TEXT };
        self.open(Kind::List(start.is_some()));
        let marker = |i: usize| match start {
            Some(n) => format!("{}.", n.saturating_add(i as u64)),
            None => "•".to_owned(),
        };
        // Room for the widest number (`123456789.`), so it stays inside the margin.
        let widest = (0..items.len()).map(|i| self.metrics.width(Face::Regular, BODY, &marker(i))).fold(0.0, f32::max);
        let indent = f32::max(18.0, widest + 6.0);
        for (i, item) in items.iter().enumerate() {
            self.open(Kind::Item);
            let marker = marker(i);
            self.room(BODY * LEADING);
            let mx = x + indent - 2.0 - self.metrics.width(Face::Regular, BODY, &marker) - 4.0;
            let item_marker =
                Item::Text { x: mx, baseline: self.y + BODY, face: Face::Regular, size: BODY, text: marker, color };
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

    /// A block quote: its blocks indented, a bar beside them on every page they cover.
    fn quote(&mut self, inner: &[Block], x: f32, width: f32) {
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

    pub(super) fn code(&mut self, code: &str, x: f32, width: f32) {
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
}

/// The words of `text` with their trailing spaces, so line breaks fall between words.
fn words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for (i, part) in text.split(' ').enumerate() {
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
    words
}
