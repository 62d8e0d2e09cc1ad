//! Per-call limits on plugin execution.

use serde::{Deserialize, Serialize};

/// Limits for one plugin call. A tenant has ceilings; a plugin may set lower values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginLimits {
    /// Instruction budget (wasmtime fuel).
    pub fuel: u64,
    /// Wall-clock budget in milliseconds.
    pub time_ms: u64,
    /// Largest size of each linear memory, in bytes.
    pub memory_bytes: u64,
    /// Largest input the plugin is handed, in bytes.
    pub input_bytes: u64,
    /// Largest output the host accepts back, in bytes.
    pub output_bytes: u64,
}

/// A plugin's own limits: each one unset follows the tenant's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_bytes: Option<u64>,
}

/// The hard ceiling on memory a plugin may ask for, whatever the configuration says.
const MAX_MEMORY_BYTES: u64 = 4 << 30;

impl LimitOverrides {
    fn fields(&self) -> [(&'static str, Option<u64>); 5] {
        [
            ("fuel", self.fuel),
            ("time_ms", self.time_ms),
            ("memory_bytes", self.memory_bytes),
            ("input_bytes", self.input_bytes),
            ("output_bytes", self.output_bytes),
        ]
    }
}

impl PluginLimits {
    /// Checks that every limit is usable; the error starts with the field's name.
    pub fn validate(&self) -> Result<(), String> {
        for (name, value) in self.fields() {
            if value == 0 {
                return Err(format!("{name}: must be above 0"));
            }
        }
        if self.memory_bytes > MAX_MEMORY_BYTES {
            return Err(format!("memory_bytes: must be at most {MAX_MEMORY_BYTES}"));
        }
        Ok(())
    }

    /// Checks a plugin's overrides against these ceilings; the error names the field.
    pub fn check_overrides(&self, overrides: &LimitOverrides) -> Result<(), String> {
        for ((name, ceiling), (_, wanted)) in self.fields().into_iter().zip(overrides.fields()) {
            match wanted {
                Some(0) => return Err(format!("{name}: must be above 0")),
                Some(v) if v > ceiling => {
                    return Err(format!("{name}: {v} is above the tenant's limit of {ceiling}"));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// These limits lowered by a plugin's overrides. An override left above a ceiling that
    /// was lowered since is clamped to it, so calls keep working.
    pub fn clamped_by(&self, overrides: &LimitOverrides) -> PluginLimits {
        let pick = |ceiling: u64, wanted: Option<u64>| wanted.map_or(ceiling, |v| v.clamp(1, ceiling));
        PluginLimits {
            fuel: pick(self.fuel, overrides.fuel),
            time_ms: pick(self.time_ms, overrides.time_ms),
            memory_bytes: pick(self.memory_bytes, overrides.memory_bytes),
            input_bytes: pick(self.input_bytes, overrides.input_bytes),
            output_bytes: pick(self.output_bytes, overrides.output_bytes),
        }
    }

    fn fields(&self) -> [(&'static str, u64); 5] {
        [
            ("fuel", self.fuel),
            ("time_ms", self.time_ms),
            ("memory_bytes", self.memory_bytes),
            ("input_bytes", self.input_bytes),
            ("output_bytes", self.output_bytes),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: PluginLimits =
        PluginLimits { fuel: 1000, time_ms: 100, memory_bytes: 1 << 20, input_bytes: 10, output_bytes: 10 };

    #[test]
    fn overrides_lower_but_never_raise() {
        let lower = LimitOverrides { fuel: Some(10), ..Default::default() };
        TENANT.check_overrides(&lower).unwrap();
        let lowered = TENANT.clamped_by(&lower);
        assert_eq!(lowered.fuel, 10);
        assert_eq!(lowered.time_ms, 100);
        let err = TENANT.check_overrides(&LimitOverrides { time_ms: Some(101), ..Default::default() }).unwrap_err();
        assert!(err.starts_with("time_ms:"), "{err}");
        assert_eq!(TENANT.clamped_by(&LimitOverrides { time_ms: Some(101), ..Default::default() }).time_ms, 100);
    }

    #[test]
    fn zero_is_refused() {
        let err = PluginLimits { fuel: 0, ..TENANT }.validate().unwrap_err();
        assert!(err.starts_with("fuel:"), "{err}");
    }
}
