//! Documents as a reader sees them: every Markdown element comes out in every format, the
//! bytes are identical across processes, and real readers open the files.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const REPORT: &str = include_str!("fixtures/report.md");

fn generate(format: &str) -> docgen::Generated {
    let args = json!({"content": REPORT, "format": format, "author": "Ada Lovelace", "metadata": {"keywords": ["q3", "report"], "department": "Finance"}});
    docgen::generate(&args, docgen::DEFAULT_MAX_CONTENT_BYTES).unwrap()
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Golden digests: a change here means the output bytes changed (update deliberately).
/// Last changed (PDF only): the PDF is tagged (structure tree, artifacts), has an outline of
/// the headings and page numbers, and table columns take widths from their content.
const GOLDEN: [(&str, &str); 3] = [
    ("pdf", "055206724219d57ddcd2793dbcbfad853f2b28b963b15ef325ebbcb08380a270"),
    ("docx", "2c534842f1658f7d2a13cddbc2f3b5999833733533c6fe88e39c82f788569d06"),
    ("html", "956ca46bfdfe6e0d2ffd52fb84bfddc0a935d7f4a8a42f818603b8f251e3e3ca"),
];

#[test]
fn output_matches_the_golden_digests() {
    for (format, digest) in GOLDEN {
        assert_eq!(sha(&generate(format).bytes), digest, "{format}");
    }
}

/// Run by `generation_is_byte_identical_across_processes` in child processes.
#[test]
fn print_digests_child() {
    if std::env::var_os("DOCGEN_DIGEST_CHILD").is_some() {
        for format in ["pdf", "docx", "html"] {
            println!("\ndigest {format} {}", sha(&generate(format).bytes));
        }
    }
}

fn child_digests() -> String {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "print_digests_child", "--nocapture", "--test-threads=1"])
        .env("DOCGEN_DIGEST_CHILD", "1")
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with("digest ")).collect::<Vec<_>>().join("\n")
}

#[test]
fn generation_is_byte_identical_across_processes() {
    // Warm this process's state first: nothing global may leak into the next document.
    for _ in 0..3 {
        generate("docx");
        generate("pdf");
    }
    let (a, b) = (child_digests(), child_digests());
    assert_eq!(a.lines().count(), 3, "{a}");
    assert_eq!(a, b);
    let here: Vec<String> =
        ["pdf", "docx", "html"].iter().map(|f| format!("digest {f} {}", sha(&generate(f).bytes))).collect();
    assert_eq!(a, here.join("\n"));
}

fn tool(program: &str, probe: &[&str]) -> bool {
    let ok = Command::new(program).args(probe).output().is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "CI must provide {program} {probe:?}");
        eprintln!("{program} is not available: skipping the reader check");
    }
    ok
}

const IN_ORDER: [&str; 12] = [
    "Quarterly Report — Café Zürich",
    "An introduction with emphasis, strong text, inline code and a link to the site.",
    "é, ß, Ω, —, “quotes”, naïve façade, 10 °C.",
    "Findings",
    "First finding",
    "nested bullet one",
    "Bullet beta",
    "A block quote about Ω and the “future”.",
    "println!(\"héllo, wörld\");",
    "Region",
    "−1.2 %",
    "Closing paragraph with <script>alert('x')</script> raw HTML and a bad link.",
];

fn assert_in_order(text: &str) {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut from = 0;
    for needle in IN_ORDER {
        let needle = needle.split_whitespace().collect::<Vec<_>>().join(" ");
        let at = flat[from..].find(&needle).unwrap_or_else(|| panic!("{needle:?} not found in order in:\n{flat}"));
        from += at + needle.len();
    }
}

