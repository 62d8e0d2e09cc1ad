//! The command line's map of the API: every resource a subcommand, every operation of the OpenAPI
//! description a verb under it. The description supplies the rest: the verb's help is the
//! operation's summary, its path parameters are positional arguments, its query parameters are
//! flags, and its request body is a JSON input or a component file.

use clap::{Arg, ArgAction, ArgGroup, Command};
use serde_json::Value;

pub struct Resource {
    pub name: &'static str,
    pub about: &'static str,
    pub ops: &'static [Op],
}

/// One API operation under the name people type.
pub struct Op {
    pub verb: &'static str,
    /// As the OpenAPI description spells it: `get`, `post`...
    pub method: &'static str,
    pub path: &'static str,
    /// For an answer with `items`: the table's columns (dotted paths into each item).
    pub columns: &'static [&'static str],
    /// `pin` builds its body from a version argument instead of reading one.
    pub pins: bool,
}

const fn op(verb: &'static str, method: &'static str, path: &'static str) -> Op {
    Op { verb, method, path, columns: &[], pins: false }
}

const fn list(verb: &'static str, path: &'static str, columns: &'static [&'static str]) -> Op {
    Op { verb, method: "get", path, columns, pins: false }
}

const RULE_COLUMNS: &[&str] = &["id", "name", "enabled", "severity", "condition.kind", "scope.type"];

