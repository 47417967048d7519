//! `[pipeline]` exactly as written: every value with its span, nothing checked beyond its TOML
//! type. Validated into [`super::Pipeline`] by `validate.rs`.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use toml::Spanned;

use crate::raw::Text;

/// A duration as written: a string such as `"30s"`, or a bare number, which validation refuses
/// with a hint rather than guessing its unit.
pub(crate) type RawDuration = Spanned<toml::Value>;

// Tables are never `Spanned` values here, only their keys: toml cannot give the span of a table
// that exists only through a deeper header (`[pipeline.jobs.t.services.postgres.environment]`).

/// A file that holds a `[pipeline]` table among tables that belong to others.
#[derive(Debug, Deserialize)]
pub(crate) struct PipelineDocument {
    pub pipeline: Option<RawPipeline>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPipeline {
    pub file: Option<Text>,
    pub max_parallel: Option<Spanned<i64>>,
    #[serde(default)]
    pub environment: IndexMap<String, Scalar>,
    #[serde(default)]
    pub secrets: Vec<String>,
    pub secrets_file: Option<Text>,
    pub cache: Option<RawCache>,
    #[serde(default)]
    pub jobs: IndexMap<Spanned<String>, RawJob>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCache {
    pub max_size: Option<Text>,
    pub max_age: Option<RawDuration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJob {
    #[serde(default)]
    pub steps: Vec<Spanned<RawStep>>,
    pub requires: Option<Spanned<OneOrMany>>,
    pub only: Option<Spanned<OneOrMany>>,
    pub ignore: Option<Spanned<OneOrMany>>,
    #[serde(default)]
    pub environment: IndexMap<String, Scalar>,
    #[serde(default)]
    pub services: IndexMap<Spanned<String>, RawService>,
    pub timeout: Option<RawDuration>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    #[serde(default)]
    pub environment: IndexMap<String, Scalar>,
    #[serde(default)]
    pub settings: IndexMap<String, Scalar>,
}

/// A step: the string `"checkout"`, or a table holding one step kind's key and its options.
#[derive(Debug)]
pub(crate) enum RawStep {
    Checkout,
    Table(Box<RawStepTable>),
}

/// Every step kind's keys, all optional: validation checks that exactly one kind is given and
/// that the other keys belong to it, and points at the one that does not.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStepTable {
    pub checkout: Option<Spanned<bool>>,
    pub run: Option<Text>,
    pub restore_cache: Option<Spanned<OneOrMany>>,
    pub save_cache: Option<Text>,
    pub artifacts: Option<Text>,
    pub test_results: Option<Text>,
    pub deploy: Option<Spanned<DeployTarget>>,
    pub name: Option<Text>,
    pub when: Option<Text>,
    pub shell: Option<Text>,
    pub environment: Option<Spanned<IndexMap<String, Scalar>>>,
    pub working_directory: Option<Text>,
    pub no_output_timeout: Option<RawDuration>,
    pub unless_cache_hit: Option<Spanned<bool>>,
    pub paths: Option<Spanned<OneOrMany>>,
    pub destination: Option<Text>,
}

impl<'de> Deserialize<'de> for RawStep {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct StepVisitor;
        impl<'de> Visitor<'de> for StepVisitor {
            type Value = RawStep;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"checkout\" or a table such as { run = \"pytest\" }")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<RawStep, E> {
                if text == "checkout" {
                    Ok(RawStep::Checkout)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(text), &self))
                }
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawStep, A::Error> {
                RawStepTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|table| RawStep::Table(Box::new(table)))
            }
        }
        deserializer.deserialize_any(StepVisitor)
    }
}

/// `deploy = true` or `deploy = "production"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum DeployTarget {
    Default(bool),
    Environment(String),
}

/// One string or an array of strings.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(one) => vec![one],
            Self::Many(many) => many,
        }
    }
}

/// An environment value: TOML strings, numbers and booleans are all accepted.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub(crate) enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    pub fn into_string(self) -> String {
        match self {
            Self::Str(text) => text,
            Self::Int(number) => number.to_string(),
            Self::Float(number) => number.to_string(),
            Self::Bool(flag) => flag.to_string(),
        }
    }
}
