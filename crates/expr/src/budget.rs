//! Budgets: how much one evaluation of a jq program may spend before it is stopped.
//!
//! jq is a complete programming language, and flows evaluate it over input that strangers
//! send (webhook bodies, upstream answers). `0 | until(. < 0; . + 1)` never ends,
//! `[range(1e9)]` asks for gigabytes and `reduce .items[] as $x (null; {next: .})` nests a
//! value as deep as the input is long. A budget bounds each of these:
//!
//! - **steps**: jaq terms entered. Cheap to count, and the same on every machine, so the
//!   engine uses a small step budget to decide whether an evaluation may finish inline on
//!   an async worker or must move to the evaluation pool;
//! - **time**: wall-clock time since the evaluation started;
//! - **stack**: bytes of the thread's stack the evaluation has used, so deep recursion
//!   stops well before the thread's guard page;
//! - **memory**: bytes the evaluating thread holds beyond what it held when it started,
//!   read from the probe installed with [`set_memory_probe`] (the binary installs one
//!   backed by its allocator's per-thread counters; without a probe this limit is not
//!   enforced);
//! - **output**: approximate size in bytes of the JSON produced.
//!
//! ## How an evaluation is interrupted
//!
//! jaq has no hook for cancellation, but its interpreter looks up every term it enters
//! through [`HasLut::lut`] on the evaluation's data. The data type of our programs
//! ([`Metered`]) implements that lookup by first charging the evaluation's [`Meter`]. When
//! a limit is crossed the meter unwinds the evaluation with a private panic payload, the
//! way `salsa` cancels queries; the evaluation entry point catches exactly that payload
//! and turns it into [`EvalError::Exceeded`]. Everything the evaluation held is dropped
//! on the way out, the thread and its CPU are free again, and nothing outside the
//! evaluation is touched (jaq evaluation is pure). Panics of any other kind keep
//! propagating. Unwinding requires `panic = "unwind"`, Rust's default, which the
//! workspace keeps.
//!
//! Natives that yield many values without entering a term per value (`range`) are
//! replaced by metered versions, so `[range(1e9)]` is charged for every item. What stays
//! out of reach is a single native operation that allocates a huge block at once
//! (`"x" * 1e12`): it is charged only after it returns. Restarts caused by such a run are
//! bounded by the engine's poison-run limit.

use std::cell::Cell;
use std::fmt;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use jaq_core::Lut;
use jaq_core::data::{DataT, HasLut};
use jaq_json::Val;

/// Limits of one evaluation. `None` means unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Budget {
    /// Most jaq terms entered.
    pub steps: Option<u64>,
    /// Longest wall-clock time.
    pub time: Option<Duration>,
    /// Most bytes of stack used below the evaluation's entry point.
    pub stack: usize,
    /// Most bytes the thread may hold beyond what it held at the start.
    pub memory: Option<u64>,
    /// Largest output, as approximate JSON bytes.
    pub output: usize,
}

impl Budget {
    /// Stack an evaluation may use on a thread whose stack is the Rust default for
    /// spawned threads (2 MiB): half of it, leaving room for the caller's frames and for
    /// dropping what the evaluation built.
    pub const SMALL_STACK: usize = 1 << 20;

    /// No limit but a stack bound safe on any thread Rust or tokio spawns by default.
    /// For evaluations of trusted input (tests, `check`).
    pub const UNLIMITED: Budget = Budget {
        steps: None,
        time: None,
        stack: Budget::SMALL_STACK,
        memory: None,
        output: usize::MAX,
    };
}

impl Default for Budget {
    fn default() -> Self {
        Budget::UNLIMITED
    }
}

/// The limit an evaluation exceeded, with its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// [`Budget::steps`].
    Steps(u64),
    /// [`Budget::time`].
    Time(Duration),
    /// [`Budget::stack`].
    Stack(usize),
    /// [`Budget::memory`].
    Memory(u64),
    /// [`Budget::output`].
    Output(usize),
}

