//! DOCX (WordprocessingML) written directly: every part is generated here, so the bytes depend
//! on the input alone — fixed part order, fixed zip times, ids numbered per document.

use std::io::Write;
use tool_kit::ToolError;

use zip::write::SimpleFileOptions;

use crate::html::escape;
use crate::markdown::{Align, Block, Span};
use crate::Meta;

const W_NS: &str = "xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\" \
xmlns:r=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships\"";
/// Usable width of an A4 page with 2 cm margins, in twentieths of a point.
const TEXT_WIDTH: usize = 9638;

#[derive(Default)]
struct Writer {
    body: String,
    links: Vec<String>,
    /// Ordered lists need their own numbering (to restart at their `start`): (start, level).
    ordered: Vec<(u64, usize)>,
}

impl Writer {
    /// The runs of `spans`; `bold` makes every run bold (table headers).
    fn runs(&mut self, spans: &[Span], bold: bool) {
        for s in spans {
            if s.text == "\n" {
                self.body.push_str("<w:r><w:br/></w:r>");
                continue;
            }
            let rpr = run_properties(s, bold);
            let run = format!("<w:r><w:rPr>{rpr}</w:rPr><w:t xml:space=\"preserve\">{}</w:t></w:r>", escape(&s.text));
            match &s.link {
                Some(url) => {
                    self.links.push(url.clone());
                    self.body
                        .push_str(&format!("<w:hyperlink r:id=\"rIdLink{}\">{run}</w:hyperlink>", self.links.len()));
                }
                None => self.body.push_str(&run),
            }
        }
    }

    fn paragraph(&mut self, ppr: &str, spans: &[Span], bold: bool) {
        self.body.push_str(&format!("<w:p><w:pPr>{ppr}</w:pPr>"));
        self.runs(spans, bold);
        self.body.push_str("</w:p>");
    }

    fn blocks(&mut self, blocks: &[Block], depth: usize, quote: bool) {
        let indent = |extra: usize| {
            if depth + extra == 0 {
                String::new()
            } else {
                format!("<w:ind w:left=\"{}\"/>", 720 * (depth + extra))
            }
        };
        let base_style = if quote { "<w:pStyle w:val=\"Quote\"/>" } else { "" };
        for block in blocks {
            match block {
                Block::Heading(level, spans) => {
                    self.paragraph(&format!("<w:pStyle w:val=\"Heading{level}\"/>"), spans, false)
                }
                Block::Paragraph(spans) => self.paragraph(&format!("{base_style}{}", indent(0)), spans, false),
                Block::Code(text) => {
                    self.body.push_str(&format!("<w:p><w:pPr><w:pStyle w:val=\"Code\"/>{}</w:pPr>", indent(0)));
                    for (i, line) in text.split('\n').enumerate() {
                        if i > 0 {
                            self.body.push_str("<w:r><w:br/></w:r>");
                        }
                        self.body.push_str(&format!("<w:r><w:t xml:space=\"preserve\">{}</w:t></w:r>", escape(line)));
                    }
                    self.body.push_str("</w:p>");
                }
                Block::List { start, items } => self.list(*start, items, depth, quote),
                Block::Quote(inner) => self.blocks(inner, depth + 1, true),
                Block::Rule => self.body.push_str(
                    "<w:p><w:pPr><w:pBdr><w:bottom w:val=\"single\" w:sz=\"6\" w:space=\"1\" w:color=\"999999\"/></w:pBdr></w:pPr></w:p>",
                ),
                Block::Table { head, rows, aligns } => self.table(head, rows, aligns),
            }
        }
    }

