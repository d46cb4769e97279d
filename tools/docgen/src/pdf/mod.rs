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

mod fonts;
mod layout;
mod table;

use fonts::*;
use layout::*;
use table::*;

fn rect(r: (f32, f32, f32, f32)) -> Option<Rect> {
    Rect::from_xywh(r.0, r.1, r.2.max(0.1), r.3.max(0.1))
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
    document.set_metadata(metadata(meta));
    document.set_outline(outline(&layout.headings));
    let settings = PageSettings::from_wh(PAGE_W, PAGE_H).ok_or("bad page size")?;
    let count = layout.pages.len();
    let mut ids: Vec<Option<Identifier>> = vec![None; layout.seq];
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
                draw(&mut surface, item, &font, &metrics);
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

/// The document's metadata: title, creator, and what the caller gave of author, description,
/// keywords and language.
fn metadata(meta: &Meta) -> Metadata {
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
    metadata
}

fn paint(c: (u8, u8, u8)) -> krilla::paint::Paint {
    rgb::Color::new(c.0, c.1, c.2).into()
}

/// Draw one placed item (links are annotations, added by the page).
fn draw(
    surface: &mut krilla::surface::Surface<'_>,
    item: Item,
    font: &dyn Fn(Face) -> Option<Font>,
    metrics: &Metrics,
) {
    match item {
        Item::Text { x, baseline, face, size, text, color } => {
            if let Some(f) = font(face) {
                surface.set_fill(Some(Fill { paint: paint(color), ..Fill::default() }));
                let mut cx = x;
                for (run, rtl) in visual_runs(&text) {
                    let direction = if rtl { TextDirection::RightToLeft } else { TextDirection::LeftToRight };
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