#[test]
fn pdf_text_is_extractable_in_order_by_poppler() {
    if !tool("pdftotext", &["-v"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.pdf");
    let doc = generate("pdf");
    assert_eq!(doc.pages, Some(1));
    std::fs::write(&path, &doc.bytes).unwrap();
    let out = Command::new("pdftotext").args(["-enc", "UTF-8"]).arg(&path).arg("-").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_in_order(&String::from_utf8(out.stdout).unwrap());
    let info = Command::new("pdfinfo").arg(&path).output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(info.contains("Title:") && info.contains("Quarterly Report") && info.contains("Ada Lovelace"), "{info}");
    assert!(!info.contains("CreationDate"), "no clock in the output: {info}");
}

#[test]
fn docx_opens_in_python_docx_with_every_element() {
    if !tool("python3", &["-c", "import docx"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("report.docx");
    std::fs::write(&path, generate("docx").bytes).unwrap();
    let script = r#"
import sys, zipfile, xml.dom.minidom, docx
z = zipfile.ZipFile(sys.argv[1])
for name in z.namelist():
    if name.endswith('.xml') or name.endswith('.rels'):
        xml.dom.minidom.parseString(z.read(name))
d = docx.Document(sys.argv[1])
for p in d.paragraphs:
    print(p.style.name + '|' + p.text)
for t in d.tables:
    for r in t.rows:
        print('ROW|' + '|'.join(c.text for c in r.cells))
print('TITLE|' + d.core_properties.title + '|' + d.core_properties.author)
print('LINKS|' + ' '.join(r.target_ref for r in d.part.rels.values() if r.is_external))
"#;
    let out = Command::new("python3").arg("-c").arg(script).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "Heading 1|Quarterly Report",
        "Heading 2|Findings",
        "List Paragraph|nested bullet two",
        "Quote|A block quote",
        "Code|fn main() {\n    println!",
        "ROW|Region|Revenue|Growth",
        "ROW|Süd|980 €|−1.2 %",
        "TITLE|Quarterly Report — Café Zürich|Ada Lovelace",
        "LINKS|https://example.com/report",
    ] {
        assert!(text.contains(needle), "{needle:?} missing in:\n{text}");
    }
    assert!(!text.contains("javascript"));
}

#[test]
fn html_is_standalone_escaped_and_script_free() {
    let html = String::from_utf8(generate("html").bytes).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    assert!(
        html.contains("<meta charset=\"utf-8\">") && html.contains("<title>Quarterly Report — Café Zürich</title>")
    );
    assert!(!html.to_ascii_lowercase().contains("<script"), "raw HTML must be escaped");
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
    assert!(!html.contains("javascript:"));
    assert!(html.contains("<meta name=\"keywords\" content=\"q3, report\">"), "metadata reaches the head");
    assert!(!html.contains("http://") && !html.contains("src="), "no remote resources");
    for needle in [
        "<h2>Findings</h2>",
        "<ol>",
        "<ul>",
        "<blockquote>",
        "<hr>",
        "<pre><code>",
        "<table>",
        "<th>Region</th>",
        "<em>emphasis</em>",
        "<strong>strong text</strong>",
        "<code>inline code</code>",
        "<a href=\"https://example.com/report\"",
    ] {
        assert!(html.contains(needle), "{needle:?} missing");
    }
}

#[test]
fn bad_input_is_a_clear_tool_error() {
    let max = docgen::DEFAULT_MAX_CONTENT_BYTES;
    let cases: [(Value, &str); 8] = [
        (json!({"content": "", "format": "pdf"}), "empty"),
        (json!({"content": "# x", "format": "odt"}), "unknown format"),
        (json!({"content": "# x"}), "format is required"),
        (json!({"format": "pdf"}), "content is required"),
        (json!({"content": "x".repeat(max + 1), "format": "html"}), "limit"),
        (json!({"content": ">".repeat(5000), "format": "pdf"}), "deeper"),
        (json!({"content": format!("|{}\n|{}\n", "a|".repeat(3000), "-|".repeat(3000)), "format": "docx"}), "columns"),
        (json!({"content": "x", "format": "pdf", "metadata": [1]}), "metadata"),
    ];
    for (args, needle) in cases {
        let err = docgen::call(&args, max).unwrap_err().to_string();
        assert!(err.contains(needle), "{needle}: {err}");
    }
}

#[test]
fn long_documents_paginate_and_long_words_wrap() {
    let mut md = String::new();
    for i in 0..40 {
        md.push_str(&format!("## Section {i}\n\n{}\n\n- a\n- b\n\n", "Lorem ipsum dolor sit amet. ".repeat(12)));
    }
    md.push_str(&"x".repeat(3000));
    let doc = docgen::generate(&json!({"content": md, "format": "pdf"}), usize::MAX).unwrap();
    assert!(doc.pages.unwrap() >= 8, "{:?}", doc.pages);
}

/// A single word (or code line) as long as the content limit allows is cut into lines in
/// linear time: the layout must not re-measure the rest of the word for every line. (The
/// quadratic cut took hours here.) Drawing ~7000 lines with krilla's shaping takes ~13 s
/// in an unoptimised test build, so the hang guard is 10 s only for an optimised one; the
/// unit test `pdf::tests::a_content_limit_sized_word_or_code_line_is_laid_out_in_linear_time`
/// holds the layout alone to 10 s in every build.
#[test]
fn a_content_limit_sized_word_or_code_line_generates_in_bounded_time() {
    let max = docgen::DEFAULT_MAX_CONTENT_BYTES;
    let limit = std::time::Duration::from_secs(if cfg!(debug_assertions) { 60 } else { 10 });
    let word = "x".repeat(max - 64);
    let code = format!("```\n{}\n```\n", "y".repeat(max - 64));
    for (what, content) in [("word", word), ("code line", code)] {
        assert!(content.len() <= max);
        let started = std::time::Instant::now();
        let doc = docgen::generate(&json!({"content": content, "format": "pdf"}), max).unwrap();
        let took = started.elapsed();
        assert!(took < limit, "{what}: took {took:?}");
        assert!(doc.pages.unwrap() > 100, "{what}: {:?} pages", doc.pages);
    }
}

#[test]
fn the_result_is_an_embedded_resource_with_its_digest() {
    let result = docgen::call(&json!({"content": REPORT, "format": "pdf"}), docgen::DEFAULT_MAX_CONTENT_BYTES).unwrap();
    let resource = &result["content"][1]["resource"];
    assert_eq!(resource["mimeType"], "application/pdf");
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(resource["blob"].as_str().unwrap()).unwrap();
    let s = &result["structuredContent"];
    assert_eq!(s["sha256"].as_str().unwrap(), sha(&bytes));
    assert_eq!(s["size_bytes"].as_u64().unwrap() as usize, bytes.len());
    assert_eq!(s["filename"], "quarterly-report-caf-z-rich.pdf");
    assert_eq!(s["pages"], 1);
}

/// Text pasted from a PDF holds form feeds; terminals leave ESC and BEL. Before: written raw
/// into the DOCX's XML (in the body, the title and the metadata), so LibreOffice and python-docx
/// refused the file, and drawn as boxes in the PDF. Now every format carries only what XML 1.0
/// allows: page breaks become spaces (line breaks in code), tabs in code expand to spaces, the
/// rest is dropped — in content, entity-decoded content (`&#12;`), title and metadata alike.
#[test]
fn control_characters_never_reach_a_file() {
    let hostile = "Page one\u{c}page two \u{1b}[31mred\u{7} bell &#12; entity \u{0}nul \u{85}nel \u{fffe}\n\n\
                   ```\nfn main() {\n\tlet x\u{c}= 1;\n}\n```\n\n| a\u{b} | b |\n|---|---|\n| \u{1}x | y |\n";
    let args = json!({"content": hostile, "format": "docx", "title": "Q3\u{c} report\u{1b}",
        "author": "Ada\u{7}", "metadata": {"keywords": ["q\u{c}3"], "department\u{1}": "Fin\u{b}ance"}});
    for format in ["docx", "html", "pdf"] {
        let mut args = args.clone();
        args["format"] = json!(format);
        let doc = docgen::generate(&args, docgen::DEFAULT_MAX_CONTENT_BYTES).unwrap();
        if format == "html" {
            let text = String::from_utf8(doc.bytes.clone()).unwrap();
            let bad: Vec<char> = text.chars().filter(|c| c.is_control() && !matches!(c, '\n' | '\t')).collect();
            assert!(bad.is_empty(), "html holds {bad:?}");
            assert!(text.contains("Page one page two") && text.contains("    let x"), "{text}");
        }
        if format == "docx" && tool("python3", &["-c", "import docx"]) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("pasted.docx");
            std::fs::write(&path, &doc.bytes).unwrap();
            let script = r#"
import sys, zipfile, xml.dom.minidom, docx
z = zipfile.ZipFile(sys.argv[1])
for name in z.namelist():
    if name.endswith('.xml') or name.endswith('.rels'):
        xml.dom.minidom.parseString(z.read(name))
d = docx.Document(sys.argv[1])
print('TITLE|' + d.core_properties.title + '|' + d.core_properties.author)
print('\n'.join(p.text for p in d.paragraphs))
"#;
            let out = Command::new("python3").arg("-c").arg(script).arg(&path).output().unwrap();
            assert!(out.status.success(), "the DOCX does not open: {}", String::from_utf8_lossy(&out.stderr));
            let text = String::from_utf8(out.stdout).unwrap();
            assert!(text.contains("TITLE|Q3  report|Ada") && text.contains("Page one page two"), "{text}");
        }
    }
}

/// Before: `~~$500~~ $400` read "$500 $400" in every format (the strike dropped), and
/// `<someone@example.com>` became a broken relative link. Now the strike is kept (HTML `<del>`,
/// DOCX `<w:strike/>`, a line drawn through the PDF text) and email autolinks are `mailto:`.
#[test]
fn strikethrough_is_kept_and_email_autolinks_are_mailto() {
    let content = "Now ~~$500~~ $400.\n\nWrite to <someone@example.com>.\n";
    let html = docgen::generate(&json!({"content": content, "format": "html"}), 1 << 20).unwrap();
    let html = String::from_utf8(html.bytes).unwrap();
    assert!(html.contains("<del>$500</del> $400"), "{html}");
    assert!(html.contains("href=\"mailto:someone@example.com\""), "{html}");
    let docx = docgen::generate(&json!({"content": content, "format": "docx"}), 1 << 20).unwrap();
    let text = String::from_utf8_lossy(&docx.bytes).into_owned();
    // The DOCX is a zip (stored, not deflated, is not guaranteed): read it with python when there.
    if tool("python3", &["-c", "import docx"]) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.docx");
        std::fs::write(&path, &docx.bytes).unwrap();
        let script = r#"
import sys, docx
d = docx.Document(sys.argv[1])
print('STRUCK|' + '|'.join(r.text for p in d.paragraphs for r in p.runs if r.font.strike))
print('LINKS|' + ' '.join(r.target_ref for r in d.part.rels.values() if r.is_external))
"#;
        let out = Command::new("python3").arg("-c").arg(script).arg(&path).output().unwrap();
        let out = String::from_utf8(out.stdout).unwrap();
        assert!(out.contains("STRUCK|$500\n") && out.contains("mailto:someone@example.com"), "{out}");
    }
    let _ = text;
    let pdf = docgen::generate(&json!({"content": content, "format": "pdf"}), 1 << 20).unwrap();
    assert!(pdf.bytes.len() > 500);
}

/// Before: `:---:` and `---:` were ignored in every format (numbers left-aligned, broken
/// columns of figures). Now each column's alignment is honoured: HTML `text-align`, DOCX
/// `<w:jc>`, and in the PDF a right-aligned figure ends at the cell's right edge.
#[test]
fn column_alignment_is_honoured_in_every_format() {
    let content = "| name | qty | price |\n|:-----|:---:|------:|\n| pens | 2 | 3.50 |\n| ink | 10 | 120.00 |\n";
    let html = docgen::generate(&json!({"content": content, "format": "html"}), 1 << 20).unwrap();
    let html = String::from_utf8(html.bytes).unwrap();
    assert!(
        html.contains("<td>pens</td><td style=\"text-align:center\">2</td><td style=\"text-align:right\">3.50</td>"),
        "{html}"
    );
    let docx = docgen::generate(&json!({"content": content, "format": "docx"}), 1 << 20).unwrap();
    if tool("python3", &["-c", "import docx"]) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.docx");
        std::fs::write(&path, &docx.bytes).unwrap();
        let script = r#"
import sys, docx
t = docx.Document(sys.argv[1]).tables[0]
print('|'.join(str(c.paragraphs[0].alignment) for c in t.rows[1].cells))
"#;
        let out = Command::new("python3").arg("-c").arg(script).arg(&path).output().unwrap();
        let out = String::from_utf8(out.stdout).unwrap();
        assert_eq!(out.trim(), "None|CENTER (1)|RIGHT (2)", "{out}");
    }
    if tool("pdftotext", &["-v"]) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.pdf");
        let pdf = docgen::generate(&json!({"content": content, "format": "pdf"}), 1 << 20).unwrap();
        std::fs::write(&path, &pdf.bytes).unwrap();
        let out = Command::new("pdftotext").args(["-bbox"]).arg(&path).arg("-").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        // The right edges of "3.50" and "120.00" coincide (right-aligned column).
        let x_max = |word: &str| -> f64 {
            let line = text
                .lines()
                .find(|l| l.ends_with(&format!(">{word}</word>")))
                .unwrap_or_else(|| panic!("{word}: {text}"));
            let v = line.split("xMax=\"").nth(1).unwrap().split('"').next().unwrap();
            v.parse().unwrap()
        };
        assert!((x_max("3.50") - x_max("120.00")).abs() < 0.5, "{text}");
    }
}

