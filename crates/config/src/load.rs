//! From YAML text to typed resources: split the streams into documents, pick each document's
//! type by `apiVersion` and `kind`, and collect every problem as a [`Diagnostic`].

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::diagnostic::{Diagnostic, Severity};
use crate::resources::{
    Address, AddressPlan, AddressSpace, AddressSpacePlan, AuthenticationService, InfraConfig,
    MessagingUser,
};
use crate::yaml::{self, LineMap};

/// One YAML file's name (as it should appear in diagnostics) and contents.
#[derive(Clone, Debug)]
pub struct Source {
    /// The file name, e.g. `addresses.yaml` or the path it was read from.
    pub name: String,
    /// The YAML text, one or more documents.
    pub contents: String,
}

impl Source {
    /// A source from a name and its contents.
    pub fn new(name: impl Into<String>, contents: impl Into<String>) -> Self {
        Source {
            name: name.into(),
            contents: contents.into(),
        }
    }
}

/// Where a resource was written: file, document and the lines of its fields.
#[derive(Clone, Debug)]
pub struct Origin {
    /// The file name as given.
    pub file: String,
    /// The document index in the file, 1-based.
    pub document: usize,
    lines: Arc<LineMap>,
    written: Arc<Value>,
}

impl Origin {
    /// The line `path` (e.g. `spec.plan`) was written on, or its nearest written ancestor's.
    pub fn line(&self, path: &str) -> Option<u64> {
        self.lines.line(path)
    }

