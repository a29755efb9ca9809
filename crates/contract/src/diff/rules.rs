//! The rules [`diff`](super::diff) applies, each a stable id and a fixed severity. The
//! table in the `diff` module's docs explains each one; [`RULES`] lists them in the same
//! order for callers that want to show or filter them.

use super::Severity;

/// One rule: the id changes carry and the severity they always have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) id: &'static str,
    pub(crate) severity: Severity,
}

macro_rules! rules {
    ($($name:ident = $id:literal, $severity:ident;)*) => {
        $(pub(crate) const $name: Rule = Rule { id: $id, severity: Severity::$severity };)*

        /// Every rule id [`diff`](super::diff) may report, with its severity, in the
        /// order of the table in the module docs.
        pub const RULES: &[(&str, Severity)] = &[$(($id, Severity::$severity)),*];
    };
}

rules! {
    // Operations.
    OPERATION_REMOVED = "operation-removed", Breaking;
    PATH_CHANGED = "path-changed", Breaking;
    OPERATION_ID_CHANGED = "operation-id-changed", Breaking;
    OPERATION_DEPRECATED = "operation-deprecated", Warning;
    OPERATION_ADDED = "operation-added", Info;
    COMPARISON_STOPPED = "comparison-stopped", Info;
    // Document.
    SERVER_URL_CHANGED = "server-url-changed", Breaking;
    SECURITY_SCHEME_CHANGED = "security-scheme-changed", Breaking;
    SECURITY_REQUIREMENTS_CHANGED = "security-requirements-changed", Breaking;
    // Parameters.
    PARAMETER_ADDED_REQUIRED = "request-parameter-added-required", Breaking;
    PARAMETER_BECAME_REQUIRED = "request-parameter-became-required", Breaking;
    PARAMETER_TYPE_CHANGED = "request-parameter-type-changed", Breaking;
    PARAMETER_REMOVED = "request-parameter-removed", Warning;
    PARAMETER_DEPRECATED = "request-parameter-deprecated", Warning;
    PARAMETER_SERIALIZATION_CHANGED = "request-parameter-serialization-changed", Warning;
    PARAMETER_ADDED_OPTIONAL = "request-parameter-added-optional", Info;
    // Request body.
    BODY_ADDED_REQUIRED = "request-body-added-required", Breaking;
    BODY_BECAME_REQUIRED = "request-body-became-required", Breaking;
    REQUEST_MEDIA_TYPE_REMOVED = "request-media-type-removed", Breaking;
    BODY_REMOVED = "request-body-removed", Warning;
    BODY_ADDED_OPTIONAL = "request-body-added-optional", Info;
    // Request schemas (bodies and parameters).
    PROPERTY_ADDED_REQUIRED = "request-property-added-required", Breaking;
    PROPERTY_BECAME_REQUIRED = "request-property-became-required", Breaking;
    REQUEST_TYPE_CHANGED = "request-property-type-changed", Breaking;
    REQUEST_TYPE_NARROWED = "request-property-type-narrowed", Breaking;
    REQUEST_BECAME_NOT_NULLABLE = "request-property-became-not-nullable", Breaking;
    REQUEST_ENUM_VALUE_REMOVED = "request-enum-value-removed", Breaking;
    REQUEST_ENUM_ADDED = "request-enum-added", Breaking;
    MAX_LENGTH_DECREASED = "request-property-max-length-decreased", Breaking;
    MIN_LENGTH_INCREASED = "request-property-min-length-increased", Breaking;
    MAX_DECREASED = "request-max-decreased", Breaking;
    MIN_INCREASED = "request-min-increased", Breaking;
    MAX_ITEMS_DECREASED = "request-max-items-decreased", Breaking;
    MIN_ITEMS_INCREASED = "request-min-items-increased", Breaking;
    PROPERTY_REMOVED_REQUEST = "request-property-removed", Warning;
    REQUEST_PATTERN_CHANGED = "request-pattern-changed", Warning;
    REQUEST_FORMAT_CHANGED = "request-format-changed", Warning;
    REQUEST_VARIANT_REMOVED = "request-variant-removed", Warning;
    PROPERTY_ADDED_OPTIONAL = "request-property-added-optional", Info;
    // Responses.
    STATUS_REMOVED = "response-status-removed", Breaking;
    RESPONSE_MEDIA_TYPE_REMOVED = "response-media-type-removed", Breaking;
    HEADER_REMOVED = "response-header-removed", Breaking;
    STATUS_ADDED = "response-status-added", Warning;
    // Response schemas.
    RESPONSE_PROPERTY_REMOVED = "response-property-removed", Breaking;
    RESPONSE_PROPERTY_RENAMED = "response-property-renamed", Breaking;
    RESPONSE_TYPE_CHANGED = "response-property-type-changed", Breaking;
    RESPONSE_BECAME_OPTIONAL = "response-property-became-optional", Breaking;
    RESPONSE_BECAME_NULLABLE = "response-property-became-nullable", Breaking;
    RESPONSE_ENUM_VALUE_ADDED = "response-enum-value-added", Warning;
    RESPONSE_ENUM_REMOVED = "response-enum-removed", Warning;
    RESPONSE_FORMAT_CHANGED = "response-format-changed", Warning;
    RESPONSE_VARIANT_ADDED = "response-variant-added", Warning;
    RESPONSE_PROPERTY_ADDED = "response-property-added", Info;
    RESPONSE_BECAME_REQUIRED = "response-property-became-required", Info;
    RESPONSE_VARIANT_REMOVED = "response-variant-removed", Info;
}