/// Before: a table running over a page break continued without its header, and a header could
/// stand alone at the bottom of a page. Now the header row repeats at the top of every page the
/// table reaches and always has a body row under it on its page — checked by pdftotext, with
/// the table starting at many heights on the page.
#[test]
fn table_headers_repeat_and_never_stand_alone() {
    if !tool("pdftotext", &["-v"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rows: String = (0..90).map(|i| format!("| row{i} | {i} |\n")).collect();
    for filler in (0..48).step_by(3) {
        let lines: String = (0..filler).map(|i| format!("Filler line {i}.\n\n")).collect();
        let content = format!("{lines}| HEADCOL | value |\n|---|--:|\n{rows}");
        let pdf = docgen::generate(&json!({"content": content, "format": "pdf"}), 1 << 20).unwrap();
        let path = dir.path().join(format!("t{filler}.pdf"));
        std::fs::write(&path, &pdf.bytes).unwrap();
        let out = Command::new("pdftotext").args(["-layout"]).arg(&path).arg("-").output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let pages: Vec<&str> = text.split('\u{c}').filter(|p| p.contains("row") || p.contains("HEADCOL")).collect();
        assert!(pages.len() >= 2, "the table spans pages: {filler}");
        for (n, page) in pages.iter().enumerate() {
            assert!(page.contains("HEADCOL"), "filler {filler}: page {n} of the table has no header:\n{page}");
            let after = page.split("HEADCOL").nth(1).unwrap_or("");
            assert!(after.contains("row"), "filler {filler}: a header alone at the bottom of page {n}");
        }
    }
}

/// Before (DOCX): a nested ordered list lost its start number, a second nested list continued
/// the first's numbering, and an item beginning with a heading, code or a quote got an empty
/// bullet line above it. Now every ordered list starts where it says at its own level, and the
/// item's first block sits on the numbered line.
#[test]
fn docx_lists_keep_their_numbers_and_never_start_with_an_empty_line() {
    if !tool("python3", &["-c", "import docx"]) {
        return;
    }
    let content = "1. first\n\n   7. nested seven\n   8. nested eight\n\n2. second\n\n   1. restart one\n\nThen:\n\n- ## A heading item\n- ```\n  code item\n  ```\n- > quoted item\n";
    let doc = docgen::generate(&json!({"content": content, "format": "docx"}), 1 << 20).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.docx");
    std::fs::write(&path, &doc.bytes).unwrap();
    let script = r#"
import sys, docx
from docx.oxml.ns import qn
d = docx.Document(sys.argv[1])
numbering = d.part.numbering_part.element
abstract = {a.get(qn('w:abstractNumId')): a for a in numbering.findall(qn('w:abstractNum'))}
nums = {n.get(qn('w:numId')): n.find(qn('w:abstractNumId')).get(qn('w:val')) for n in numbering.findall(qn('w:num'))}
for p in d.paragraphs:
    numPr = p._p.find('.//' + qn('w:numPr'))
    if numPr is None:
        continue
    ilvl = numPr.find(qn('w:ilvl')).get(qn('w:val'))
    num = numPr.find(qn('w:numId')).get(qn('w:val'))
    lvl = [l for l in abstract[nums[num]].findall(qn('w:lvl')) if l.get(qn('w:ilvl')) == ilvl][0]
    start = lvl.find(qn('w:start')).get(qn('w:val'))
    print(f"{num}|{ilvl}|{start}|{p.text}")
"#;
    let out = Command::new("python3").arg("-c").arg(script).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('|').collect()).collect();
    let find = |t: &str| lines.iter().find(|l| l[3] == t).unwrap_or_else(|| panic!("{t}: {text}")).clone();
    let (seven, eight, restart) = (find("nested seven"), find("nested eight"), find("restart one"));
    assert_eq!((seven[1], seven[2]), ("1", "7"), "a nested list keeps its start: {text}");
    assert_eq!(seven[0], eight[0], "one list, one numbering: {text}");
    assert_ne!(seven[0], restart[0], "a second nested list restarts: {text}");
    assert_eq!(restart[2], "1");
    assert!(lines.iter().all(|l| !l[3].is_empty()), "no empty numbered line: {text}");
    for item in ["A heading item", "code item", "quoted item"] {
        find(item);
    }
}

/// Before: a table cell longer than a page ran off the bottom (words 312–1,500 of a long cell
/// invisible and not extractable). Now the row splits between lines across pages, the header
/// repeating above each continuation, and pdftotext finds every word.
#[test]
fn a_table_row_taller_than_a_page_splits_and_loses_no_word() {
    if !tool("pdftotext", &["-v"]) {
        return;
    }
    let words: Vec<String> = (1..=1500).map(|i| format!("w{i:04}")).collect();
    let content = format!("| HEADCOL | notes |\n|---|---|\n| short | {} |\n| after | end |\n", words.join(" "));
    let pdf = docgen::generate(&json!({"content": content, "format": "pdf"}), 1 << 20).unwrap();
    assert!(pdf.pages.unwrap() >= 3, "{:?}", pdf.pages);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tall.pdf");
    std::fs::write(&path, &pdf.bytes).unwrap();
    let out = Command::new("pdftotext").args(["-enc", "UTF-8"]).arg(&path).arg("-").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let found: std::collections::HashSet<&str> = text.split_whitespace().collect();
    let missing: Vec<&String> = words.iter().filter(|w| !found.contains(w.as_str())).collect();
    assert!(missing.is_empty(), "{} words lost, first {:?}", missing.len(), missing.first());
    for (n, page) in text.split('\u{c}').filter(|p| p.contains('w')).enumerate() {
        assert!(page.contains("HEADCOL"), "page {n} of the table has no header");
    }
    assert!(text.contains("after") && text.contains("end"), "the next row follows");
}

/// Before: equal column widths broke a figure mid-number next to a wide text column. Now each
/// column is at least as wide as its longest word and the rest goes where the text is.
#[test]
fn table_columns_are_as_wide_as_their_content_needs() {
    if !tool("pdftotext", &["-v"]) {
        return;
    }
    let long = "This column holds a long description that needs most of the width of the page. ".repeat(3);
    let content =
        format!("| id | amount | description |\n|---|--:|---|\n| 1 | 1234567890.123456 | {long} |\n| 2 | 98765432109876.5 | short |\n");
    let pdf = docgen::generate(&json!({"content": content, "format": "pdf"}), 1 << 20).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.pdf");
    std::fs::write(&path, &pdf.bytes).unwrap();
    let out = Command::new("pdftotext").args(["-enc", "UTF-8"]).arg(&path).arg("-").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let found: Vec<&str> = text.split_whitespace().collect();
    for figure in ["1234567890.123456", "98765432109876.5"] {
        assert!(found.contains(&figure), "{figure} broken:\n{text}");
    }
}

/// What a business report needs: page numbers, an outline (bookmarks) from the headings, the
/// document language, and a tagged PDF (a structure tree with headings, paragraphs, lists,
/// tables and their header cells, links) — read back with pypdf and pdftotext.
#[test]
fn reports_have_page_numbers_an_outline_language_and_a_structure_tree() {
    if !tool("python3", &["-c", "import pypdf"]) || !tool("pdftotext", &["-v"]) {
        return;
    }
    let filler: String =
        (0..60).map(|i| format!("Paragraph {i} of the section, long enough to fill lines.\n\n")).collect();
    let content = format!(
        "# Results\n\n{filler}## Revenue\n\n- one [site](https://example.com)\n- two\n\n## Costs\n\n| item | cost |\n|---|--:|\n| a | 1 |\n\n# Outlook\n\n> A quote.\n\n{filler}"
    );
    let args = json!({"content": content, "format": "pdf", "metadata": {"language": "de-CH"}});
    let pdf = docgen::generate(&args, 1 << 20).unwrap();
    let pages = pdf.pages.unwrap();
    assert!(pages >= 3, "{pages}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.pdf");
    std::fs::write(&path, &pdf.bytes).unwrap();
    let out = Command::new("pdftotext").args(["-enc", "UTF-8"]).arg(&path).arg("-").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for (n, page) in text.split('\u{c}').take(pages).enumerate() {
        // Drawn as "2 / 5"; pdftotext may drop the thin spaces around the slash.
        assert!(page.replace(' ', "").contains(&format!("{}/{pages}", n + 1)), "page {} has no number:\n{page}", n + 1);
    }
    let script = r#"
import sys, pypdf
r = pypdf.PdfReader(sys.argv[1])
root = r.trailer["/Root"]
def titles(items, depth=0):
    for it in items:
        if isinstance(it, list):
            titles(it, depth + 1)
        else:
            print(f"outline|{depth}|{it.title}|{r.get_destination_page_number(it)}")
titles(r.outline)
print("lang|" + str(root.get("/Lang")))
print("marked|" + str(root["/MarkInfo"]["/Marked"]))
tags = []
def walk(node):
    node = node.get_object() if hasattr(node, "get_object") else node
    if isinstance(node, pypdf.generic.ArrayObject):
        for k in node: walk(k)
    elif isinstance(node, pypdf.generic.DictionaryObject):
        if "/S" in node: tags.append(str(node["/S"]))
        if "/K" in node: walk(node["/K"])
walk(root["/StructTreeRoot"])
print("tags|" + " ".join(tags))
"#;
    let out = Command::new("python3").arg("-c").arg(script).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = String::from_utf8(out.stdout).unwrap();
    let outline: Vec<&str> = report.lines().filter(|l| l.starts_with("outline|")).collect();
    assert_eq!(outline.len(), 4, "{report}");
    assert!(outline[0].starts_with("outline|0|Results|0"), "{report}");
    assert!(outline[1].starts_with("outline|1|Revenue|") && outline[2].starts_with("outline|1|Costs|"), "{report}");
    assert!(outline[3].starts_with("outline|0|Outlook|"), "{report}");
    assert!(report.contains("lang|de-CH") && report.contains("marked|True"), "{report}");
    let tags = report.lines().find_map(|l| l.strip_prefix("tags|")).unwrap();
    for tag in
        ["/H1", "/H2", "/P", "/L", "/LI", "/Lbl", "/LBody", "/Link", "/Table", "/TR", "/TH", "/TD", "/BlockQuote"]
    {
        assert!(tags.split(' ').any(|t| t == tag), "{tag} missing from the structure tree: {tags}");
    }
    // Reading order: the first heading comes before the first paragraph.
    let first = |t: &str| tags.split(' ').position(|x| x == t).unwrap();
    assert!(first("/H1") < first("/P"));
}

/// Before: CJK text came out as empty boxes without a word. Now a PDF whose characters the
/// embedded fonts cannot draw is refused, naming them; DOCX and HTML (reader's fonts) accept it.
#[test]
fn characters_the_pdf_cannot_draw_are_named_never_boxes() {
    let content = "Report 中文 ok";
    let err = docgen::generate(&json!({"content": content, "format": "pdf"}), 1 << 20).unwrap_err().to_string();
    assert!(err.contains("U+4E2D") && err.contains("U+6587") && err.contains("docx"), "{err}");
    for format in ["docx", "html"] {
        assert!(docgen::generate(&json!({"content": content, "format": format}), 1 << 20).is_ok(), "{format}");
    }
    // Zero-width characters draw nothing and need no glyph.
    assert!(docgen::generate(&json!({"content": "a\u{200b}b\u{feff}", "format": "pdf"}), 1 << 20).is_ok());
}

/// Before: a line mixing Arabic and Latin was shaped as one run in one direction: the Latin
/// after Arabic came out mirrored. Now each bidi run is shaped and drawn in its own direction:
/// pypdf reads the Latin words forwards and each Arabic word whole.
#[test]
fn right_to_left_text_is_ordered_by_the_bidi_algorithm() {
    if !tool("python3", &["-c", "import pypdf"]) {
        return;
    }
    let content = "مرحبا بالعالم and Latin after.\n\nLatin first then عربي here.\n\nשלום עולם 123\n";
    let pdf = docgen::generate(&json!({"content": content, "format": "pdf"}), 1 << 20).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bidi.pdf");
    std::fs::write(&path, &pdf.bytes).unwrap();
    let script = "import sys, pypdf\nprint(pypdf.PdfReader(sys.argv[1]).pages[0].extract_text())";
    let out = Command::new("python3").arg("-c").arg(script).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    for piece in ["Latin after", "Latin first then", "here.", "مرحبا", "بالعالم", "عربي", "שלום", "עולם", "123"]
    {
        assert!(text.contains(piece), "{piece:?} not read as written:\n{text}");
    }
}

/// A list numbered from 123456789 keeps its start in DOCX (python-docx reads `w:start`).
#[test]
fn docx_keeps_a_nine_digit_list_start() {
    if !tool("python3", &["-c", "import docx"]) {
        return;
    }
    let doc = docgen::generate(&json!({"content": "123456789. first\n123456790. second\n", "format": "docx"}), 1 << 20)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("n.docx");
    std::fs::write(&path, &doc.bytes).unwrap();
    let script = r#"
import sys, docx
from docx.oxml.ns import qn
d = docx.Document(sys.argv[1])
numbering = d.part.numbering_part.element
print(sorted(l.find(qn('w:start')).get(qn('w:val')) for a in numbering.findall(qn('w:abstractNum')) for l in a.findall(qn('w:lvl')) if l.get(qn('w:ilvl')) == '0'))
"#;
    let out = Command::new("python3").arg("-c").arg(script).arg(&path).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("'123456789'"), "{}", String::from_utf8_lossy(&out.stdout));
}

