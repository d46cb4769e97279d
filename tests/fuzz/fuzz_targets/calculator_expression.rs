//! Any text as a calculator expression, and as the arguments of a whole `exact_compute` call.
//! Must never panic and must finish (libFuzzer's -timeout catches a hang).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = calculator::expression::evaluate(text, 30);
    if let Ok(arguments) = serde_json::from_str::<serde_json::Value>(text) {
        let _ = calculator::call("exact_compute", arguments);
    }
});
