//! The bundled tool servers reached through the real gateway, as an agent would use them.

use crate::common::{TestDb, TestGateway};
use serde_json::json;

async fn serve(server: tool_kit::ToolServer) -> (String, actix_web::dev::ServerHandle) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let server = tool_kit::server::serve(server, listener, false).unwrap();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (url, handle)
}

#[actix_web::test]
async fn the_customers_calculator_example_works_through_the_gateway() {
    let db = TestDb::sqlite().await;
    let (url, calc) = serve(calculator::server()).await;
    let gw = TestGateway::builder(&db).tool("exact_compute", &url).start().await;
    let token = gw.token("agent", &["developer"]);
    let (status, body) = gw
        .invoke(
            &token,
            "exact_compute",
            json!({"operation": "arithmetic", "params": {"operator": "+", "x": 1, "y": 2}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["content"][0]["text"], "3");
    assert_eq!(body["result"]["structuredContent"]["result"]["fraction"], "3");

    let (status, body) = gw
        .invoke(&token, "exact_compute", json!({"operation": "expression", "params": {"expression": "0.1 + 0.2"}}))
        .await;
    assert_eq!((status, &body["result"]["structuredContent"]["result"]["decimal"]), (200, &json!("0.3")));
    // Bad input is the tool's own error: 200 with isError, audited as tool_error.
    let (status, body) = gw
        .invoke(
            &token,
            "exact_compute",
            json!({"operation": "arithmetic", "params": {"operator": "/", "x": 1, "y": 0}}),
        )
        .await;
    assert_eq!((status, &body["result"]["isError"]), (200, &json!(true)));
    let rows = db.wait_for_rows(3).await;
    assert_eq!(rows.iter().filter(|r| r.status == "ok").count(), 2);
    assert_eq!(rows.iter().filter(|r| r.status == "tool_error").count(), 1);
    let (_, listing) = gw.get("/mcp/tools", Some(&token)).await;
    assert_eq!(listing["tools"][0]["name"], "exact_compute");
    gw.stop().await;
    calc.stop(false).await;
}

#[actix_web::test]
async fn a_markdown_report_comes_back_as_pdf_docx_and_html_through_the_gateway() {
    use base64::Engine as _;
    let db = TestDb::sqlite().await;
    let (url, docgen_server) = serve(docgen::server(docgen::DEFAULT_MAX_CONTENT_BYTES)).await;
    let gw = TestGateway::builder(&db).tool("document_generate", &url).start().await;
    let token = gw.token("writer", &["developer"]);
    let report = include_str!("../../tools/docgen/tests/fixtures/report.md");
    for (format, magic) in [("pdf", &b"%PDF-"[..]), ("docx", &b"PK"[..]), ("html", &b"<!DOCTYPE html>"[..])] {
        let (status, body) = gw.invoke(&token, "document_generate", json!({"content": report, "format": format})).await;
        assert_eq!(status, 200, "{format}: {body}");
        let resource = &body["result"]["content"][1]["resource"];
        let bytes = base64::engine::general_purpose::STANDARD.decode(resource["blob"].as_str().unwrap()).unwrap();
        assert!(bytes.starts_with(magic), "{format}");
        use sha2::Digest as _;
        assert_eq!(
            body["result"]["structuredContent"]["sha256"],
            hex::encode(sha2::Sha256::digest(&bytes)),
            "the digest proves the bytes that came through the gateway"
        );
        // The bytes that came through the gateway open in a real reader, headings in order.
        let text = read_back(format, &bytes);
        if let Some(text) = text {
            let at = |needle: &str| text.find(needle).unwrap_or_else(|| panic!("{format}: {needle:?} in {text}"));
            assert!(at("Quarterly Report — Café Zürich") < at("Findings") && at("Findings") < at("Table"), "{format}");
        }
        let again = gw.invoke(&token, "document_generate", json!({"content": report, "format": format})).await.1;
        assert_eq!(
            again["result"]["structuredContent"]["sha256"], body["result"]["structuredContent"]["sha256"],
            "deterministic"
        );
    }
    let (status, body) = gw.invoke(&token, "document_generate", json!({"content": "", "format": "pdf"})).await;
    assert_eq!((status, &body["result"]["isError"]), (200, &json!(true)));
    gw.stop().await;
    docgen_server.stop(false).await;
}

/// The text of a document as its reader sees it: `pdftotext` (poppler), python-docx, or the
/// HTML itself; `None` (skip) where the reader is missing outside CI.
fn read_back(format: &str, bytes: &[u8]) -> Option<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("doc.{format}"));
    std::fs::write(&path, bytes).unwrap();
    let out = match format {
        "pdf" => std::process::Command::new("pdftotext").arg(&path).arg("-").output(),
        "docx" => std::process::Command::new("python3")
            .args(["-c", "import docx, sys; print('\\n'.join(p.text for p in docx.Document(sys.argv[1]).paragraphs))"])
            .arg(&path)
            .output(),
        _ => return Some(String::from_utf8(bytes.to_vec()).unwrap()),
    };
    match out {
        Ok(out) if out.status.success() => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
        _ => {
            assert!(std::env::var_os("CI").is_none(), "CI must install poppler-utils and python-docx");
            None
        }
    }
}

