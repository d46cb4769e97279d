//! Generation time of a 10+ page report in each format (median of 9 runs):
//! `cargo run --release -p docgen --example timing`.

use std::time::Instant;

fn report() -> String {
    let words = ["lorem", "ipsum", "dolor", "sit", "amet", "café", "Zürich", "Ω", "—", "tempor", "labore", "magna"];
    let mut seed = 7u32;
    let mut word = || {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        words[(seed >> 16) as usize % words.len()]
    };
    let mut md = String::from("# Ten-page benchmark report\n\n");
    for s in 1..=18 {
        let para: Vec<&str> = (0..120).map(|_| word()).collect();
        let quote: Vec<&str> = (0..25).map(|_| word()).collect();
        md.push_str(&format!(
            "## Section {s}\n\n{}.\n\n- {} *second* **item**\n  1. nested\n\n> {}\n\n",
            para.join(" "),
            word(),
            quote.join(" ")
        ));
        md.push_str("```\nfn f(x: u32) -> u32 {\n    x * 2\n}\n```\n\n| a | b | c |\n|---|---|---|\n");
        for i in 0..5 {
            md.push_str(&format!("| {i} | {} | {} |\n", word(), i * 37));
        }
        md.push('\n');
    }
    md
}

fn main() -> anyhow::Result<()> {
    let content = report();
    for format in ["pdf", "docx", "html"] {
        let args = serde_json::json!({ "content": content, "format": format });
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..9 {
            let started = Instant::now();
            let doc = docgen::generate(&args, usize::MAX).map_err(|e| anyhow::anyhow!(e))?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            last = Some(doc);
        }
        times.sort_by(f64::total_cmp);
        let doc = last.ok_or_else(|| anyhow::anyhow!("no run"))?;
        println!(
            "{format:>4}: median {:.1} ms over 9 runs, {} bytes{}",
            times[4],
            doc.bytes.len(),
            doc.pages.map(|p| format!(", {p} pages")).unwrap_or_default()
        );
    }
    Ok(())
}
