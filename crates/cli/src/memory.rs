//! The process's allocator, and what the expression budgets read from it.
//!
//! jemalloc keeps, for each thread, the bytes it has allocated and freed. The
//! difference is what an evaluation of a jq program holds, so
//! `engine.expressions.max_memory_bytes` can stop `[range(1e9)]` long before
//! it exhausts the machine (see `patchbay_expr::Budget`).
//!
//! jemalloc returns freed memory to the system only as a side effect of
//! later allocations, unless its background thread is on: after a burst of
//! 200 half-sent 1 MiB webhook bodies, an idle node kept 110 MiB of its
//! 234 MiB peak without it, and was back to its idle 35 MiB within 20 s
//! with it (see docs/security.md, slow clients).

use std::cell::Cell;

use tikv_jemalloc_ctl::thread::{allocatedp, deallocatedp};

/// Installs the memory probe of the expression budgets. Call once, early.
pub(crate) fn install_probe() {
    patchbay_expr::set_memory_probe(thread_net_bytes);
}

/// Turns on jemalloc's background thread, which gives freed pages back to
/// the system after a few seconds even while the node is idle. Without it
/// the node keeps running; memory is then only returned as it allocates.
pub(crate) fn return_freed_memory() {
    let _ = tikv_jemalloc_ctl::background_thread::write(true);
}

thread_local! {
    // Each thread's counters live at fixed addresses for the thread's lifetime:
    // looked up once per thread, then read directly.
    static COUNTERS: Cell<Option<(tikv_jemalloc_ctl::thread::ThreadLocal<u64>, tikv_jemalloc_ctl::thread::ThreadLocal<u64>)>> =
        const { Cell::new(None) };
}

/// Bytes this thread has allocated and not freed; 0 when jemalloc cannot tell.
fn thread_net_bytes() -> u64 {
    COUNTERS.with(|cell| {
        let counters = cell.get().or_else(|| {
            let allocated = allocatedp::mib().and_then(|mib| mib.read()).ok()?;
            let deallocated = deallocatedp::mib().and_then(|mib| mib.read()).ok()?;
            cell.set(Some((allocated, deallocated)));
            Some((allocated, deallocated))
        });
        counters.map_or(0, |(allocated, deallocated)| {
            allocated.get().saturating_sub(deallocated.get())
        })
    })
}