    /// A list: each item's first block on its numbered line, the rest indented below it.
    fn list(&mut self, start: Option<u64>, items: &[Vec<Block>], depth: usize, quote: bool) {
        // Each ordered list is its own numbering, starting where it says at its own
        // level: a nested list keeps its start, and a second one restarts.
        let level = depth.min(8);
        let num_id = match start {
            Some(n) => {
                self.ordered.push((n, level));
                self.ordered.len() + 1
            }
            None => 1,
        };
        for item in items {
            let numbered = format!(
                    "<w:pStyle w:val=\"ListParagraph\"/><w:numPr><w:ilvl w:val=\"{level}\"/><w:numId w:val=\"{num_id}\"/></w:numPr>"
                );
            // The item's first block goes on the numbered line itself, whatever it
            // is (never an empty bullet line above a heading, code or a quote).
            match item.split_first() {
                Some((Block::Paragraph(spans) | Block::Heading(_, spans), rest)) => {
                    self.paragraph(&numbered, spans, false);
                    self.blocks(rest, depth + 1, quote);
                }
                Some((Block::Code(text), rest)) => {
                    let mut spans = Vec::new();
                    for (i, line) in text.split('\n').enumerate() {
                        if i > 0 {
                            spans.push(Span { text: "\n".into(), ..Span::default() });
                        }
                        spans.push(Span { text: line.to_owned(), code: true, ..Span::default() });
                    }
                    self.paragraph(&numbered, &spans, false);
                    self.blocks(rest, depth + 1, quote);
                }
                Some((Block::Quote(inner), rest)) if matches!(inner.first(), Some(Block::Paragraph(_))) => {
                    if let Some((Block::Paragraph(spans), more)) = inner.split_first() {
                        let quoted: Vec<Span> = spans.iter().map(|s| Span { italic: true, ..s.clone() }).collect();
                        self.paragraph(&numbered, &quoted, false);
                        self.blocks(more, depth + 1, true);
                    }
                    self.blocks(rest, depth + 1, quote);
                }
                _ => {
                    self.paragraph(&numbered, &[], false);
                    self.blocks(item, depth + 1, quote);
                }
            }
        }
    }

    fn table(&mut self, head: &[Vec<Span>], rows: &[Vec<Vec<Span>>], aligns: &[Align]) {
        let cols = rows.iter().map(Vec::len).chain([head.len()]).max().unwrap_or(1).max(1);
        let width = TEXT_WIDTH / cols;
        self.body
            .push_str("<w:tbl><w:tblPr><w:tblStyle w:val=\"Table\"/><w:tblW w:w=\"0\" w:type=\"auto\"/><w:tblBorders>");
        for side in ["top", "left", "bottom", "right", "insideH", "insideV"] {
            self.body.push_str(&format!("<w:{side} w:val=\"single\" w:sz=\"4\" w:space=\"0\" w:color=\"BBBBBB\"/>"));
        }
        self.body.push_str("</w:tblBorders></w:tblPr><w:tblGrid>");
        for _ in 0..cols {
            self.body.push_str(&format!("<w:gridCol w:w=\"{width}\"/>"));
        }
        self.body.push_str("</w:tblGrid>");
        let empty = Vec::new();
        for (r, row) in std::iter::once(head).chain(rows.iter().map(Vec::as_slice)).enumerate() {
            self.body.push_str(if r == 0 { "<w:tr><w:trPr><w:tblHeader/></w:trPr>" } else { "<w:tr>" });
            for c in 0..cols {
                let cell = row.get(c).unwrap_or(&empty);
                let shade = if r == 0 { "<w:shd w:val=\"clear\" w:color=\"auto\" w:fill=\"EEEEEE\"/>" } else { "" };
                self.body.push_str(&format!("<w:tc><w:tcPr><w:tcW w:w=\"{width}\" w:type=\"dxa\"/>{shade}</w:tcPr>"));
                // `w:jc` follows `w:spacing` in a paragraph's properties (CT_PPr order).
                let jc = match Align::of(aligns, c) {
                    Align::Left => "",
                    Align::Center => "<w:jc w:val=\"center\"/>",
                    Align::Right => "<w:jc w:val=\"right\"/>",
                };
                self.paragraph(&format!("<w:spacing w:before=\"40\" w:after=\"40\"/>{jc}"), cell, r == 0);
                self.body.push_str("</w:tc>");
            }
            self.body.push_str("</w:tr>");
        }
        self.body.push_str("</w:tbl><w:p/>");
    }
}

/// A run's `<w:rPr>` children, in the order the schema requires (`CT_RPr`: rStyle, rFonts,
/// b, i, …, shd, …); Word rejects or repairs a document whose properties are out of order.
fn run_properties(s: &Span, bold: bool) -> String {
    let mut rpr = String::new();
    if s.link.is_some() {
        rpr.push_str("<w:rStyle w:val=\"Hyperlink\"/>");
    }
    if s.code {
        rpr.push_str("<w:rFonts w:ascii=\"Consolas\" w:hAnsi=\"Consolas\" w:cs=\"Consolas\"/>");
    }
    if s.bold || bold {
        rpr.push_str("<w:b/>");
    }
    if s.italic {
        rpr.push_str("<w:i/>");
    }
    if s.strike {
        rpr.push_str("<w:strike/>");
    }
    if s.code {
        rpr.push_str("<w:shd w:val=\"clear\" w:color=\"auto\" w:fill=\"F2F2F2\"/>");
    }
    rpr
}

