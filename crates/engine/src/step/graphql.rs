//! `graphql: {connector, path, document, variables, headers}` with
//! `idempotency_key`, `retry` and `paginate`: a GraphQL operation sent
//! through a connector. Its result is the response's `data`.

use async_trait::async_trait;
use patchbay_config::{GraphqlConfig, Located, PaginateConfig, RetryConfig};
use patchbay_connector::{Document, GraphqlRequest, Pagination, RetryPolicy};
use patchbay_expr::Expr;
use serde::Deserialize;

use super::call::{pagination, retry_policy};
use super::exchange::Exchange;
use super::{Compiler, Description, Kind, Performed, Step, StepContext};
use crate::failure::{StepError, type_name};

/// `graphql`'s keys.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// A GraphQL operation sent to a connector; its result is the
    /// response's `data`.
    graphql: Located<GraphqlConfig>,
    /// jq producing the idempotency key of a mutation (default: derived
    /// from the run id, the step and the item).
    #[serde(default)]
    idempotency_key: Option<Located<String>>,
    /// Retries of the operation, replacing its connector's `retry`.
    #[serde(default)]
    retry: Option<Located<RetryConfig>>,
    /// Fetch a connection page by page (`connection: {from: JQ}`).
    #[serde(default)]
    paginate: Option<Located<PaginateConfig>>,
}

#[derive(Debug)]
pub(crate) struct Graphql {
    connector: String,
    path: String,
    document: Document,
    variables: Option<Expr>,
    headers: Option<Expr>,
    idempotency_key: Option<Expr>,
    retry: Option<RetryPolicy>,
    pagination: Option<Pagination>,
}

impl Kind for Graphql {
    const KEY: &'static str = "graphql";
    type Config = Config;

    fn compile(config: Config, compiler: &mut Compiler<'_>) -> Option<Self> {
        let graphql = &config.graphql;
        let mut failed = false;
        for problem in graphql.check() {
            compiler.error(graphql, problem);
            failed = true;
        }
        if !compiler.known_connector(&graphql.connector, &graphql.connector) {
            failed = true;
        }
        let retry = retry_policy(compiler, config.retry.as_ref());
        let pagination = pagination(compiler, config.paginate.as_ref(), true);
        let variables = compiler.optional("graphql.variables", graphql.variables.as_ref());
        let headers = compiler.optional("graphql.headers", graphql.headers.as_ref());
        let idempotency_key = compiler.optional("idempotency_key", config.idempotency_key.as_ref());
        if failed {
            return None;
        }
        Some(Graphql {
            connector: graphql.connector.value.clone(),
            path: graphql.path().to_string(),
            document: Document::new(&graphql.document),
            variables: variables?,
            headers: headers?,
            idempotency_key: idempotency_key?,
            retry: retry?,
            pagination: pagination?,
        })
    }
}

#[async_trait]
impl Step for Graphql {
    async fn perform(&self, cx: &StepContext<'_>) -> Result<Performed, StepError> {
        let connector = cx.connector(&self.connector)?;
        let variables = match &self.variables {
            Some(expr) => match cx.eval("graphql.variables", expr).await? {
                serde_json::Value::Object(map) => map,
                serde_json::Value::Null => serde_json::Map::new(),
                other => {
                    return Err(StepError::InvalidValue {
                        place: "graphql.variables".into(),
                        expected: "an object",
                        found: type_name(&other),
                    });
                }
            },
            None => serde_json::Map::new(),
        };
        let headers = match &self.headers {
            Some(expr) => cx.pairs("graphql.headers", expr).await?,
            None => Vec::new(),
        };
        // A query may be repeated freely; a mutation carries a key as any
        // `POST` does, so its retries and resumed runs apply it once.
        let idempotency_key = cx
            .idempotency_key(
                connector,
                self.idempotency_key.as_ref(),
                (!self.document.is_query()).then(|| cx.default_idempotency_key()),
            )
            .await?;
        let request = GraphqlRequest {
            path: self.path.clone(),
            document: self.document.clone(),
            variables,
            headers,
            idempotency_key,
            rate_key: cx.rate_key(&self.connector).await?,
            breaker_key: cx.breaker_key(&self.connector, "POST", &self.path).await?,
        };
        let shown = connector.summarize(&request.to_call());
        let policy = self.retry.unwrap_or_else(|| connector.retry_policy());
        let exchange = match &self.pagination {
            None => Exchange::of_graphql(connector.graphql(&request, policy).await),
            Some(pagination) => Exchange::of_pages(
                connector
                    .paginate_graphql(&request, policy, pagination, cx.vars())
                    .collect()
                    .await,
            ),
        };
        let summary = exchange.summarize(shown);
        match exchange.result {
            Ok(output) => Ok(Performed {
                output,
                request: Some(summary),
                reply: None,
            }),
            // The failed call's entry says how it went too.
            Err(error) => Err(error.with_request(summary)),
        }
    }

    fn describe(&self) -> Description {
        Description {
            connector: Some(self.connector.clone()),
            path: Some(self.path.clone()),
            expression: Some(self.document.text().into()),
            paginated: self.pagination.is_some(),
            ..Description::default()
        }
    }
}
