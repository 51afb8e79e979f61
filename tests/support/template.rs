//! The one builder of test configurations: a gateway on free ports (`{listen}`, `{admin}`),
//! the real authorization server as issuer `corp` (`{issuer}`), the test upstream as `api`
//! (`{upstream}`); each test adds what it is about. [`super::config`] fills the placeholders.

pub struct Template {
    audiences: Vec<String>,
    issuer: Vec<String>,
    server: Vec<String>,
    sections: Vec<String>,
    routes: String,
}

impl Template {
    /// Issuer `corp` (RS256) for `audiences`.
    pub fn corp(audiences: &[&str]) -> Template {
        Template {
            audiences: audiences.iter().map(|a| format!("\"{a}\"")).collect(),
            issuer: Vec::new(),
            server: Vec::new(),
            sections: Vec::new(),
            routes: String::new(),
        }
    }

    /// A line under `server:` (after `listen`), e.g. `tls: { … }`.
    pub fn server(mut self, line: &str) -> Template {
        self.server.push(line.to_string());
        self
    }

    /// A line under the issuer, e.g. `clock_skew: 0s` (nested YAML indented by the caller).
    pub fn issuer(mut self, line: &str) -> Template {
        self.issuer.push(line.to_string());
        self
    }

    /// A top-level section, written as it would be in the file (`scopes:\n  implies: …`).
    pub fn section(mut self, yaml: &str) -> Template {
        self.sections.push(yaml.trim_end().to_string());
        self
    }

    /// The `routes:` entries.
    pub fn routes(mut self, yaml: &str) -> Template {
        self.routes = yaml.trim_end().to_string();
        self
    }

    pub fn yaml(&self) -> String {
        let mut y = String::from("server:\n  listen: \"{listen}\"\n");
        for l in &self.server {
            y.push_str(&format!("  {l}\n"));
        }
        y.push_str("admin:\n  listen: \"{admin}\"\n");
        y.push_str("issuers:\n  - id: corp\n    issuer: \"{issuer}\"\n");
        y.push_str(&format!("    audiences: [{}]\n", self.audiences.join(", ")));
        y.push_str("    algorithms: [RS256]\n");
        for l in &self.issuer {
            y.push_str(&format!("    {l}\n"));
        }
        for s in &self.sections {
            y.push_str(s);
            y.push('\n');
        }
        y.push_str("upstreams:\n  api: { url: \"{upstream}\" }\nroutes:\n");
        y.push_str(&self.routes);
        y.push('\n');
        y
    }
}
