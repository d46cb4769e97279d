//! The calculator tool server binary (`CALCULATOR_BIND`, default 127.0.0.1:8091).

fn main() -> anyhow::Result<()> {
    tool_kit::server::run_main(calculator::server(), "CALCULATOR_BIND", "127.0.0.1:8091")
}
