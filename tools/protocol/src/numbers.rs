//! Number literals a JSON reader would silently change. serde_json reads `1e-400` as `0.0`
//! without an error, so a server (or a gateway on the way) would act on a zero the caller never
//! sent. Bodies holding such literals are refused as parse errors, telling the caller to send
//! the number as a string. Larger-than-float literals (`1e400`) are already parse errors, and
//! subnormals keep a non-zero value the tools check themselves.

/// The byte offset of the first number literal in `body` (outside strings) with a non-zero
/// digit that a 64-bit float reads as zero. Linear; a body without `e-`/`E-` is passed at once.
pub fn first_underflow(body: &[u8]) -> Option<usize> {
    if !body.windows(2).any(|w| matches!(w, [b'e' | b'E', b'-'])) {
        return None;
    }
    let (mut i, n) = (0, body.len());
    while i < n {
        match body[i] {
            b'"' => {
                i += 1;
                while i < n {
                    match body[i] {
                        b'\\' => i += 2,
                        b'"' => {
                            i += 1;
                            break;
                        }
                        _ => i += 1,
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < n && matches!(body[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9') {
                    i += 1;
                }
                if underflows(&body[start..i]) {
                    return Some(start);
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Whether a literal has a non-zero digit before its exponent and still reads as zero.
fn underflows(literal: &[u8]) -> bool {
    let Some(e) = literal.iter().position(|b| matches!(b, b'e' | b'E')) else { return false };
    if !literal[..e].iter().any(|b| (b'1'..=b'9').contains(b)) {
        return false;
    }
    std::str::from_utf8(literal).ok().and_then(|t| t.parse::<f64>().ok()).is_some_and(|f| f == 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_literals_that_become_zero_are_found() {
        assert_eq!(first_underflow(br#"{"x": 1e-400}"#), Some(6));
        assert_eq!(first_underflow(br#"{"x": [0, -2.5E-999]}"#), Some(10));
        for fine in [
            &br#"{"x": 1e-300, "y": 0e-999, "z": 0.0e-5, "w": 5e-324}"#[..],
            br#"{"s": "1e-400", "t": "quote \" 1e-400"}"#,
            br#"{"x": 12, "y": -3.5}"#,
            b"",
        ] {
            assert_eq!(first_underflow(fine), None, "{}", String::from_utf8_lossy(fine));
        }
    }
}
