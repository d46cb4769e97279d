//! PDF: a small layout engine (greedy line breaking, pages, lists, quotes, code, tables)
//! drawing with krilla and the DejaVu fonts shipped in `fonts/`.
//!
//! Layout and drawing are separate passes: [`layout`] turns blocks into pages of positioned
//! items, [`render`] draws them. No clock, no randomness: the same input gives the same bytes.

use krilla::action::{Action, LinkAction};
use krilla::annotation::{Annotation, LinkAnnotation, Target};
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::text::{Font, TextDirection};
use krilla::Document;

use crate::markdown::{Align, Block, Span};
use crate::Meta;

const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 56.7;
const BODY: f32 = 10.5;
const LEADING: f32 = 1.4;

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
    fn new() -> Result<Self, String> {
        let faces = [Face::Regular, Face::Bold, Face::Italic, Face::BoldItalic, Face::Mono]
            .into_iter()
            .map(|face| {
                let glyphs = ttf_parser::Face::parse(face.data(), 0).map_err(|e| format!("font: {e}"))?;
                let mut latin1 = [0u16; 256];
                for (c, slot) in ('\0'..='\u{ff}').zip(latin1.iter_mut()) {
                    *slot = lookup_advance(&glyphs, c);
                }
                Ok(FaceMetrics { face, glyphs, latin1 })
            })
            .collect::<Result<_, String>>()?;
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
    pages: Vec<Vec<Item>>,
    y: f32,
}

const TEXT: (u8, u8, u8) = (34, 34, 34);
const LINK: (u8, u8, u8) = (5, 99, 193);
const GRAY: (u8, u8, u8) = (90, 90, 90);