pub const RESOURCES: &[Resource] = &[
    Resource {
        name: "tenants",
        about: "Tenants (platform admin)",
        ops: &[
            list("list", "/v1/tenants", &["id", "name", "created_at"]),
            op("get", "get", "/v1/tenants/{id}"),
            op("create", "post", "/v1/tenants"),
            op("update", "patch", "/v1/tenants/{id}"),
            op("delete", "delete", "/v1/tenants/{id}"),
        ],
    },
    Resource {
        name: "keys",
        about: "The tenant's API keys",
        ops: &[
            list("list", "/v1/api-keys", &["id", "name", "role", "created_at"]),
            op("create", "post", "/v1/api-keys"),
            op("delete", "delete", "/v1/api-keys/{id}"),
        ],
    },
    Resource {
        name: "roles",
        about: "Roles: the built-in ones and the tenant's own, as lists of permissions",
        ops: &[
            list("list", "/v1/roles", &["name", "built_in", "description"]),
            op("get", "get", "/v1/roles/{name}"),
            op("create", "post", "/v1/roles"),
            op("replace", "put", "/v1/roles/{name}"),
            op("delete", "delete", "/v1/roles/{name}"),
        ],
    },
    Resource {
        name: "portal",
        about: "Customers' own alerts: tokens for one customer, revoking them all, where the portal may be framed",
        ops: &[
            op("token", "post", "/v1/customers/{id}/tokens"),
            op("revoke-tokens", "post", "/v1/customer-tokens/revoke"),
            op("get", "get", "/v1/portal"),
            op("set", "put", "/v1/portal"),
        ],
    },
    Resource {
        name: "plugins",
        about: "WebAssembly plugins: upload, pin, invoke, read their logs; build them from source",
        ops: &[
            list("list", "/v1/plugins", &["name", "kind", "enabled", "active_version", "compiled", "latest_version"]),
            op("get", "get", "/v1/plugins/{name}"),
            op("upload", "post", "/v1/plugins"),
            op("update", "patch", "/v1/plugins/{name}"),
            Op { pins: true, ..op("pin", "patch", "/v1/plugins/{name}") },
            list(
                "versions",
                "/v1/plugins/{name}/versions",
                &["version", "wit_version", "size_bytes", "uploaded_by", "uploaded_at"],
            ),
            op("invoke", "post", "/v1/plugins/{name}/invoke"),
            list("logs", "/v1/plugins/{name}/logs", &["at", "level", "function", "message"]),
            op("delete", "delete", "/v1/plugins/{name}"),
        ],
    },
    Resource {
        name: "customers",
        about: "Customers and their custom fields",
        ops: &[
            list("list", "/v1/customers", &["id", "name", "last_seen"]),
            op("get", "get", "/v1/customers/{id}"),
            op("put", "put", "/v1/customers/{id}"),
            op("delete", "delete", "/v1/customers/{id}"),
            list("cohorts", "/v1/customers/{id}/cohorts", &["cohort_id", "name", "entered_at"]),
        ],
    },
    Resource {
        name: "events",
        about: "Usage, billing and product events",
        ops: &[
            op("send", "post", "/v1/events"),
            list("types", "/v1/event-types", &["type", "count", "first_seen", "last_seen"]),
        ],
    },
    Resource {
        name: "rules",
        about: "Alerting rules",
        ops: &[
            list("list", "/v1/rules", RULE_COLUMNS),
            op("get", "get", "/v1/rules/{id}"),
            op("create", "post", "/v1/rules"),
            op("replace", "put", "/v1/rules/{id}"),
            op("delete", "delete", "/v1/rules/{id}"),
            op("states", "get", "/v1/rules/{id}/states"),
            op("stats", "get", "/v1/rules/{id}/stats"),
            op("evaluate", "post", "/v1/rules/{id}/evaluate"),
            op("backtest", "post", "/v1/rules/backtest"),
        ],
    },
    Resource {
        name: "backtests",
        about: "Backtest jobs: a long backtest's progress and report",
        ops: &[op("get", "get", "/v1/backtests/{id}"), op("cancel", "delete", "/v1/backtests/{id}")],
    },
    Resource {
        name: "channels",
        about: "Webhook, email, Slack and Teams channels",
        ops: &[
            list("list", "/v1/channels", &["id", "name", "kind", "enabled"]),
            op("get", "get", "/v1/channels/{id}"),
            op("create", "post", "/v1/channels"),
            op("replace", "put", "/v1/channels/{id}"),
            op("delete", "delete", "/v1/channels/{id}"),
            op("check", "post", "/v1/channels/check"),
            op("preview", "post", "/v1/channels/{id}/preview"),
            op("test", "post", "/v1/channels/{id}/test"),
            op("rotate-secret", "post", "/v1/channels/{id}/rotate-secret"),
        ],
    },
    Resource {
        name: "cohorts",
        about: "Cohorts that customers enter and leave",
        ops: &[
            list("list", "/v1/cohorts", &["id", "name", "status", "computed_at"]),
            op("get", "get", "/v1/cohorts/{id}"),
            op("create", "post", "/v1/cohorts"),
            op("replace", "put", "/v1/cohorts/{id}"),
            op("delete", "delete", "/v1/cohorts/{id}"),
            list("members", "/v1/cohorts/{id}/members", &["customer_id", "name", "entered_at"]),
        ],
    },
    Resource {
        name: "recipients",
        about: "People and groups that subscriptions notify",
        ops: &[
            list("list", "/v1/recipients", &["id", "name", "email"]),
            op("get", "get", "/v1/recipients/{id}"),
            op("create", "post", "/v1/recipients"),
            op("replace", "put", "/v1/recipients/{id}"),
            op("delete", "delete", "/v1/recipients/{id}"),
        ],
    },
    Resource {
        name: "categories",
        about: "Notification categories",
        ops: &[
            list("list", "/v1/categories", &["name", "built_in", "description"]),
            op("get", "get", "/v1/categories/{name}"),
            op("put", "put", "/v1/categories/{name}"),
            op("delete", "delete", "/v1/categories/{name}"),
        ],
    },
    Resource {
        name: "subscriptions",
        about: "Who hears about which categories, and how often",
        ops: &[
            list("list", "/v1/subscriptions", &["id", "name", "group", "enabled", "min_severity"]),
            op("get", "get", "/v1/subscriptions/{id}"),
            op("create", "post", "/v1/subscriptions"),
            op("replace", "put", "/v1/subscriptions/{id}"),
            op("delete", "delete", "/v1/subscriptions/{id}"),
            op("test", "post", "/v1/subscriptions/{id}/test"),
        ],
    },
    Resource {
        name: "silences",
        about: "Silences that hold back matching notifications",
        ops: &[
            list("list", "/v1/silences", &["id", "state", "ends_at", "comment"]),
            op("get", "get", "/v1/silences/{id}"),
            op("create", "post", "/v1/silences"),
            op("expire", "delete", "/v1/silences/{id}"),
        ],
    },
    Resource {
        name: "time-intervals",
        about: "Named calendar ranges in a time zone, which silences recur in",
        ops: &[
            list("list", "/v1/time-intervals", &["name", "timezone", "holds_now", "next_start"]),
            op("get", "get", "/v1/time-intervals/{name}"),
            op("create", "post", "/v1/time-intervals"),
            op("replace", "put", "/v1/time-intervals/{name}"),
            op("delete", "delete", "/v1/time-intervals/{name}"),
        ],
    },
    Resource {
        name: "incidents",
        about: "Incidents and maintenance announcements",
        ops: &[
            list("list", "/v1/incidents", &["id", "kind", "status", "severity", "title"]),
            op("get", "get", "/v1/incidents/{id}"),
            op("create", "post", "/v1/incidents"),
            op("update", "post", "/v1/incidents/{id}/updates"),
        ],
    },
    Resource {
        name: "status-page",
        about: "The tenant's public status page, served at /status/{slug}",
        ops: &[op("get", "get", "/v1/status-page"), op("set", "put", "/v1/status-page")],
    },
    Resource {
        name: "notifications",
        about: "Notifications the rules made and their deliveries",
        ops: &[
            list("list", "/v1/notifications", &["id", "created_at", "kind", "status", "rule_id", "customer_id"]),
            op("get", "get", "/v1/notifications/{id}"),
            list(
                "attempts",
                "/v1/notifications/{id}/attempts",
                &["channel_id", "number", "at", "status_code", "verdict", "error"],
            ),
            op("resend", "post", "/v1/notifications/{id}/resend"),
        ],
    },
    Resource {
        name: "stats",
        about: "Events, notifications, deliveries and alerts in alarm over time",
        ops: &[op("show", "get", "/v1/stats")],
    },
    Resource {
        name: "audit",
        about: "The audit trail of changes (the tenant's admins; `platform` for the platform admin)",
        ops: &[
            list("list", "/v1/audit", &["id", "at", "actor.id", "operation", "object"]),
            list("platform", "/v1/admin/audit", &["id", "at", "operation", "object"]),
        ],
    },
    Resource {
        name: "clock",
        about: "The server's clock (platform admin)",
        ops: &[op("get", "get", "/v1/clock"), op("set", "put", "/v1/clock")],
    },
    Resource {
        name: "cluster",
        about: "The nodes and the partitions each holds (platform admin)",
        ops: &[op("show", "get", "/v1/cluster")],
    },
];

