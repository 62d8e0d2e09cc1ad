//! Host bindings generated from `wit/`, one module per supported WIT version, so components built
//! against an older version keep loading and running when the interface moves on. `wit/` holds
//! the newest version; `wit/<version>/` each older one, unchanged since its release.

/// The WIT versions Klaxon loads, newest first.
pub const SUPPORTED: [&str; 3] = ["0.3.0", "0.2.0", "0.1.0"];

macro_rules! worlds {
    ($path:literal, $version:literal) => {
        pub mod condition {
            wasmtime::component::bindgen!({
                path: $path,
                world: "condition",
                imports: { default: trappable },
            });
        }

        pub mod template {
            wasmtime::component::bindgen!({
                path: $path,
                world: "template",
                imports: { default: trappable },
                with: {
                    "klaxon:plugin/types": super::condition::klaxon::plugin::types,
                    "klaxon:plugin/host": super::condition::klaxon::plugin::host,
                },
            });
        }

        pub use condition::klaxon::plugin::{host, types};

        /// The version these bindings are for.
        pub const VERSION: &str = $version;
    };
}

pub mod v0_1 {
    worlds!("../wit/0.1.0", "0.1.0");
}

pub mod v0_2 {
    worlds!("../wit/0.2.0", "0.2.0");
}

pub mod v0_3 {
    worlds!("../wit", "0.3.0");

    /// The world 0.3.0 adds.
    pub mod channel {
        wasmtime::component::bindgen!({
            path: "../wit",
            world: "channel",
            imports: { default: trappable },
            with: {
                "klaxon:plugin/types": super::condition::klaxon::plugin::types,
                "klaxon:plugin/host": super::condition::klaxon::plugin::host,
            },
        });
    }
}
