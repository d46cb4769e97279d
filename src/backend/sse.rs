//! Reading a Server-Sent Events body, as MCP Streamable HTTP servers may reply with one.

/// One event of an SSE stream.
#[derive(Debug, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field (`message` when absent).
    pub event: String,
    /// The `data:` lines joined by newlines.
    pub data: String,
}

/// Split a complete SSE body into events (comments and `id:`/`retry:` fields are skipped).
pub fn parse(body: &str) -> Vec<Event> {
    let mut events = Vec::new();
    let mut event = String::new();
    let mut data: Vec<&str> = Vec::new();
    for line in body.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        if line.is_empty() {
            if !data.is_empty() {
                let name = if event.is_empty() { "message".to_owned() } else { std::mem::take(&mut event) };
                events.push(Event { event: name, data: data.join("\n") });
            }
            data.clear();
            event.clear();
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "data" => data.push(value),
            "event" => event = value.to_owned(),
            _ => {}
        }
    }
    if !data.is_empty() {
        let name = if event.is_empty() { "message".to_owned() } else { event };
        events.push(Event { event: name, data: data.join("\n") });
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_with_multiline_data_comments_and_crlf() {
        let body = ": ping\r\nevent: message\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\nid: 7\ndata: x\n";
        let events = parse(body);
        assert_eq!(
            events,
            vec![
                Event { event: "message".into(), data: "{\"a\":\n1}".into() },
                Event { event: "message".into(), data: "x".into() },
            ]
        );
    }
}
