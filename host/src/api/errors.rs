//! The lower layers' errors as HTTP answers: the one place they meet `ApiError`.

use axum::http::StatusCode;

use crate::backup::BackupError;
use crate::channels::payloads::RenderError;
use crate::delivery::DeliveryError;
use crate::error::ApiError;
use crate::plugins::{PluginError, RegistryError};
use crate::store::StoreError;
use crate::tenants::Forbidden;

impl From<PluginError> for ApiError {
    fn from(e: PluginError) -> Self {
        if let PluginError::RateLimited { retry_after, .. } = e {
            let retry_after = crate::tenants::buckets::seconds(retry_after);
            return ApiError::RateLimited { limit: "plugin_calls_per_second", message: e.to_string(), retry_after };
        }
        let status = match e {
            PluginError::NotAComponent(_) | PluginError::Invalid(_) | PluginError::WorldMismatch { .. } => {
                StatusCode::BAD_REQUEST
            }
            PluginError::Host(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::Described { status, code: e.code(), limit: e.limit(), message: e.to_string() }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Plugin(e) => e.into(),
            RegistryError::Invalid(e) => e.into(),
            RegistryError::NotFound(what) => ApiError::not_found(what),
            RegistryError::Conflict(message) => ApiError::Conflict(message),
            RegistryError::Forbidden(e) => e.into(),
            RegistryError::Store(e) => e.into(),
        }
    }
}

impl From<DeliveryError> for ApiError {
    fn from(e: DeliveryError) -> Self {
        match e {
            DeliveryError::Invalid(e) => e.into(),
            DeliveryError::Render(e) => e.into(),
        }
    }
}

impl From<RenderError> for ApiError {
    fn from(e: RenderError) -> Self {
        match e {
            RenderError::NoTenant(tenant) => ApiError::not_found(format_args!("tenant `{tenant}`")),
            RenderError::Plugin(e) => e.into(),
            RenderError::Store(e) => e.into(),
        }
    }
}

impl From<Forbidden> for ApiError {
    fn from(e: Forbidden) -> Self {
        ApiError::Forbidden(e.0)
    }
}

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> Self {
        match e {
            BackupError::Store(StoreError::Refused(message)) | BackupError::Refused(message) => {
                ApiError::Conflict(message)
            }
            BackupError::Store(e) => e.into(),
            other => ApiError::Store(StoreError::Backend(other.to_string())),
        }
    }
}
