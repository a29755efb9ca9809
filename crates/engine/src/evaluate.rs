//! Where a flow's jq programs run: inline on the async worker while they are cheap, on a
//! small pool of evaluation threads when they are not.
//!
//! Almost every expression a flow evaluates picks a few fields and finishes in well under
//! a thousand steps; handing each to another thread would cost more than evaluating it.
//! So every evaluation starts inline under [`Limits::inline_budget`], whose step budget
//! bounds the time it can hold an async worker (tens of microseconds) and whose stack
//! budget fits a runtime thread. An evaluation that exhausts it is abandoned (jq is pure:
//! nothing it did is visible) and started again on the pool, under the project's full
//! budget: time, memory, output size, and a stack budget the pool's large stacks allow.
//!
//! The pool is bounded ([`Limits::threads`], one by default): however many hostile
//! programs arrive at once, they queue for the pool's threads while the async workers
//! keep serving cheap work, and each one is stopped when its budget runs out. Nothing
//! waits for a pool thread while holding a worker thread: callers await a channel.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use patchbay_config::ExpressionConfig;
use patchbay_expr::{Budget, EvalError, Limit, Vars};
use serde_json::Value;
use tokio::sync::oneshot;

use crate::context::RunContext;

/// Steps an evaluation may take inline. Measured on this project's demo and benchmark
/// flows, their expressions take from 5 to 400 steps; a `map` over a hundred items about
/// 2,000. At roughly 50 ns a step, 20,000 steps hold a worker for about a millisecond at
/// worst, and nest a value at most a few thousand levels deep, which the worker's stack
/// can still drop.
const INLINE_STEPS: u64 = 20_000;

/// Stack reserved for each pool thread. Only the pages used are backed by memory.
const POOL_STACK: usize = 256 << 20;

/// Stack a pool evaluation may use; the rest of [`POOL_STACK`] is left for dropping
/// what it built, which recurses once per level of nesting.
const POOL_STACK_BUDGET: usize = 64 << 20;

/// The budgets of a project's evaluations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Inline: a step budget, and the stack of an ordinary thread.
    pub inline_budget: Budget,
    /// On the pool: the project's time, memory and output budgets.
    pub pool_budget: Budget,
    /// Threads of the pool.
    pub threads: usize,
}

impl Limits {
    /// The budgets a project configured (`engine.expressions`).
    pub fn new(config: &ExpressionConfig) -> Limits {
        let output = config.max_output_bytes;
        Limits {
            inline_budget: Budget {
                steps: Some(INLINE_STEPS),
                time: Some(config.time.0),
                stack: Budget::SMALL_STACK / 2,
                memory: Some(config.max_memory_bytes),
                output,
            },
            pool_budget: Budget {
                steps: None,
                time: Some(config.time.0),
                stack: POOL_STACK_BUDGET,
                memory: Some(config.max_memory_bytes),
                output,
            },
            threads: config.threads.unwrap_or_else(default_threads),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new(&ExpressionConfig::default())
    }
}

/// Half the machine's cores, at least one: hostile programs may keep the pool busy, and
/// the other half stays with the async workers.
fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|cores| cores.get() / 2)
        .unwrap_or(1)
        .max(1)
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs a project's expressions: inline first, on the pool past the inline budget.
/// Cloning shares the pool.
#[derive(Clone)]
pub struct Evaluator {
    limits: Limits,
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Evaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evaluator")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Evaluator {
    /// Starts the pool's threads; they end when the last clone is dropped.
    pub fn start(limits: Limits) -> std::io::Result<Evaluator> {
        let (jobs, queue) = mpsc::channel::<Job>();
        // A std mutex: pool threads take it only to wait for the next job, never across
        // an `.await`.
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..limits.threads {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("patchbay-jq-{index}"))
                .stack_size(POOL_STACK)
                .spawn(move || {
                    loop {
                        let next = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        match next {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Evaluator { limits, jobs })
    }

    /// The budgets in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Evaluates `job` against `input` and `vars`: inline under the inline budget, and
    /// again on the pool under the full budget when that runs out of steps or stack. `vars.budget`
    /// is ignored; `job` must evaluate with the variables it is given.
    pub async fn run<R>(
        &self,
        input: &Value,
        vars: &Vars<'_>,
        job: impl Fn(&Value, &Vars<'_>) -> Result<R, EvalError> + Send + 'static,
    ) -> Result<R, EvalError>
    where
        R: Send + 'static,
    {
        let inline = Vars {
            budget: self.limits.inline_budget,
            ..*vars
        };
        match job(input, &inline) {
            // Only the inline budget's own limits send an evaluation to the pool; the
            // others are the same there.
            Err(EvalError::Exceeded(Limit::Steps(_) | Limit::Stack(_))) => {}
            done => return done,
        }
        let owned = OwnedVars::of(input, vars);
        let budget = self.limits.pool_budget;
        let (reply, answer) = oneshot::channel();
        let work: Job = Box::new(move || {
            let vars = owned.vars(budget);
            // A panic here is a bug in the evaluator, not in the program; it must not take
            // the pool thread with it. The caller sees the dropped channel.
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&owned.input, &vars)));
            if let Ok(result) = outcome {
                let _ = reply.send(result);
            }
        });
        if self.jobs.send(work).is_err() {
            return Err(EvalError::Runtime("the evaluation pool has stopped".into()));
        }
        answer.await.unwrap_or_else(|_| {
            Err(EvalError::Runtime(
                "the expression's evaluation failed unexpectedly".into(),
            ))
        })
    }
}

/// Copies of an evaluation's input and variables, for the pool thread.
struct OwnedVars {
    input: Value,
    context: RunContext,
}

impl OwnedVars {
    fn of(input: &Value, vars: &Vars<'_>) -> OwnedVars {
        OwnedVars {
            input: input.clone(),
            context: RunContext {
                event: vars.event.clone(),
                headers: vars.headers.clone(),
                query: vars.query.clone(),
                steps: vars.steps.clone(),
                state: vars.state.clone(),
            },
        }
    }