/// What an operation takes as its body.
#[derive(Clone, Copy)]
pub enum Body {
    None,
    Json { required: bool },
    Component,
}

impl Op {
    /// The operation as the OpenAPI description `api` tells it.
    pub fn described<'a>(&self, api: &'a Value) -> &'a Value {
        let operation = &api["paths"][self.path][self.method];
        assert!(operation.is_object(), "the OpenAPI description has no {} {}", self.method, self.path);
        operation
    }

    pub fn path_params(&self) -> impl Iterator<Item = &'static str> {
        self.path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
    }

    pub fn query_params<'a>(&self, api: &'a Value) -> impl Iterator<Item = &'a Value> {
        let parameters = self.described(api)["parameters"].as_array().map(Vec::as_slice).unwrap_or_default();
        parameters.iter().filter(|p| p["in"] == "query")
    }

    pub fn body(&self, api: &Value) -> Body {
        let body = &self.described(api)["requestBody"];
        if body.is_null() {
            Body::None
        } else if body["content"]["application/wasm"].is_object() {
            Body::Component
        } else {
            Body::Json { required: body["required"] == true }
        }
    }

    /// The verb's subcommand.
    pub fn command(&self, api: &Value) -> Command {
        let operation = self.described(api);
        let summary = match self.pins {
            true => "Pin a version of the plugin, or follow the latest upload".to_owned(),
            false => operation["summary"].as_str().unwrap_or_default().to_owned(),
        };
        let mut command = Command::new(self.verb).about(summary);
        for name in self.path_params() {
            command = command.arg(Arg::new(name).value_name(name.to_uppercase()).required(true));
        }
        for param in self.query_params(api) {
            let name = param["name"].as_str().expect("a parameter has a name");
            let mut help = param["description"].as_str().unwrap_or_default().to_owned();
            if let Some(choices) = param["schema"]["enum"].as_array() {
                let choices: Vec<_> = choices.iter().filter_map(Value::as_str).collect();
                help = format!("{help} [one of: {}]", choices.join(", ")).trim_start().to_owned();
            }
            command = command.arg(
                Arg::new(format!("query:{name}"))
                    .long(name.replace('_', "-"))
                    .value_name(name.to_uppercase())
                    .required(param["required"] == true)
                    .help(help),
            );
        }
        if self.pins {
            return command.arg(
                Arg::new("pinned")
                    .value_name("VERSION")
                    .required(true)
                    .value_parser(pinned_version)
                    .help("The version number to pin, or `latest` to follow each new upload"),
            );
        }
        match self.body(api) {
            Body::None => command,
            Body::Component => command
                .arg(Arg::new("component").value_name("COMPONENT").required(true).help("The component's .wasm file")),
            Body::Json { required } => command
                .arg(
                    Arg::new("file")
                        .short('f')
                        .long("file")
                        .value_name("PATH")
                        .help("Read the JSON body from this file (`-` for standard input)"),
                )
                .arg(Arg::new("data").short('d').long("data").value_name("JSON").help("The JSON body, inline"))
                .group(ArgGroup::new("body").args(["file", "data"]).required(required)),
        }
    }
}

