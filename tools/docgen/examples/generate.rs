//! Generate a document from a Markdown file: `cargo run -p docgen --example generate -- FILE FORMAT OUT`.
//! Prints the generation time; used to check output in real readers and to time large documents.

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, input, format, output] = args.as_slice() else {
        anyhow::bail!("usage: generate FILE pdf|docx|html OUT");
    };
    let content = std::fs::read_to_string(input)?;
    let arguments = serde_json::json!({ "content": content, "format": format, "author": "Docgen Example" });
    let started = std::time::Instant::now();
    let doc = docgen::generate(&arguments, usize::MAX).map_err(|e| anyhow::anyhow!(e))?;
    let elapsed = started.elapsed();
    std::fs::write(output, &doc.bytes)?;
    println!("{} bytes, {:?} pages, {:.1} ms", doc.bytes.len(), doc.pages, elapsed.as_secs_f64() * 1000.0);
    Ok(())
}
