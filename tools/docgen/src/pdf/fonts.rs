//! The fonts the PDF is drawn in (DejaVu, shipped in `fonts/`), their metrics, and which
//! characters they can draw.

use super::*;

pub(super) static REGULAR: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
pub(super) static BOLD: &[u8] = include_bytes!("../../fonts/DejaVuSans-Bold.ttf");
pub(super) static ITALIC: &[u8] = include_bytes!("../../fonts/DejaVuSans-Oblique.ttf");
pub(super) static BOLD_ITALIC: &[u8] = include_bytes!("../../fonts/DejaVuSans-BoldOblique.ttf");
pub(super) static MONO: &[u8] = include_bytes!("../../fonts/DejaVuSansMono.ttf");

/// Which of the five embedded faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Face {
    Regular,
    Bold,
    Italic,
    BoldItalic,
    Mono,
}

impl Face {
    pub(super) fn of(span: &Span, bold: bool) -> Self {
        match (span.code, span.bold || bold, span.italic) {
            (true, ..) => Face::Mono,
            (false, true, true) => Face::BoldItalic,
            (false, true, false) => Face::Bold,
            (false, false, true) => Face::Italic,
            (false, false, false) => Face::Regular,
        }
    }

    pub(super) fn data(self) -> &'static [u8] {
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
pub(super) struct FaceMetrics {
    pub(super) face: Face,
    pub(super) glyphs: ttf_parser::Face<'static>,
    pub(super) latin1: [u16; 256],
    /// Whether the face has a glyph for each of U+0000..U+00FF.
    pub(super) latin1_drawn: [bool; 256],
}

/// Glyph advances for measuring text.
pub(super) struct Metrics {
    pub(super) faces: Vec<FaceMetrics>,
}

pub(super) fn lookup_advance(glyphs: &ttf_parser::Face, c: char) -> u16 {
    let gid = glyphs.glyph_index(c).unwrap_or(ttf_parser::GlyphId(0));
    glyphs.glyph_hor_advance(gid).unwrap_or(0)
}

impl Metrics {
    pub(super) fn new() -> Result<Self, ToolError> {
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

    pub(super) fn get(&self, face: Face) -> Option<&FaceMetrics> {
        self.faces.iter().find(|f| f.face == face)
    }

    /// The advance of one character, in font units (0 when the face is missing).
    pub(super) fn advance(&self, face: Face, c: char) -> u64 {
        let Some(f) = self.get(face) else { return 0 };
        let advance = match f.latin1.get(c as usize) {
            Some(a) => *a,
            None => lookup_advance(&f.glyphs, c),
        };
        u64::from(advance)
    }

    /// The summed advances of `text`, in font units.
    pub(super) fn units(&self, face: Face, text: &str) -> u64 {
        text.chars().map(|c| self.advance(face, c)).sum()
    }

    /// Font units to points at `size`. Sums stay integers until here, so a width summed
    /// piecewise is bit-identical to the same text measured at once.
    pub(super) fn points(&self, face: Face, size: f32, units: u64) -> f32 {
        let Some(f) = self.get(face) else { return 0.0 };
        units as f32 * size / f32::from(f.glyphs.units_per_em())
    }

    pub(super) fn width(&self, face: Face, size: f32, text: &str) -> f32 {
        self.points(face, size, self.units(face, text))
    }
}

/// Characters that draw nothing (zero-width joiners and spaces, variation selectors, the
/// byte-order mark, soft hyphens): a font need not have them.
pub(super) fn invisible(c: char) -> bool {
    matches!(c, '\u{ad}' | '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}' | '\u{feff}' | '\u{fe00}'..='\u{fe0f}')
        || ('\u{e0100}'..='\u{e01ef}').contains(&c)
}

/// Refuse a document with characters the embedded fonts cannot draw, naming them, rather than
/// drawing empty boxes.
pub(super) fn check_drawable(missing: &std::collections::BTreeSet<char>) -> Result<(), ToolError> {
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
pub(super) fn right_to_left(c: char) -> bool {
    matches!(unicode_bidi::bidi_class(c), unicode_bidi::BidiClass::R | unicode_bidi::BidiClass::AL)
}

/// `text` as runs in visual (left-to-right drawing) order, each with its direction, by the
/// Unicode bidi algorithm (the paragraph direction from its first strong character), so each
/// run can be shaped alone: Arabic joined and drawn right to left, Latin and digits inside it
/// left to right.
pub(super) fn visual_runs(text: &str) -> Vec<(&str, bool)> {
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