impl Limit {
    /// The budget's name as configured (`steps`, `time`, `stack`, `memory`, `output`).
    pub fn name(&self) -> &'static str {
        match self {
            Limit::Steps(_) => "steps",
            Limit::Time(_) => "time",
            Limit::Stack(_) => "stack",
            Limit::Memory(_) => "memory",
            Limit::Output(_) => "output",
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Steps(n) => write!(f, "steps budget of {n} evaluation steps"),
            Limit::Time(d) => write!(f, "time budget of {}", humanize(*d)),
            Limit::Stack(bytes) => {
                write!(f, "depth budget of {} of stack", bytes_text(*bytes as u64))
            }
            Limit::Memory(bytes) => write!(f, "memory budget of {}", bytes_text(*bytes)),
            Limit::Output(bytes) => write!(f, "output budget of {}", bytes_text(*bytes as u64)),
        }
    }
}

fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn bytes_text(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    const KIB: u64 = 1 << 10;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= KIB && bytes.is_multiple_of(KIB) {
        format!("{} KiB", bytes / KIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// Net bytes held by the calling thread (allocated minus freed), as counted by the
/// process's allocator.
pub type MemoryProbe = fn() -> u64;

static MEMORY_PROBE: OnceLock<MemoryProbe> = OnceLock::new();

/// Installs the process's memory probe, which enforces [`Budget::memory`]. The first call
/// wins; later ones are ignored.
pub fn set_memory_probe(probe: MemoryProbe) {
    let _ = MEMORY_PROBE.set(probe);
}

/// Whether a memory probe is installed, i.e. whether [`Budget::memory`] is enforced.
pub fn memory_is_metered() -> bool {
    MEMORY_PROBE.get().is_some()
}

/// How many steps pass between reads of the clock and the memory probe: reading them on
/// every step would cost more than the steps themselves.
const CHECK_EVERY: u64 = 256;

/// What one evaluation has spent so far. Lives on the evaluating thread's stack for the
/// duration of one evaluation; [`Metered`] data points at it.
pub(crate) struct Meter {
    steps: Cell<u64>,
    step_limit: u64,
    deadline: Option<Instant>,
    stack_base: usize,
    stack_limit: usize,
    memory: Option<(MemoryProbe, u64, u64)>,
    budget: Budget,
}

/// The panic payload that unwinds an evaluation out of budget.
pub(crate) struct Exceeded(pub(crate) Limit);

impl Meter {
    /// A meter whose stack is measured from the caller's frame.
    #[inline(never)]
    pub(crate) fn start(budget: Budget) -> Meter {
        let marker = 0u8;
        let memory = match (budget.memory, MEMORY_PROBE.get()) {
            (Some(limit), Some(probe)) => Some((*probe, probe(), limit)),
            _ => None,
        };
        Meter {
            steps: Cell::new(0),
            step_limit: budget.steps.unwrap_or(u64::MAX),
            deadline: budget.time.map(|time| Instant::now() + time),
            stack_base: stack_address(&marker),
            stack_limit: budget.stack,
            memory,
            budget,
        }
    }

    /// Charges one step, and unwinds the evaluation if any limit is crossed.
    #[inline]
    pub(crate) fn tick(&self) {
        let steps = self.steps.get() + 1;
        self.steps.set(steps);
        if steps > self.step_limit {
            exceeded(Limit::Steps(self.step_limit));
        }
        let marker = 0u8;
        if self.stack_base.saturating_sub(stack_address(&marker)) > self.stack_limit {
            exceeded(Limit::Stack(self.stack_limit));
        }
        if steps.is_multiple_of(CHECK_EVERY) {
            self.check_clock_and_memory();
        }
    }

    #[cold]
    fn check_clock_and_memory(&self) {
        if let Some(deadline) = self.deadline
            && Instant::now() >= deadline
        {
            exceeded(Limit::Time(self.budget.time.unwrap_or_default()));
        }
        if let Some((probe, start, limit)) = self.memory
            && probe().saturating_sub(start) > limit
        {
            exceeded(Limit::Memory(limit));
        }
    }

    pub(crate) fn output_limit(&self) -> usize {
        self.budget.output
    }

    /// The memory check, also made once an evaluation is over: a single native operation
    /// may have allocated a large block after the last step.
    pub(crate) fn check_memory(&self) -> Result<(), Limit> {
        match self.memory {
            Some((probe, start, limit)) if probe().saturating_sub(start) > limit => {
                Err(Limit::Memory(limit))
            }
            _ => Ok(()),
        }
    }
}

fn stack_address(marker: &u8) -> usize {
    std::ptr::from_ref(marker) as usize
}

#[cold]
fn exceeded(limit: Limit) -> ! {
    // `resume_unwind` skips the panic hook: running out of budget is an outcome, not a bug.
    std::panic::resume_unwind(Box::new(Exceeded(limit)))
}

/// Runs `evaluate` under `meter`, turning an unwind caused by the meter into the limit it
/// crossed. Any other panic continues to unwind.
pub(crate) fn metered<T>(evaluate: impl FnOnce() -> T) -> Result<T, Limit> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(evaluate)) {
        Ok(value) => Ok(value),
        Err(payload) => match payload.downcast::<Exceeded>() {
            Ok(exceeded) => Err(exceeded.0),
            Err(other) => std::panic::resume_unwind(other),
        },
    }
}

/// jaq data type of Patchbay's programs: JSON values, and a lookup table that charges the
/// evaluation's [`Meter`] on every term entered.
pub(crate) struct Metered;

impl DataT for Metered {
    type V<'a> = Val;
    type Data<'a> = MeteredLut<'a>;
}

/// The lookup table of one evaluation, with its meter.
#[derive(Clone, Copy)]
pub(crate) struct MeteredLut<'a> {
    pub(crate) lut: &'a Lut<Metered>,
    pub(crate) meter: &'a Meter,
}

