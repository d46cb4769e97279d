//! Tables: column widths from their content, rows that break across pages with the header
//! row repeated (as an artifact).

use super::*;

impl Layout<'_> {
    /// Column widths from their content: each column gets at least its longest word (so a
    /// figure is never broken), and the room left goes where the text is longest; when
    /// everything fits on one line, widths follow the text.
    pub(super) fn column_widths(
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
    pub(super) fn lay_row(&self, row: &[Vec<Span>], head: bool, g: &TableGeometry) -> Vec<Vec<Vec<Piece>>> {
        let empty = Vec::new();
        (0..g.cols.len())
            .map(|c| self.lines(row.get(c).unwrap_or(&empty), g.size, head, TEXT, g.cols[c].1 - 8.0))
            .collect()
    }

    pub(super) fn table(&mut self, head: &[Vec<Span>], rows: &[Vec<Vec<Span>>], aligns: &[Align], x: f32, width: f32) {
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
    pub(super) fn place_row(
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
    pub(super) fn table_row(
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
pub(super) fn row_height(cells: &[Vec<Vec<Piece>>], line_h: f32) -> f32 {
    cells.iter().map(Vec::len).max().unwrap_or(1).max(1) as f32 * line_h + 6.0
}

/// Where a table's columns are (left edge, width) and how its text is set.
pub(super) struct TableGeometry {
    pub(super) cols: Vec<(f32, f32)>,
    pub(super) size: f32,
    pub(super) line_h: f32,
}

pub(super) fn push_piece(
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