fn styles() -> String {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<w:styles {W_NS}>\
<w:docDefaults><w:rPrDefault><w:rPr><w:rFonts w:ascii=\"Calibri\" w:hAnsi=\"Calibri\" w:eastAsia=\"Calibri\" w:cs=\"Calibri\"/>\
<w:sz w:val=\"22\"/><w:szCs w:val=\"22\"/><w:lang w:val=\"en-US\"/></w:rPr></w:rPrDefault>\
<w:pPrDefault><w:pPr><w:spacing w:after=\"120\" w:line=\"276\" w:lineRule=\"auto\"/></w:pPr></w:pPrDefault></w:docDefaults>\
<w:style w:type=\"paragraph\" w:default=\"1\" w:styleId=\"Normal\"><w:name w:val=\"Normal\"/><w:qFormat/></w:style>"
    );
    for (level, size) in [(1, 40), (2, 32), (3, 28), (4, 24), (5, 22), (6, 22)] {
        s.push_str(&format!(
            "<w:style w:type=\"paragraph\" w:styleId=\"Heading{level}\"><w:name w:val=\"heading {level}\"/>\
<w:basedOn w:val=\"Normal\"/><w:next w:val=\"Normal\"/><w:qFormat/><w:pPr><w:keepNext/><w:spacing w:before=\"240\" w:after=\"120\"/>\
<w:outlineLvl w:val=\"{}\"/></w:pPr><w:rPr><w:b/><w:sz w:val=\"{size}\"/><w:szCs w:val=\"{size}\"/></w:rPr></w:style>",
            level - 1
        ));
    }
    s.push_str(
        "<w:style w:type=\"paragraph\" w:styleId=\"Code\"><w:name w:val=\"Code\"/><w:basedOn w:val=\"Normal\"/>\
<w:pPr><w:shd w:val=\"clear\" w:color=\"auto\" w:fill=\"F4F4F4\"/><w:spacing w:after=\"120\" w:line=\"240\" w:lineRule=\"auto\"/></w:pPr>\
<w:rPr><w:rFonts w:ascii=\"Consolas\" w:hAnsi=\"Consolas\" w:cs=\"Consolas\"/><w:sz w:val=\"19\"/></w:rPr></w:style>\
<w:style w:type=\"paragraph\" w:styleId=\"Quote\"><w:name w:val=\"Quote\"/><w:basedOn w:val=\"Normal\"/>\
<w:pPr><w:pBdr><w:left w:val=\"single\" w:sz=\"12\" w:space=\"8\" w:color=\"CCCCCC\"/></w:pBdr></w:pPr><w:rPr><w:i/><w:color w:val=\"555555\"/></w:rPr></w:style>\
<w:style w:type=\"paragraph\" w:styleId=\"ListParagraph\"><w:name w:val=\"List Paragraph\"/><w:basedOn w:val=\"Normal\"/>\
<w:pPr><w:spacing w:after=\"60\"/><w:contextualSpacing/></w:pPr></w:style>\
<w:style w:type=\"character\" w:styleId=\"Hyperlink\"><w:name w:val=\"Hyperlink\"/><w:rPr><w:color w:val=\"0563C1\"/><w:u w:val=\"single\"/></w:rPr></w:style>\
<w:style w:type=\"table\" w:styleId=\"Table\"><w:name w:val=\"Table\"/><w:tblPr><w:tblCellMar><w:left w:w=\"100\" w:type=\"dxa\"/>\
<w:right w:w=\"100\" w:type=\"dxa\"/></w:tblCellMar></w:tblPr></w:style></w:styles>",
    );
    s
}

/// Room for a list number (twips): wide enough that a long start (`123456789.`) stays inside
/// the margin instead of running into the text.
fn hanging(start: u64) -> usize {
    let digits = start.max(1).to_string().len();
    (360 + digits.saturating_sub(2) * 120).min(2400)
}

fn numbering(ordered: &[(u64, usize)]) -> String {
    let level = |ilvl: usize, start: u64, fmt: &str, text: &str| {
        format!(
            "<w:lvl w:ilvl=\"{ilvl}\"><w:start w:val=\"{start}\"/><w:numFmt w:val=\"{fmt}\"/><w:lvlText w:val=\"{text}\"/>\
<w:lvlJc w:val=\"left\"/><w:pPr><w:ind w:left=\"{}\" w:hanging=\"{}\"/></w:pPr></w:lvl>",
            720 * (ilvl + 1) + hanging(start).saturating_sub(360),
            hanging(start)
        )
    };
    let mut s = format!("<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<w:numbering {W_NS}><w:abstractNum w:abstractNumId=\"0\">");
    for i in 0..9 {
        s.push_str(&level(i, 1, "bullet", ["•", "◦", "▪"][i % 3]));
    }
    s.push_str("</w:abstractNum>");
    // One abstract numbering per ordered list, its start written at the list's own level (the
    // readers that ignore a `startOverride` on a nested level still see it).
    for (i, (start, at)) in ordered.iter().enumerate() {
        s.push_str(&format!("<w:abstractNum w:abstractNumId=\"{}\">", i + 1));
        for l in 0..9 {
            let first = if l == *at { *start } else { 1 };
            s.push_str(&level(l, first, ["decimal", "lowerLetter", "lowerRoman"][l % 3], &format!("%{}.", l + 1)));
        }
        s.push_str("</w:abstractNum>");
    }
    s.push_str("<w:num w:numId=\"1\"><w:abstractNumId w:val=\"0\"/></w:num>");
    for (i, _) in ordered.iter().enumerate() {
        s.push_str(&format!("<w:num w:numId=\"{}\"><w:abstractNumId w:val=\"{}\"/></w:num>", i + 2, i + 1));
    }
    s.push_str("</w:numbering>");
    s
}

