//! The starter manifest `flyte init` writes: small, valid as written, and a pointer to the reference.

use super::Format;

pub fn starter(project: &str, format: Format) -> String {
    match format {
        Format::Toml => format!(
            r#"# A flyte manifest. Every field is documented in flyte.toml.example of the flyte repository.
# For completion in editors: `flyte schema > flyte.schema.json`, then start this file with
# #:schema ./flyte.schema.json

[project]
name = "{project}"
domains = ["development", "production"]

[images.base]
python = "3.12"
pip = []

[environments.web]
kind = "app"
image = "base"
command = ["python", "-m", "http.server", "8080"]
port = 8080

[domains.production.environments.web.scaling]
min_replicas = 1
max_replicas = 2
"#
        ),
        Format::Kdl => format!(
            r#"// A flyte manifest. Every field is documented in flyte.toml.example of the flyte repository.

project {{
    name "{project}"
    domains "development" "production"
}}

image "base" {{
    python "3.12"
}}

environment "web" {{
    kind "app"
    image "base"
    command "python" "-m" "http.server" "8080"
    port 8080
}}

domain "production" {{
    environment "web" {{
        scaling {{
            min_replicas 1
            max_replicas 2
        }}
    }}
}}
"#
        ),
    }
}