    /// A diagnostic about `path` in this document.
    pub fn diagnostic(
        &self,
        severity: Severity,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Diagnostic {
        let path = path.into();
        Diagnostic {
            severity,
            file: self.file.clone(),
            document: Some(self.document),
            line: self.line(&path),
            path,
            message: message.into(),
        }
    }

    pub(crate) fn error(&self, path: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        self.diagnostic(Severity::Error, path, message)
    }

    pub(crate) fn warning(
        &self,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Diagnostic {
        self.diagnostic(Severity::Warning, path, message)
    }

    /// The whole document as it was written (`apiVersion` and `kind` included), as JSON: what
    /// `sluice render` writes out again, so that a resource reaches a pod exactly as given.
    pub fn written(&self) -> &Value {
        &self.written
    }

    /// `file document N`, for messages that point at another resource.
    pub fn describe(&self) -> String {
        format!("{} document {}", self.file, self.document)
    }
}

/// A resource together with where it was written.
#[derive(Clone, Debug)]
pub struct Located<T> {
    /// Where it was written.
    pub origin: Origin,
    /// The resource.
    pub resource: T,
}

/// Every resource Sluice uses, in the order they were read.
#[derive(Clone, Debug, Default)]
pub struct Manifests {
    /// `AddressSpace` resources.
    pub address_spaces: Vec<Located<AddressSpace>>,
    /// `Address` resources.
    pub addresses: Vec<Located<Address>>,
    /// `MessagingUser` resources.
    pub messaging_users: Vec<Located<MessagingUser>>,
    /// `AddressSpacePlan` resources.
    pub address_space_plans: Vec<Located<AddressSpacePlan>>,
    /// `AddressPlan` resources.
    pub address_plans: Vec<Located<AddressPlan>>,
    /// `AuthenticationService` resources.
    pub authentication_services: Vec<Located<AuthenticationService>>,
    /// `StandardInfraConfig` resources.
    pub standard_infra_configs: Vec<Located<InfraConfig>>,
    /// `BrokeredInfraConfig` resources.
    pub brokered_infra_configs: Vec<Located<InfraConfig>>,
}

/// The kinds Sluice reads and the API versions each is served at.
const KINDS: &[(&str, &[&str])] = &[
    ("AddressSpace", &["enmasse.io/v1beta1"]),
    ("Address", &["enmasse.io/v1beta1"]),
    ("MessagingUser", &["user.enmasse.io/v1beta1"]),
    (
        "AddressSpacePlan",
        &["admin.enmasse.io/v1beta2", "admin.enmasse.io/v1beta1"],
    ),
    (
        "AddressPlan",
        &["admin.enmasse.io/v1beta2", "admin.enmasse.io/v1beta1"],
    ),
    ("AuthenticationService", &["admin.enmasse.io/v1beta1"]),
    ("StandardInfraConfig", &["admin.enmasse.io/v1beta1"]),
    ("BrokeredInfraConfig", &["admin.enmasse.io/v1beta1"]),
];

/// Parses every source into typed resources. Problems (YAML syntax, wrong types, missing
/// fields, unknown fields, skipped kinds) are appended to `diagnostics`; a document with an
/// error is left out of the result.
pub fn parse_sources(sources: &[Source], diagnostics: &mut Vec<Diagnostic>) -> Manifests {
    let mut manifests = Manifests::default();
    for source in sources {
        parse_source(source, &mut manifests, diagnostics);
    }
    manifests
}

fn parse_source(source: &Source, manifests: &mut Manifests, diagnostics: &mut Vec<Diagnostic>) {
    let documents = match yaml::parse_documents(&source.contents) {
        Ok(documents) => documents,
        Err(error) => {
            diagnostics.push(Diagnostic {
                severity: Severity::Error,
                file: source.name.clone(),
                document: None,
                line: error.line,
                path: String::new(),
                message: format!("invalid YAML: {}", error.message),
            });
            return;
        }
    };
    for (index, document) in documents.into_iter().enumerate() {
        let origin = Origin {
            file: source.name.clone(),
            document: index + 1,
            lines: Arc::new(document.lines),
            written: Arc::new(document.value.clone()),
        };
        parse_document(document.value, origin, manifests, diagnostics);
    }
}

fn parse_document(
    value: Value,
    origin: Origin,
    manifests: &mut Manifests,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let Value::Object(mut map) = value else {
        if !value.is_null() {
            diagnostics.push(origin.error("", "not a Kubernetes resource: expected a mapping"));
        }
        return;
    };
    let api_version = map.remove("apiVersion");
    let kind = map.remove("kind");
    let (Some(Value::String(api_version)), Some(Value::String(kind))) = (api_version, kind) else {
        diagnostics.push(origin.error(
            "",
            "not a Kubernetes resource: `apiVersion` and `kind` must both be strings",
        ));
        return;
    };
    let Some((_, versions)) = KINDS.iter().find(|(known, _)| *known == kind) else {
        let name = map
            .get("metadata")
            .and_then(|metadata| metadata.get("name"))
            .and_then(Value::as_str)
            .unwrap_or("");
        diagnostics.push(origin.diagnostic(
            Severity::Note,
            "kind",
            format!("skipped {kind} {name:?} ({api_version}): not a kind Sluice uses"),
        ));
        return;
    };
    if !versions.contains(&api_version.as_str()) {
        diagnostics.push(origin.error(
            "apiVersion",
            format!(
                "{kind} is not served at {api_version:?} (expected {})",
                versions.join(" or ")
            ),
        ));
        return;
    }
    let value = Value::Object(map);
    macro_rules! push {
        ($field:ident) => {
            if let Some(resource) = typed(value, &origin, diagnostics) {
                manifests.$field.push(Located { origin, resource });
            }
        };
    }
    match kind.as_str() {
        "AddressSpace" => push!(address_spaces),
        "Address" => push!(addresses),
        "MessagingUser" => push!(messaging_users),
        "AddressSpacePlan" => push!(address_space_plans),
        "AddressPlan" => push!(address_plans),
        "AuthenticationService" => push!(authentication_services),
        "StandardInfraConfig" => push!(standard_infra_configs),
        _ => push!(brokered_infra_configs),
    }
}

/// Deserializes `value` as `T`. Unknown fields become warnings (as kubectl treats them); a
/// type error becomes an error naming its field path.
fn typed<T: DeserializeOwned>(
    value: Value,
    origin: &Origin,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<T> {
    let mut unknown = Vec::new();
    let result: Result<T, _> = {
        let mut record = |path: serde_ignored::Path<'_>| unknown.push(ignored_path(&path));
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(value, &mut record))
    };
    match result {
        Ok(resource) => {
            for path in unknown {
                diagnostics.push(origin.warning(path.as_str(), "unknown field, ignored"));
            }
            Some(resource)
        }
        Err(error) => {
            let path = error.path().to_string();
            let path = if path == "." { String::new() } else { path };
            diagnostics.push(origin.error(path, error.into_inner().to_string()));
            None
        }
    }
}

/// `serde_ignored`'s path in the form the line map and `serde_path_to_error` use:
/// `spec.forwarders[0].name`.
fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        Path::Map { parent, key } => {
            let parent = ignored_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_path(parent),
    }
}
