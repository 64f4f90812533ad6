//! `GET /api`: the API reference for people, rendered on the server from the same
//! [`OpenApi`] value `/openapi.json` serves, so the page and the document cannot differ.
//!
//! Input: the document. Output: one section per path and method (summary, who may call it,
//! parameters, request body fields, responses with their status and schema) and one per
//! schema with its fields. Plain HTML: no script, no inline style, so the CSP stays strict.

use std::sync::Arc;

use askama::Template;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{Schema, SchemaType};
use utoipa::openapi::{Content, OpenApi, RefOr, Required};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

use super::pages::Layout;
use super::{layout, page, render};
use crate::http::openapi::{ADMIN_ROLE, document};
use crate::http::routes::{Endpoint, at};
use crate::http::{AppState, Caller, caller, with_state};

#[derive(Template)]
#[template(path = "api.html")]
struct ReferencePage {
    layout: Layout,
    version: String,
    operations: Vec<OperationView>,
    schemas: Vec<SchemaView>,
}

struct OperationView {
    anchor: String,
    method: &'static str,
    path: String,
    summary: String,
    description: String,
    /// Who may call it, from the operation's security requirements.
    access: &'static str,
    parameters: Vec<FieldView>,
    bodies: Vec<BodyView>,
    responses: Vec<ResponseView>,
}

/// A parameter or a field of a body or schema.
struct FieldView {
    name: String,
    /// Where a parameter goes (`path`, `query`, `header`), or the field's type.
    kind: String,
    required: bool,
    about: String,
}

struct BodyView {
    content_type: String,
    /// A schema's name, or the type.
    schema: String,
    /// Whether `schema` names one of the schemas listed below (and so links to it).
    reference: bool,
    /// Its fields, for a form described in place.
    fields: Vec<FieldView>,
}

struct ResponseView {
    status: String,
    about: String,
    /// Content type and schema of each body it may have.
    bodies: Vec<BodyView>,
}

struct SchemaView {
    name: String,
    about: String,
    /// An enum's values, comma-separated; empty for other schemas.
    values: String,
    /// Schemas whose fields this one has too.
    includes: Vec<String>,
    fields: Vec<FieldView>,
}

pub fn route(state: &Arc<AppState>) -> BoxedFilter<(Response,)> {
    at(Endpoint::Reference)
        .and(with_state(state))
        .and(caller())
        .map(|state: Arc<AppState>, caller: Caller| {
            let reference = ReferencePage {
                layout: layout(&state, Some(&caller)),
                version: json_name(&document().openapi),
                operations: operations(document()),
                schemas: schemas(document()),
            };
            page(&state, &caller, render(&reference))
        })
        .boxed()
}

fn operations(document: &OpenApi) -> Vec<OperationView> {
    let mut views = Vec::new();
    for (path, item) in &document.paths.paths {
        let methods = [("GET", &item.get), ("POST", &item.post), ("PUT", &item.put), ("DELETE", &item.delete)];
        for (method, operation) in methods {
            if let Some(operation) = operation {
                views.push(operation_view(method, path, operation));
            }
        }
    }
    views
}

fn operation_view(method: &'static str, path: &str, operation: &Operation) -> OperationView {
    let anchor: String = format!("{method}-{path}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let parameters = operation
        .parameters
        .iter()
        .flatten()
        .map(|parameter| FieldView {
            name: parameter.name.clone(),
            kind: match parameter.parameter_in {
                ParameterIn::Path => "path",
                ParameterIn::Query => "query",
                ParameterIn::Header => "header",
                ParameterIn::Cookie => "cookie",
            }
            .to_owned(),
            required: matches!(parameter.required, Required::True),
            about: parameter.description.clone().unwrap_or_default(),
        })
        .collect();
    let bodies = operation
        .request_body
        .iter()
        .flat_map(|body| &body.content)
        .map(|(kind, content)| body_view(kind, content))
        .collect();
    let responses = operation
        .responses
        .responses
        .iter()
        .filter_map(|(status, response)| match response {
            RefOr::T(response) => Some(ResponseView {
                status: status.clone(),
                about: response.description.clone(),
                bodies: response.content.iter().map(|(kind, content)| body_view(kind, content)).collect(),
            }),
            RefOr::Ref(_) => None,
        })
        .collect();
    OperationView {
        anchor,
        method,
        path: path.to_owned(),
        summary: operation.summary.clone().unwrap_or_default(),
        description: operation.description.clone().unwrap_or_default(),
        access: access(operation),
        parameters,
        bodies,
        responses,
    }
}

/// Who may call an operation, from its security requirements and the roles they name.
fn access(operation: &Operation) -> &'static str {
    let Some(requirements) = &operation.security else { return "anyone" };
    let roles = serde_json::to_value(requirements).unwrap_or_default();
    let needs_admin =
        roles.as_array().into_iter().flatten().filter_map(|requirement| requirement.as_object()).any(|schemes| {
            schemes.values().any(|roles| roles.as_array().is_some_and(|roles| roles.contains(&ADMIN_ROLE.into())))
        });
    if needs_admin {
        "an administrator's API key or session (anyone, with authentication off)"
    } else {
        "an API key or the page's session (anyone, with authentication off)"
    }
}