fn git(args: &[&str]) -> String {
    let out = std::process::Command::new("git").current_dir(env!("CARGO_MANIFEST_DIR")).args(args).output().unwrap();
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[actix_web::test]
async fn git_readonly_on_this_repository_agrees_with_git_through_the_gateway() {
    let repos = git_tool::repos::Repos::from_list(&format!("self={}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let db = TestDb::sqlite().await;
    let (url, git_server) = serve(git_tool::server(repos)).await;
    let gw = TestGateway::builder(&db).tool("git_readonly", &url).start().await;
    let token = gw.token("reviewer", &["developer"]);
    let call = |args: serde_json::Value| {
        let (gw, token) = (&gw, &token);
        async move {
            let (status, body) = gw.invoke(token, "git_readonly", args.clone()).await;
            assert_eq!(status, 200, "{args}: {body}");
            assert_eq!(body["result"]["isError"], false, "{args}: {body}");
            body["result"]["structuredContent"].clone()
        }
    };

    let log = call(json!({"repo": "self", "action": "log", "limit": 5})).await;
    let ids: Vec<&str> = log["commits"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, git(&["log", "-5", "--format=%H", "HEAD"]).lines().collect::<Vec<_>>());

    let show = call(json!({"repo": "self", "action": "show", "rev": "HEAD"})).await;
    let mut paths: Vec<&str> = show["files"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    let listing = git(&["show", "--name-only", "--format=", "-M", "HEAD"]);
    let mut want: Vec<&str> = listing.lines().filter(|l| !l.is_empty()).collect();
    paths.sort();
    want.sort();
    assert_eq!(paths, want);

    let grep =
        call(json!({"repo": "self", "action": "grep", "pattern": "fn main", "glob": "*.rs", "limit": 1000})).await;
    let got: Vec<String> = grep["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{}:{}:{}", m["path"].as_str().unwrap(), m["line"], m["text"].as_str().unwrap()))
        .collect();
    let want: Vec<String> = git(&["grep", "-n", "-I", "fn main", "HEAD", "--", "*.rs"])
        .lines()
        .map(|l| l.trim_start_matches("HEAD:").to_owned())
        .collect();
    assert_eq!(got, want);

    let file = call(json!({"repo": "self", "action": "read_file", "path": "Cargo.toml"})).await;
    assert_eq!(file["content"].as_str().unwrap(), git(&["show", "HEAD:Cargo.toml"]));

    let (status, body) = gw
        .invoke(&token, "git_readonly", json!({"repo": "self", "action": "read_file", "path": "../../etc/passwd"}))
        .await;
    assert_eq!((status, &body["result"]["isError"]), (200, &json!(true)));
    gw.stop().await;
    git_server.stop(false).await;
}