impl Resource {
    pub fn command(&self, api: &Value) -> Command {
        let verbs = self.ops.iter().map(|op| op.command(api));
        Command::new(self.name).about(self.about).subcommand_required(true).args(connection_args()).subcommands(verbs)
    }
}

/// `pin`'s VERSION as the body's `pinned_version`: a number, or null for `latest`.
fn pinned_version(text: &str) -> Result<Value, String> {
    match text {
        "latest" => Ok(Value::Null),
        number => number.parse::<u32>().map(Value::from).map_err(|_| "a version number or `latest`".to_owned()),
    }
}

/// The connection flags every API subcommand takes: global under each resource, so they may
/// follow the verb, and taken before the resource too (`klaxon --url ... rules list`).
pub fn connection_args() -> [Arg; 5] {
    [
        Arg::new("url")
            .long("url")
            .env("KLAXON_URL")
            .global(true)
            .value_name("URL")
            .help("The server's address [default: the profile's, else http://127.0.0.1:8080]"),
        Arg::new("key")
            .long("key")
            .env("KLAXON_KEY")
            .global(true)
            .value_name("KEY")
            .help("An API key or the admin token")
            .hide_env_values(true),
        Arg::new("profile")
            .long("profile")
            .env("KLAXON_PROFILE")
            .global(true)
            .value_name("NAME")
            .help("A profile of the profiles file [default: the file's `default`]"),
        Arg::new("profiles")
            .long("profiles")
            .env("KLAXON_PROFILES")
            .global(true)
            .value_name("PATH")
            .help("The profiles file [default: ~/.config/klaxon/profiles.toml]"),
        Arg::new("output")
            .short('o')
            .long("output")
            .global(true)
            .value_name("FORMAT")
            .value_parser(["table", "json"])
            .default_value("table")
            .action(ArgAction::Set)
            .help("How answers are printed"),
    ]
    .map(|arg| arg.help_heading("Connection and output"))
}
