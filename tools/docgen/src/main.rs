//! The document generator tool server binary (`DOCGEN_BIND`, default 127.0.0.1:8093;
//! `DOCGEN_MAX_CONTENT_BYTES`, default 524288).

fn main() -> anyhow::Result<()> {
    let max = match std::env::var("DOCGEN_MAX_CONTENT_BYTES") {
        Ok(v) => v.parse().map_err(|e| anyhow::anyhow!("DOCGEN_MAX_CONTENT_BYTES={v}: {e}"))?,
        Err(_) => docgen::DEFAULT_MAX_CONTENT_BYTES,
    };
    tool_kit::server::run_main(docgen::server(max), "DOCGEN_BIND", "127.0.0.1:8093")
}