fn body_view(content_type: &str, content: &Content) -> BodyView {
    let (schema, reference, fields) = match &content.schema {
        Some(RefOr::T(schema)) => (type_name(schema), false, fields(schema)),
        Some(RefOr::Ref(reference)) => (ref_name(&reference.ref_location).to_owned(), true, Vec::new()),
        None => (String::new(), false, Vec::new()),
    };
    BodyView { content_type: content_type.to_owned(), schema, reference, fields }
}

fn schemas(document: &OpenApi) -> Vec<SchemaView> {
    let Some(components) = &document.components else { return Vec::new() };
    components
        .schemas
        .iter()
        .filter_map(|(name, schema)| match schema {
            RefOr::T(schema) => Some(schema_view(name, schema)),
            RefOr::Ref(_) => None,
        })
        .collect()
}

/// An object's fields, an enum's values, or the schemas it merges (`allOf`) and its own fields.
fn schema_view(name: &str, schema: &Schema) -> SchemaView {
    let mut view = SchemaView {
        name: name.to_owned(),
        about: String::new(),
        values: String::new(),
        includes: Vec::new(),
        fields: fields(schema),
    };
    match schema {
        Schema::Object(object) => {
            view.about = object.description.clone().unwrap_or_default();
            let values = object.enum_values.iter().flatten().filter_map(|value| value.as_str());
            view.values = values.collect::<Vec<_>>().join(", ");
        }
        Schema::AllOf(all) => {
            for item in &all.items {
                match item {
                    RefOr::T(schema) => view.fields.extend(fields(schema)),
                    RefOr::Ref(reference) => view.includes.push(ref_name(&reference.ref_location).to_owned()),
                }
            }
        }
        _ => {}
    }
    view
}

/// An object's properties.
fn fields(schema: &Schema) -> Vec<FieldView> {
    let Schema::Object(object) = schema else { return Vec::new() };
    object
        .properties
        .iter()
        .map(|(name, property)| FieldView {
            name: name.clone(),
            kind: ref_or_type_name(property),
            required: object.required.contains(name),
            about: match property {
                RefOr::T(Schema::Object(inner)) => inner.description.clone().unwrap_or_default(),
                _ => String::new(),
            },
        })
        .collect()
}

fn ref_name(location: &str) -> &str {
    location.rsplit('/').next().unwrap_or(location)
}

fn ref_or_type_name(schema: &RefOr<Schema>) -> String {
    match schema {
        RefOr::Ref(reference) => ref_name(&reference.ref_location).to_owned(),
        RefOr::T(schema) => type_name(schema),
    }
}

/// A schema's type in a few words: `string`, `integer or null`, `array of JobView`.
fn type_name(schema: &Schema) -> String {
    match schema {
        Schema::Object(object) => {
            let kind = match &object.schema_type {
                SchemaType::Type(kind) => json_name(kind),
                SchemaType::Array(kinds) => kinds.iter().map(json_name).collect::<Vec<_>>().join(" or "),
                SchemaType::AnyValue => "any".to_owned(),
            };
            if !object.content_media_type.is_empty() { "file".to_owned() } else { kind }
        }
        Schema::Array(array) => {
            let items = match &array.items {
                utoipa::openapi::schema::ArrayItems::RefOrSchema(item) => ref_or_type_name(item),
                utoipa::openapi::schema::ArrayItems::False => "nothing".to_owned(),
            };
            format!("array of {items}")
        }
        Schema::OneOf(one) => one.items.iter().map(ref_or_type_name).collect::<Vec<_>>().join(" or "),
        Schema::AllOf(all) => all.items.iter().map(ref_or_type_name).collect::<Vec<_>>().join(" and "),
        Schema::AnyOf(any) => any.items.iter().map(ref_or_type_name).collect::<Vec<_>>().join(" or "),
        _ => "any".to_owned(),
    }
}

/// A value as its JSON string says it: a type's name (`string`, `null`), the version `3.1.0`.
fn json_name(kind: &impl serde::Serialize) -> String {
    serde_json::to_value(kind).ok().and_then(|value| value.as_str().map(str::to_owned)).unwrap_or_default()
}