    fn vars(&self, budget: Budget) -> Vars<'_> {
        self.context.vars(budget)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use patchbay_expr::Expr;
    use serde_json::json;

    use super::*;

    fn evaluator(time: Duration) -> Evaluator {
        let config = ExpressionConfig {
            time: time.into(),
            threads: Some(1),
            ..ExpressionConfig::default()
        };
        Evaluator::start(Limits::new(&config)).expect("pool starts")
    }

    async fn eval(evaluator: &Evaluator, source: &str) -> Result<Value, EvalError> {
        let expr = Expr::compile(source).expect("compiles");
        evaluator
            .run(&json!(null), &Vars::default(), move |input, vars| {
                expr.eval(input, vars)
            })
            .await
    }

    #[tokio::test]
    async fn cheap_programs_finish_inline_and_costly_ones_on_the_pool() {
        let evaluator = evaluator(Duration::from_secs(5));
        assert_eq!(eval(&evaluator, "1 + 1").await, Ok(json!(2)));
        // Far past the inline step budget, well within the pool's budgets.
        assert_eq!(
            eval(&evaluator, "[range(200000)] | length").await,
            Ok(json!(200_000))
        );
    }

    #[tokio::test]
    async fn the_pool_stops_what_exceeds_the_full_budget() {
        let evaluator = evaluator(Duration::from_millis(100));
        assert_eq!(
            eval(&evaluator, "0 | until(. < 0; . + 1)").await,
            Err(EvalError::Exceeded(Limit::Time(Duration::from_millis(100))))
        );
        // The pool thread is free again for the next evaluation.
        assert_eq!(
            eval(&evaluator, "[range(100000)] | length").await,
            Ok(json!(100_000))
        );
    }

    #[tokio::test]
    async fn deep_recursion_gets_the_pools_deep_stack() {
        // 1,000 levels of non-tail recursion need more than the inline stack budget,
        // but fit the pool's.
        let evaluator = evaluator(Duration::from_secs(10));
        assert_eq!(
            eval(
                &evaluator,
                "def f: if . < 1000 then . + 1 | f | . else . end; 0 | f"
            )
            .await,
            Ok(json!(1_000))
        );
        assert!(matches!(
            eval(&evaluator, "def f: [f]; f").await,
            Err(EvalError::Exceeded(
                Limit::Stack(_) | Limit::Memory(_) | Limit::Time(_)
            ))
        ));
    }
}