fn core_properties(meta: &Meta) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<cp:coreProperties \
xmlns:cp=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\" \
xmlns:dcterms=\"http://purl.org/dc/terms/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">",
    );
    s.push_str(&format!("<dc:title>{}</dc:title>", escape(&meta.title)));
    if let Some(author) = &meta.author {
        s.push_str(&format!("<dc:creator>{}</dc:creator>", escape(author)));
    }
    if let Some(d) = &meta.description {
        s.push_str(&format!("<dc:description>{}</dc:description>", escape(d)));
    }
    if !meta.keywords.is_empty() {
        s.push_str(&format!("<cp:keywords>{}</cp:keywords>", escape(&meta.keywords.join(", "))));
    }
    if let Some(l) = &meta.language {
        s.push_str(&format!("<dc:language>{}</dc:language>", escape(l)));
    }
    s.push_str("</cp:coreProperties>");
    s
}

fn custom_properties(meta: &Meta) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Properties \
xmlns=\"http://schemas.openxmlformats.org/officeDocument/2006/custom-properties\" \
xmlns:vt=\"http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes\">",
    );
    for (i, (key, value)) in meta.extra.iter().enumerate() {
        s.push_str(&format!(
            "<property fmtid=\"{{D5CDD505-2E9C-101B-9397-08002B2CF9AE}}\" pid=\"{}\" name=\"{}\"><vt:lpwstr>{}</vt:lpwstr></property>",
            i + 2,
            escape(key),
            escape(value)
        ));
    }
    s.push_str("</Properties>");
    s
}

/// Render the whole document as DOCX bytes.
pub fn render(doc: &[Block], meta: &Meta) -> Result<Vec<u8>, ToolError> {
    let mut w = Writer::default();
    w.blocks(doc, 0, false);
    let document = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<w:document {W_NS}><w:body>{}\
<w:sectPr><w:pgSz w:w=\"11906\" w:h=\"16838\"/><w:pgMar w:top=\"1134\" w:right=\"1134\" w:bottom=\"1134\" w:left=\"1134\" \
w:header=\"709\" w:footer=\"709\" w:gutter=\"0\"/></w:sectPr></w:body></w:document>",
        w.body
    );
    let mut rels = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