impl Layout<'_> {
    fn bottom() -> f32 {
        PAGE_H - MARGIN
    }

    fn page(&mut self) -> &mut Vec<Item> {
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    fn push(&mut self, item: Item) {
        self.page().push(item);
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
            if let Some(url) = &piece.link {
                self.push(Item::Link { rect: (cx, baseline - size, w.max(1.0), line_h), url: url.clone() });
            }
            let Piece { text, face, size: piece_size, color, strike, .. } = piece;
            if strike {
                // Across the middle of the lower-case letters, in the text's colour.
                let (thick, ink) = (piece_size * 0.06, self.metrics.width(face, piece_size, text.trim_end()));
                self.push(Item::Fill { rect: (cx, baseline - piece_size * 0.3, ink, thick), color });
            }
            self.push(Item::Text { x: cx, baseline, face, size: piece_size, text, color });
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
                    self.text(spans, x, width, size, true, color);
                    self.y += size * 0.3;
                }
                Block::Paragraph(spans) => {
                    self.text(spans, x, width, BODY, false, color);
                    self.y += BODY * 0.6;
                }
                Block::Code(code) => self.code(code, x, width),
                Block::List { start, items } => {
                    for (i, item) in items.iter().enumerate() {
                        let marker = match start {
                            Some(n) => format!("{}.", n.saturating_add(i as u64)),
                            None => "•".to_owned(),
                        };
                        self.room(BODY * LEADING);
                        let mx = x + 16.0 - self.metrics.width(Face::Regular, BODY, &marker) - 4.0;
                        let item_marker = Item::Text {
                            x: mx,
                            baseline: self.y + BODY,
                            face: Face::Regular,
                            size: BODY,
                            text: marker,
                            color,
                        };
                        self.push(item_marker);
                        let before = self.y;
                        self.blocks(item, x + 18.0, width - 18.0, quote);
                        if (self.y - before).abs() < f32::EPSILON {
                            self.y += BODY * LEADING;
                        }
                        self.y -= BODY * 0.3;
                    }
                    self.y += BODY * 0.4;
                }
                Block::Quote(inner) => {
                    let (page, top) = (self.pages.len(), self.y);
                    self.blocks(inner, x + 14.0, width - 14.0, true);
                    // The bar, when the quote stayed on one page.
                    if self.pages.len() == page {
                        self.push(Item::Fill {
                            rect: (x + 2.0, top, 2.5, self.y - top - BODY * 0.6),
                            color: (200, 200, 200),
                        });
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

    fn table(&mut self, head: &[Vec<Span>], rows: &[Vec<Vec<Span>>], aligns: &[Align], x: f32, width: f32) {
        let cols = rows.iter().map(Vec::len).chain([head.len()]).max().unwrap_or(1).max(1);
        let col_w = width / cols as f32;
        let size = 9.5;
        let line_h = size * LEADING;
        let empty = Vec::new();
        let lay = |this: &Self, row: &[Vec<Span>], head: bool| -> (Vec<Vec<Vec<Piece>>>, f32) {
            let cells: Vec<Vec<Vec<Piece>>> =
                (0..cols).map(|c| this.lines(row.get(c).unwrap_or(&empty), size, head, TEXT, col_w - 8.0)).collect();
            let height = cells.iter().map(Vec::len).max().unwrap_or(1).max(1) as f32 * line_h + 6.0;
            (cells, height)
        };
        let geometry = TableGeometry { x, col_w, size, line_h };
        let (_, head_h) = lay(self, head, true);
        // The header never stands alone at the bottom of a page: it goes with the first row.
        let first_h = rows.first().map_or(0.0, |r| lay(self, r, false).1);
        let page = Self::bottom() - MARGIN;
        self.room(if head_h + first_h <= page { head_h + first_h } else { head_h });
        let (cells, height) = lay(self, head, true);
        self.table_row(cells, height, true, aligns, &geometry);
        for row in rows {
            let (cells, height) = lay(self, row, false);
            if self.y + height > Self::bottom() && self.y > MARGIN {
                // A new page repeats the header row above the rows that continue there.
                self.new_page();
                let (cells, height) = lay(self, head, true);
                self.table_row(cells, height, true, aligns, &geometry);
            }
            self.table_row(cells, height, false, aligns, &geometry);
        }
        self.y += BODY * 0.8;
    }

    /// Draw one table row at the cursor (shaded when it is the header), each cell's lines
    /// placed as its column's alignment asks, and advance past it.
    fn table_row(&mut self, cells: Vec<Vec<Vec<Piece>>>, height: f32, head: bool, aligns: &[Align], g: &TableGeometry) {
        let top = self.y;
        for (c, lines) in cells.into_iter().enumerate() {
            let cx = g.x + c as f32 * g.col_w;
            if head {
                self.push(Item::Fill { rect: (cx, top, g.col_w, height), color: (238, 238, 238) });
            }
            self.push(Item::Stroke { rect: (cx, top, g.col_w, height), color: (187, 187, 187) });
            for (l, line) in lines.into_iter().enumerate() {
                // Centred or right-aligned within the cell's inner width, as the column asks.
                let used: f32 = line.iter().map(|p| self.metrics.width(p.face, p.size, &p.text)).sum();
                let inner = g.col_w - 8.0;
                let shift = match Align::of(aligns, c) {
                    Align::Left => 0.0,
                    Align::Center => ((inner - used) / 2.0).max(0.0),
                    Align::Right => (inner - used).max(0.0),
                };
                self.draw_line(line, cx + 4.0 + shift, top + 3.0 + l as f32 * g.line_h + g.size, g.size, g.line_h);
            }
        }
        self.y = top + height;
    }
}

/// Where a table's columns are and how its text is set.
struct TableGeometry {
    x: f32,
    col_w: f32,
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

/// Render the whole document as PDF bytes; returns the bytes and the page count.
pub fn render(doc: &[Block], meta: &Meta) -> Result<(Vec<u8>, usize), String> {
    let metrics = Metrics::new()?;
    let mut layout = Layout { metrics: &metrics, pages: vec![Vec::new()], y: MARGIN };
    layout.blocks(doc, MARGIN, PAGE_W - 2.0 * MARGIN, false);
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
    let settings = PageSettings::from_wh(PAGE_W, PAGE_H).ok_or("bad page size")?;
    let count = layout.pages.len();
    for items in layout.pages {
        let mut page = document.start_page_with(settings.clone());
        let mut links = Vec::new();
        {
            let mut surface = page.surface();
            for item in items {
                match item {
                    Item::Text { x, baseline, face, size, text, color } => {
                        let Some(f) = font(face) else { continue };
                        surface.set_fill(Some(Fill {
                            paint: rgb::Color::new(color.0, color.1, color.2).into(),
                            ..Fill::default()
                        }));
                        surface.draw_text(Point::from_xy(x, baseline), f, size, &text, false, TextDirection::Auto);
                    }
                    Item::Fill { rect: r, color } => {
                        let mut pb = PathBuilder::new();
                        if let Some(r) = rect(r) {
                            pb.push_rect(r);
                        }
                        if let Some(path) = pb.finish() {
                            surface.set_stroke(None);
                            surface.set_fill(Some(Fill {
                                paint: rgb::Color::new(color.0, color.1, color.2).into(),
                                ..Fill::default()
                            }));
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
                            let paint = rgb::Color::new(color.0, color.1, color.2).into();
                            surface.set_stroke(Some(Stroke { paint, width: 0.6, ..Stroke::default() }));
                            surface.draw_path(&path);
                            surface.set_stroke(None);
                        }
                    }
                    Item::Link { rect: r, url } => links.push((r, url)),
                }
            }
            surface.finish();
        }
        for (r, url) in links {
            if let Some(r) = rect(r) {
                let target = Target::Action(Action::Link(LinkAction::new(url)));
                page.add_annotation(Annotation::new_link(LinkAnnotation::new(r, target), None));
            }
        }
        page.finish();
    }
    let bytes = document.finish().map_err(|e| format!("PDF serialisation failed: {e:?}"))?;
    Ok((bytes, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout_pages(markdown: &str) -> usize {
        let blocks = crate::markdown::parse(markdown).unwrap();
        let metrics = Metrics::new().unwrap();
        let mut layout = Layout { metrics: &metrics, pages: vec![Vec::new()], y: MARGIN };
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

    #[test]
    fn words_are_cut_where_the_line_is_full() {
        let metrics = Metrics::new().unwrap();
        let layout = Layout { metrics: &metrics, pages: Vec::new(), y: MARGIN };
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
