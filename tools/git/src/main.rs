//! The git tool server binary (`GIT_TOOL_BIND`, default 127.0.0.1:8092; repositories from
//! `GIT_REPOS="name=path,…"` or the YAML file `GIT_REPOS_FILE`).

fn main() -> anyhow::Result<()> {
    let repos = git_tool::repos::Repos::from_env().map_err(|e| anyhow::anyhow!(e))?;
    if repos.names().next().is_none() {
        eprintln!("git-tool: no repositories configured (set GIT_REPOS=name=path,… or GIT_REPOS_FILE)");
    }
    tool_kit::server::run_main(git_tool::server(repos), "GIT_TOOL_BIND", "127.0.0.1:8092")
}