/// Before: a wide table cut every word into letters that spilled over the cell borders. Now a
/// table whose words do not fit is set smaller (down to 6 pt) so they do, and one that cannot
/// fit even then (60 columns) is refused, saying so.
#[test]
fn wide_tables_are_set_smaller_or_refused_never_spilled() {
    if !tool("pdftotext", &["-v"]) {
        return;
    }
    let words: Vec<String> = (0..8).map(|i| format!("Measurement{i}")).collect();
    let content = format!("| {} |\n|{}\n| {} |\n", words.join(" | "), "---|".repeat(8), words.join(" | "));
    let pdf = docgen::generate(&json!({"content": content, "format": "pdf"}), 1 << 20).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wide.pdf");
    std::fs::write(&path, &pdf.bytes).unwrap();
    let out = Command::new("pdftotext").args(["-enc", "UTF-8"]).arg(&path).arg("-").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let found: Vec<&str> = text.split_whitespace().collect();
    for w in &words {
        assert_eq!(found.iter().filter(|f| *f == w).count(), 2, "{w} cut:\n{text}");
    }
    let many: String = (0..60).map(|i| format!("| c{i} ")).collect::<String>() + "|\n" + &"|---".repeat(60) + "|\n";
    let err = docgen::generate(&json!({"content": many, "format": "pdf"}), 1 << 20).unwrap_err().to_string();
    assert!(err.contains("60 columns") && err.contains("docx"), "{err}");
    assert!(docgen::generate(&json!({"content": many, "format": "docx"}), 1 << 20).is_ok());
}