<Relationship Id=\"rIdStyles\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/styles\" Target=\"styles.xml\"/>\
<Relationship Id=\"rIdNumbering\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/numbering\" Target=\"numbering.xml\"/>",
    );
    for (i, url) in w.links.iter().enumerate() {
        rels.push_str(&format!(
            "<Relationship Id=\"rIdLink{}\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/hyperlink\" Target=\"{}\" TargetMode=\"External\"/>",
            i + 1,
            escape(url)
        ));
    }
    rels.push_str("</Relationships>");
    let parts: [(&str, String); 9] = [
        ("[Content_Types].xml", "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
<Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/><Default Extension=\"xml\" ContentType=\"application/xml\"/>\
<Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/>\
<Override PartName=\"/word/styles.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.styles+xml\"/>\
<Override PartName=\"/word/numbering.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.numbering+xml\"/>\
<Override PartName=\"/docProps/core.xml\" ContentType=\"application/vnd.openxmlformats-package.core-properties+xml\"/>\
<Override PartName=\"/docProps/app.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.extended-properties+xml\"/>\
<Override PartName=\"/docProps/custom.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.custom-properties+xml\"/></Types>".into()),
        ("word/document.xml", document),
        ("_rels/.rels", "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">\
<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"word/document.xml\"/>\
<Relationship Id=\"rId2\" Type=\"http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties\" Target=\"docProps/core.xml\"/>\
<Relationship Id=\"rId3\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties\" Target=\"docProps/app.xml\"/>\
<Relationship Id=\"rId4\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/custom-properties\" Target=\"docProps/custom.xml\"/></Relationships>".into()),
        ("docProps/core.xml", core_properties(meta)),
        ("docProps/app.xml", "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Properties xmlns=\"http://schemas.openxmlformats.org/officeDocument/2006/extended-properties\">\
<Application>mcp-gateway docgen</Application></Properties>".into()),
        ("docProps/custom.xml", custom_properties(meta)),
        ("word/_rels/document.xml.rels", rels),
        ("word/styles.xml", styles()),
        ("word/numbering.xml", numbering(&w.ordered)),
    ];
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    let mut write = |name: &str, data: &str| -> Result<(), ToolError> {
        zip.start_file(name, options).map_err(|e| ToolError::failed(e.to_string(), e))?;
        zip.write_all(data.as_bytes()).map_err(|e| ToolError::failed(e.to_string(), e))
    };
    for (name, data) in &parts {
        write(name, data)?;
    }
    Ok(zip.finish().map_err(|e| ToolError::failed(e.to_string(), e))?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `CT_RPr`'s children in schema order (ECMA-376 Part 1, 17.3.2.28; EG_RPrBase).
    const RPR_ORDER: [&str; 39] = [
        "rStyle",
        "rFonts",
        "b",
        "bCs",
        "i",
        "iCs",
        "caps",
        "smallCaps",
        "strike",
        "dstrike",
        "outline",
        "shadow",
        "emboss",
        "imprint",
        "noProof",
        "snapToGrid",
        "vanish",
        "webHidden",
        "color",
        "spacing",
        "w",
        "kern",
        "position",
        "sz",
        "szCs",
        "highlight",
        "u",
        "effect",
        "bdr",
        "shd",
        "fitText",
        "vertAlign",
        "rtl",
        "cs",
        "em",
        "lang",
        "eastAsianLayout",
        "specVanish",
        "oMath",
    ];

    /// The child element names of every `<w:rPr>` in `xml`.
    fn run_properties_in(xml: &str) -> Vec<Vec<String>> {
        xml.split("<w:rPr>")
            .skip(1)
            .map(|rest| {
                let inner = rest.split("</w:rPr>").next().unwrap_or("");
                inner.split("<w:").skip(1).map(|el| el.split([' ', '/', '>']).next().unwrap_or("").to_owned()).collect()
            })
            .collect()
    }

    fn assert_schema_order(xml: &str) {
        for children in run_properties_in(xml) {
            let positions: Vec<usize> = children
                .iter()
                .map(|c| RPR_ORDER.iter().position(|o| o == c).unwrap_or_else(|| panic!("unknown w:{c}")))
                .collect();
            assert!(positions.windows(2).all(|p| p[0] < p[1]), "out of order or repeated: {children:?}");
        }
    }

    #[test]
    fn run_properties_follow_the_schema_order() {
        let md = "**bold `code` text** and *[`linked code`](https://x.test)*\n\n\
                  | [site](https://x.test) | **`h`** | *plain* |\n|---|---|---|\n| [a](https://y.test) | `c` | **b** |\n";
        let mut w = Writer::default();
        w.blocks(&crate::markdown::parse(md).unwrap(), 0, false);
        let rprs = run_properties_in(&w.body);
        assert!(rprs.len() >= 10, "{rprs:?}");
        assert_schema_order(&w.body);
        assert_schema_order(&styles());
        // A code span inside bold: fonts, then bold, then shading.
        assert!(rprs.contains(&vec!["rFonts".into(), "b".into(), "shd".into()]), "{rprs:?}");
        assert!(w.body.contains(
            "<w:rPr><w:rFonts w:ascii=\"Consolas\" w:hAnsi=\"Consolas\" w:cs=\"Consolas\"/><w:b/>\
             <w:shd w:val=\"clear\" w:color=\"auto\" w:fill=\"F2F2F2\"/></w:rPr><w:t xml:space=\"preserve\">code</w:t>"
        ));
        // A link in a table header: the character style first, then the header's bold (once).
        assert!(w.body.contains(
            "<w:hyperlink r:id=\"rIdLink2\"><w:r><w:rPr><w:rStyle w:val=\"Hyperlink\"/><w:b/></w:rPr>\
             <w:t xml:space=\"preserve\">site</w:t>"
        ));
        // Code in a bold header cell: bold once, not repeated for the header.
        assert!(w.body.contains("<w:b/><w:shd w:val=\"clear\" w:color=\"auto\" w:fill=\"F2F2F2\"/></w:rPr><w:t xml:space=\"preserve\">h</w:t>"));
    }
}