impl<'a> HasLut<'a, Metered> for MeteredLut<'a> {
    fn lut(&self) -> &'a Lut<Metered> {
        self.meter.tick();
        self.lut
    }
}

/// `range($from; $to; $by)`, charging one step per value: jaq's own yields values without
/// entering a term, so `[range(1e9)]` would fill memory between two checks.
pub(crate) fn range() -> jaq_core::native::Fun<Metered> {
    jaq_core::native::run(("range", jaq_core::native::v(3), |mut cv| {
        let by = cv.0.pop_var();
        let to = cv.0.pop_var();
        let from = cv.0.pop_var();
        let meter = *cv.0.data();
        Box::new(range_values(from, to, by).map(move |value| {
            meter.meter.tick();
            value.map_err(jaq_core::Exn::from)
        }))
    }))
}

/// The values of jq's `range/3`: while `by` is positive, from `from` up to but excluding
/// `to`; while negative, down; when zero, `from` for ever unless it equals `to`.
fn range_values(from: Val, to: Val, by: Val) -> impl Iterator<Item = jaq_core::ValR<Val>> {
    use std::cmp::Ordering::{Equal, Greater, Less};
    let direction = by.partial_cmp(&Val::from(0isize)).unwrap_or(Equal);
    let mut next: Option<jaq_core::ValR<Val>> = Some(Ok(from));
    std::iter::from_fn(move || match next.take()? {
        Ok(current) => {
            let more = match direction {
                Greater => current < to,
                Less => current > to,
                Equal => current != to,
            };
            if !more {
                return None;
            }
            next = Some(current.clone() + by.clone());
            Some(Ok(current))
        }
        Err(error) => Some(Err(error)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_as_budgets() {
        assert_eq!(
            Limit::Time(Duration::from_secs(1)).to_string(),
            "time budget of 1s"
        );
        assert_eq!(
            Limit::Memory(64 << 20).to_string(),
            "memory budget of 64 MiB"
        );
        assert_eq!(
            Limit::Output(1000).to_string(),
            "output budget of 1000 bytes"
        );
    }

    #[test]
    fn a_foreign_panic_is_not_swallowed() {
        let outcome = std::panic::catch_unwind(|| metered(|| panic!("a bug")));
        assert!(outcome.is_err());
    }
}
